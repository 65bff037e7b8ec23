//! `break broker-down`: the broker goes away in the middle of a publish (the
//! front door closes every connection and refuses new ones), then comes back;
//! afterwards the topic is read back to prove every acknowledged event is there
//! exactly once. `--hard` kills the broker process (SIGKILL) and starts it
//! again instead: the producer names every event it could not get
//! acknowledged, and the read-back shows what memory storage lost.
//!
//! The outage happens on the managed broker's front door: everyone connected
//! sees it. (Lab checks stage theirs on a private door of their own.)

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use super::{Env, FaultError, Report, Scratch, Verdict};
use crate::{
    broker::{control, process},
    events,
    kafka::{
        consumer,
        producer::{self, OutRecord, ProduceOptions},
    },
};

/// `break broker-down` settings.
pub struct BrokerDown {
    pub count: usize,
    /// Go down after this many events are acknowledged.
    pub after: usize,
    pub down_for: Duration,
    /// Events per second published.
    pub rate: f64,
    /// Stop and restart the broker process (memory storage loses everything).
    pub hard: bool,
}

impl BrokerDown {
    pub async fn run(&self, env: &Env) -> Result<Report, FaultError> {
        let paths = &env.paths;
        let state = env.managed.clone().ok_or(FaultError::NeedsManagedBroker { scenario: "broker-down" })?;
        let conn = &env.conn;
        let scratch = Scratch::create(&env.conn, "break.down", &[("", 3)]).await?;
        let topic = scratch.names[0].clone();
        let mut ids = Vec::with_capacity(self.count);
        let records: Vec<OutRecord> = (0..self.count as i64)
            .map(|id| {
                let e = events::created(id);
                ids.push(e.event_id.clone());
                OutRecord::event(&topic, &e)
            })
            .collect();
        // The outage must fit inside the delivery timeout for the retries to carry it.
        let options = ProduceOptions {
            rate: Some(self.rate),
            delivery_timeout: self.down_for + Duration::from_secs(30),
            ..Default::default()
        };
        let done = AtomicU64::new(0);
        let finished = std::sync::atomic::AtomicBool::new(false);
        let trigger = async {
            // Wait for the moment to strike (or give up if the publish ended first).
            while done.load(Ordering::Relaxed) < self.after as u64 {
                if finished.load(Ordering::Relaxed) {
                    return Ok(done.load(Ordering::Relaxed));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let at = done.load(Ordering::Relaxed);
            self.on_managed(&state, paths).await?;
            Ok::<u64, FaultError>(at)
        };
        let publish = async {
            let report = producer::produce(conn, &options, records, |n| done.store(n, Ordering::Relaxed)).await;
            finished.store(true, Ordering::Relaxed);
            report
        };
        let (published, went_down_at) = tokio::join!(publish, trigger);
        let (report_p, went_down_at) = (published?, went_down_at?);

        // Read everything back and count each event id.
        let read_back = read_back(env, &topic).await?;
        let mut seen: HashMap<String, u32> = HashMap::new();
        for id in read_back {
            *seen.entry(id).or_default() += 1;
        }
        let failed: std::collections::HashSet<usize> = report_p.failures.iter().map(|f| f.index).collect();
        let acked_ids: Vec<&String> =
            ids.iter().enumerate().filter(|(i, _)| !failed.contains(i)).map(|(_, id)| id).collect();
        let lost = acked_ids.iter().filter(|id| !seen.contains_key(id.as_str())).count();
        let duplicates: u32 = seen.values().map(|n| n.saturating_sub(1)).sum();
        scratch.remove(&env.conn).await;

        let mut report = Report::new("broker-down");
        if self.hard {
            // What it teaches: memory storage loses what it had acknowledged, and retries cannot bring it back.
            report.checks.push(Verdict::holds(
                "acknowledged events missing on read-back",
                "more than 0 (memory storage died with the process)",
                format!("{lost}: DATA LOST — acknowledged, then gone with the killed process's memory"),
                lost > 0,
            ));
            let mut unacked: Vec<usize> = failed.iter().copied().collect();
            unacked.sort_unstable();
            report.checks.push(Verdict::holds(
                "events the producer reports as not acknowledged (by position)",
                "each named, and none of them stored twice",
                if unacked.is_empty() {
                    "none: every event was acknowledged (the retries reached the restarted broker)".to_string()
                } else {
                    format!("{} of them: {}", unacked.len(), summarize(&unacked))
                },
                unacked.len() == report_p.failed,
            ));
        } else {
            report.checks.push(Verdict::equal("events acknowledged", self.count, report_p.acked));
            report.checks.push(Verdict::equal("acknowledged events missing on read-back", 0, lost));
        }
        report.checks.push(Verdict::equal("events stored more than once", 0, duplicates));
        report.figure("sent", report_p.sent);
        report.figure("acked", report_p.acked);
        report.figure("failed", report_p.failed);
        report.figure("retries", report_p.retries);
        report.figure("went_down_after", went_down_at);
        report.figure("read_back", seen.values().sum::<u32>());
        report.figure("lost", lost);
        report.figure("duplicates", duplicates);
        if self.hard {
            report.look_for = format!(
                "The broker process was killed (SIGKILL) after {went_down_at} acknowledgements and started again {} later, empty: its storage is memory, so data was lost — everything acknowledged before the kill is gone ({lost} events), which no producer retry can repair. The producer's own report names only the events it never got acknowledged ({} here); an acknowledgement from a broker that then loses its memory is worth nothing. `acks=all` means \"stored by the broker\", and durability is the broker's job: replicas and disks.",
                humantime::format_duration(self.down_for),
                report_p.failed
            );
        } else {
            report.look_for = format!(
                "After {went_down_at} acknowledgements every connection was closed and new ones refused for {}. The producer kept the events queued, reconnected when the broker came back and resent what had no acknowledgement; the idempotent producer (sequence numbers per partition) makes those resends harmless, so read-back finds each event once.",
                humantime::format_duration(self.down_for)
            );
        }
        report.fix = "Let the client retry (librdkafka does, within message.timeout.ms), keep enable.idempotence=true and acks=all, and only treat a record as sent when its delivery report says so. Try `--hard` to see what retries cannot fix.".into();
        Ok(report)
    }
}

impl BrokerDown {
    /// Takes the managed broker down: its front door (an outage through the
    /// control endpoint, waited out), or with `hard` the process itself.
    async fn on_managed(&self, state: &crate::broker::State, paths: &crate::broker::Paths) -> Result<(), FaultError> {
        if self.hard {
            process::kill(paths).await?;
            tokio::time::sleep(self.down_for).await;
            let restart = process::Options {
                engine: state.engine,
                port: state.bootstrap.port(),
                schemas: state.schema_enforcement,
                tls: state.tls_ca.is_some(),
                users: state.users.clone(),
                topic_prefix: state.topic_prefix.clone().unwrap_or_else(|| crate::broker::acl::DEFAULT_TEMPLATE.into()),
                host: state.listen.unwrap_or(state.bootstrap.ip()),
                // The registry's port may have been taken while the broker was down (by
                // another broker here taking the default 8081): then it moves, as at start.
                registry: match state.registry {
                    Some(addr)
                        if addr.port() != crate::registry::DEFAULT_PORT
                            && std::net::TcpListener::bind(addr).is_ok() =>
                    {
                        process::RegistryPort::Port(addr.port())
                    }
                    Some(_) => process::RegistryPort::Default,
                    None => process::RegistryPort::Off,
                },
            };
            process::start_detached(&restart, paths).await?;
        } else {
            control::request(state.control, &control::Request::Outage { millis: self.down_for.as_millis() as u64 })
                .await?;
            // Back up before anything else happens (a poll on the broker's own state).
            while let control::Reply::Status { door, .. } =
                control::request(state.control, &control::Request::Status).await?
                && door.outage_left_ms > 0
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }
}

async fn read_back(env: &Env, topic: &str) -> Result<Vec<String>, FaultError> {
    match consumer::read_events(&env.conn, topic).await {
        Ok(events) => Ok(events.into_iter().map(|e| e.event_id).collect()),
        // After a hard restart of a memory broker the topic itself is gone.
        Err(crate::kafka::KafkaError::NoTopic { .. }) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Positions as ranges: `3-7, 12, 20-21`, the first 20 ranges.
fn summarize(sorted: &[usize]) -> String {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for &i in sorted {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == i => *end = i,
            _ => ranges.push((i, i)),
        }
    }
    let shown: Vec<String> =
        ranges.iter().take(20).map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
    let more = if ranges.len() > 20 { format!(" and {} more ranges", ranges.len() - 20) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

#[cfg(test)]
mod tests {
    #[test]
    fn positions_read_as_ranges() {
        assert_eq!(super::summarize(&[1, 2, 3, 7, 9, 10]), "1-3, 7, 9-10");
        assert_eq!(super::summarize(&[]), "");
    }
}
