//! What checks read back from the broker: a group's progress on a topic,
//! waited for with a deadline while the student's programs run; and what the
//! consumer checks share: the contract variables on scratch topics, and a
//! burst of events spread over the partitions.

use std::time::Duration;

use tokio::time::Instant;

use super::Failed;
use crate::{
    kafka::{Connection, groups},
    labs::programs::Running,
};

/// A consumer's contract variables: `scratch`'s first topic to read, its
/// second as the dead-letter topic, and `group`.
pub fn consumer_vars(scratch: &crate::kafka::scratch::Scratch, group: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CHINOOK_TOPIC", scratch.names[0].clone()),
        ("CHINOOK_GROUP", group.to_string()),
        ("CHINOOK_DLQ_TOPIC", scratch.names[1].clone()),
    ]
}

/// Publishes `count` customer-created events (customers 1..=count) to
/// `topic`, spread over its `partitions` in turn.
pub async fn publish_spread(conn: &Connection, topic: &str, partitions: i32, count: u32) -> Result<(), Failed> {
    use crate::kafka::producer::{self, OutRecord, ProduceOptions};
    let records: Vec<OutRecord> = (0..count as i64)
        .map(|i| OutRecord {
            partition: Some((i % i64::from(partitions)) as i32),
            ..OutRecord::event(topic, &crate::events::created(i + 1))
        })
        .collect();
    // Check data on a scratch topic: no producer id to wait for.
    producer::produce(conn, &ProduceOptions { idempotent: false, ..Default::default() }, records, |_| {}).await?;
    Ok(())
}

/// How far a group got on one topic.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// Partitions whose committed offset is at the high watermark.
    pub at_end: usize,
    pub partitions: usize,
    /// Records not yet committed (None: the group committed nothing on the topic).
    pub lag: Option<i64>,
    /// The most members seen in the group at once.
    pub most_members: usize,
    /// The largest lag seen while watching.
    pub peak_lag: i64,
}

impl Progress {
    pub fn done(&self) -> bool {
        self.partitions > 0 && self.at_end == self.partitions
    }

    pub fn describe(&self) -> String {
        match self.lag {
            Some(lag) => format!("{} of {} partitions committed to the end (lag {lag})", self.at_end, self.partitions),
            None => format!("0 of {} partitions committed to the end (nothing committed)", self.partitions),
        }
    }
}

/// The progress of `group` on `topic` (of `partitions` partitions) now.
async fn progress(conn: &Connection, group: &str, topic: &str, partitions: usize) -> Result<Progress, Failed> {
    let d = groups::describe(conn, group).await?;
    let mine: Vec<_> = d.partitions.iter().filter(|p| p.topic == topic).collect();
    Ok(Progress {
        at_end: mine.iter().filter(|p| p.committed == Some(p.high) && p.high > 0).count(),
        partitions,
        lag: (!mine.is_empty()).then(|| mine.iter().map(|p| p.lag).sum()),
        most_members: d.members.len(),
        peak_lag: 0,
    })
}

/// A group's progress on one topic of `partitions` partitions, as a check
/// watches it.
pub struct Watch<'a> {
    pub conn: &'a Connection,
    pub group: &'a str,
    pub topic: &'a str,
    pub partitions: usize,
}

impl Watch<'_> {
    /// Polls until every partition is committed to its end (see [`Watch::until`]).
    pub async fn drained(&self, running: &mut [Running], limit: Duration) -> Result<Progress, Failed> {
        self.until(running, limit, Progress::done).await
    }

    /// Polls the group until `until` holds for its progress, every program in
    /// `running` has ended by itself, or `limit` passes; the last progress.
    pub async fn until(
        &self,
        running: &mut [Running],
        limit: Duration,
        until: impl Fn(&Progress) -> bool,
    ) -> Result<Progress, Failed> {
        watch_group(self, running, limit, until).await
    }
}

async fn watch_group(
    w: &Watch<'_>,
    running: &mut [Running],
    limit: Duration,
    until: impl Fn(&Progress) -> bool,
) -> Result<Progress, Failed> {
    let deadline = Instant::now() + limit;
    let (mut most_members, mut peak_lag) = (0, 0);
    loop {
        let mut now = progress(w.conn, w.group, w.topic, w.partitions).await?;
        most_members = most_members.max(now.most_members);
        now.most_members = most_members;
        peak_lag = peak_lag.max(now.lag.unwrap_or(0));
        now.peak_lag = peak_lag;
        let all_ended = running.iter_mut().all(|r| r.exited().is_some());
        if until(&now) || all_ended || Instant::now() >= deadline {
            return Ok(now);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Stops every program (SIGTERM, then SIGKILL after `grace`).
pub async fn stop_all(running: &mut [Running], grace: Duration) {
    futures::future::join_all(running.iter_mut().map(|r| r.terminate(grace))).await;
}
