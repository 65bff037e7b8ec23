//! `break late-events`: events published out of order and late — the sample
//! stream Lab 4 judges aggregators on — counted in tumbling windows by event
//! time twice: without a grace period, and with one. Without, every
//! out-of-order event whose window has already closed is dropped; with it,
//! only those later than the grace period are, and the drops are counted.

use std::time::Duration;

use super::{Env, FaultError, Report, Scratch, Verdict};
use crate::{
    kafka::producer::{self, OutRecord, ProduceOptions},
    sourcing::log,
    streams::{
        aggregate::{self, By},
        sample,
        windows::{Spec, Windows},
    },
};

/// `break late-events` settings.
pub struct LateEvents {
    pub window: Duration,
    pub grace: Duration,
}

impl LateEvents {
    pub async fn run(&self, env: &Env) -> Result<Report, FaultError> {
        let (window, grace) = (self.window.as_millis() as i64, self.grace.as_millis() as i64);
        let scratch = Scratch::create(&env.conn, "break.late", &[("", 1)]).await?;
        let input = sample::events(window);
        let records: Vec<OutRecord> = input
            .iter()
            .map(|(e, ts)| OutRecord {
                partition: Some(0),
                timestamp: Some(*ts),
                ..OutRecord::event(scratch.topic(), e)
            })
            .collect();
        let counted = async {
            producer::produce(&env.conn, &ProduceOptions::default(), records, |_| {}).await?;
            let stored = log::read(&env.conn, scratch.topic(), None).await?;
            let count = |grace_ms: i64| {
                let mut windows = Windows::new(Spec::Time { size: window, advance: window }, grace_ms);
                aggregate::count(stored.clone(), By::EventType, &mut windows)
            };
            Ok::<_, FaultError>((stored.len(), count(0), count(grace)))
        }
        .await;
        scratch.remove(&env.conn).await;
        let (stored, strict, lenient) = counted?;
        // Out of order: a record older than one published before it.
        let out_of_order = input
            .iter()
            .scan(i64::MIN, |newest, (_, ts)| {
                let late = *ts < *newest;
                *newest = (*newest).max(*ts);
                Some(late)
            })
            .filter(|late| *late)
            .count();
        let (_, expected_drops) = sample::expected(&input, window, grace);
        let mut report = Report::new("late-events");
        report.checks.push(Verdict::equal("events stored (one partition, in publish order)", input.len(), stored));
        report.checks.push(Verdict::holds(
            "dropped with no grace period",
            format!("more than the {expected_drops} later than the grace period"),
            strict.dropped,
            strict.dropped > expected_drops,
        ));
        report.checks.push(Verdict::equal(
            format!("dropped with a grace period of {}", humantime::format_duration(self.grace)),
            expected_drops,
            lenient.dropped,
        ));
        report.checks.push(Verdict::holds(
            "records counted in some window, with the grace period",
            "every record but the dropped ones",
            lenient.records - lenient.dropped,
            lenient.records - lenient.dropped == input.len() as u64 - expected_drops,
        ));
        report.figure("sent", input.len());
        report.figure("out_of_order", out_of_order);
        report.figure("dropped_without_grace", strict.dropped);
        report.figure("dropped_with_grace", lenient.dropped);
        report.look_for = format!(
            "{out_of_order} of the {} events were published after a newer one. Counted by event time in {} windows, {} were dropped with no grace period: as soon as a newer event is seen, the window before it closes. With {} of grace only {} were: the ones that came later than that. `chinook aggregate --window tumbling:{} --grace {}` reports the dropped count; on a live stream, `--follow`.",
            input.len(),
            humantime::format_duration(self.window),
            strict.dropped,
            humantime::format_duration(self.grace),
            lenient.dropped,
            humantime::format_duration(self.window),
            humantime::format_duration(self.grace),
        );
        report.fix = "Give windows a grace period as long as the lateness you expect (a phone offline for a minute needs more than a minute), count what is dropped, and alert when the count moves. The price: results are final only once the grace period has passed.".into();
        Ok(report)
    }
}
