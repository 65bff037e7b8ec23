//! `aggregator-windows`: chinook publishes the sample stream (in order, out of
//! order, late within and beyond the grace period, and a record far ahead that
//! closes the windows) on one partition, runs the student's aggregator, and
//! compares the final window counts it publishes with the ones Kafka Streams'
//! rules give ([`crate::streams::sample::expected`]): the same windows, each
//! once, with the same counts.

use std::{collections::BTreeMap, time::Duration};

use prost::Message as _;
use tokio::time::Instant;

use super::{Checked, Env, Judged, Role, evidence};
use crate::{
    codec::pb::events::v1::WindowResult,
    events,
    kafka::{
        consumer,
        producer::{self, OutRecord, ProduceOptions},
        scratch::Scratch,
    },
    streams::sample,
};

/// How long the aggregator may take to start (a first `go run` compiles) and publish.
const LIMIT: Duration = Duration::from_secs(120);

/// A window's identity and count: (key, start ms, end ms) → count.
type Counts = BTreeMap<(String, i64, i64), i64>;

fn millis(t: &Option<prost_types::Timestamp>) -> i64 {
    t.as_ref().map_or(-1, events::millis)
}

/// `KEY [start, end)` with the times in RFC 3339.
fn shown(key: &str, start: i64, end: i64) -> String {
    let at = |ms: i64| {
        humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)).to_string()
    };
    format!("{key} [{}, {})", at(start), at(end))
}

/// The final results on `topic`: counts, and windows published more than once.
async fn published(env: &Env, topic: &str) -> Result<(Counts, Vec<String>, usize), super::Failed> {
    let mut counts = Counts::new();
    let mut twice = Vec::new();
    let mut unreadable = 0;
    for r in consumer::read_records(&env.conn, topic).await? {
        match WindowResult::decode(r.value.as_slice()) {
            Ok(w) if w.r#final => {
                let k = (w.key.clone(), millis(&w.window_start), millis(&w.window_end));
                if counts.insert(k, w.count).is_some() {
                    twice.push(shown(&w.key, millis(&w.window_start), millis(&w.window_end)));
                }
            }
            Ok(_) => {}
            Err(_) => unreadable += 1,
        }
    }
    Ok((counts, twice, unreadable))
}

pub async fn check(env: &Env, id: &str, topic: &str, window_ms: u64, grace_ms: u64) -> Checked {
    let _ = env.topic(topic)?;
    let (window, grace) = (window_ms as i64, grace_ms as i64);
    let input = sample::events(window);
    let (finals, dropped) = sample::expected(&input, window, grace);
    let expected_counts: Counts = finals.iter().map(|c| ((c.key.clone(), c.start, c.end), c.count as i64)).collect();
    let scratch = Scratch::create(&env.conn, "check.windows", &[("", 1), (".out", 1)]).await?;
    let expected = format!(
        "{} final window counts for {} events in {window_ms} ms windows with {grace_ms} ms grace ({dropped} of them too late to count), each published once",
        expected_counts.len(),
        input.len()
    );
    let result = async {
        // One partition, in this order: the order is the test.
        let records: Vec<OutRecord> = input
            .iter()
            .map(|(e, ts)| OutRecord {
                partition: Some(0),
                timestamp: Some(*ts),
                ..OutRecord::event(&scratch.names[0], e)
            })
            .collect();
        producer::produce(&env.conn, &ProduceOptions::default(), records, |_| {}).await?;
        let vars = [
            ("CHINOOK_TOPIC", scratch.names[0].clone()),
            ("CHINOOK_OUTPUT_TOPIC", scratch.names[1].clone()),
            ("CHINOOK_WINDOW_MS", window_ms.to_string()),
            ("CHINOOK_GRACE_MS", grace_ms.to_string()),
        ];
        let mut running = vec![env.start(id, Role::Aggregator, 1, &vars)?];
        // The record far ahead, read last, closes every expected window at once:
        // once the newest of them is out (or as many as expected), the rest that
        // will ever come are out too. Else until the program ends, or time is up.
        let newest = expected_counts.keys().max_by_key(|k| (k.2, k.1)).cloned();
        let deadline = Instant::now() + LIMIT;
        loop {
            let (counts, _, _) = published(env, &scratch.names[1]).await?;
            let ended = running[0].exited().is_some();
            let closed = newest.as_ref().is_some_and(|k| counts.contains_key(k));
            if closed || counts.len() >= expected_counts.len() || ended || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let crashed = running[0].crashed();
        evidence::stop_all(&mut running, Duration::from_secs(10)).await;
        let found = published(env, &scratch.names[1]).await?;
        Ok::<_, super::Failed>((found, crashed, running))
    }
    .await;
    scratch.remove(&env.conn).await;
    let ((counts, twice, unreadable), crashed, running) = result?;
    let mut wrong = Vec::new();
    for (k, want) in &expected_counts {
        match counts.get(k) {
            None => wrong.push(format!("{} missing (expected {want})", shown(&k.0, k.1, k.2))),
            Some(got) if got != want => wrong.push(format!("{} counted {got}, expected {want}", shown(&k.0, k.1, k.2))),
            Some(_) => {}
        }
    }
    for (k, got) in &counts {
        if !expected_counts.contains_key(k) {
            wrong.push(format!("{} = {got} should not be final", shown(&k.0, k.1, k.2)));
        }
    }
    let right = expected_counts.len() - wrong.iter().filter(|w| !w.contains("should not")).count();
    let mut observed =
        format!("{} final result(s) published, {right} of {} right", counts.len(), expected_counts.len());
    for (what, list) in [("wrong", &wrong), ("published more than once", &twice)] {
        if !list.is_empty() {
            let shown: Vec<&str> = list.iter().take(3).map(String::as_str).collect();
            observed += &format!("; {what}: {}{}", shown.join("; "), if list.len() > 3 { "; …" } else { "" });
        }
    }
    if unreadable > 0 {
        observed += &format!("; {unreadable} value(s) are not events.v1.WindowResult");
    }
    if crashed {
        observed += &format!("; {} crashed ({})", running[0].label, running[0].ending());
    }
    let passed = wrong.is_empty() && twice.is_empty() && unreadable == 0 && !crashed;
    Ok(Judged::new(passed, expected, observed).with_output(&running))
}
