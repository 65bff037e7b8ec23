//! `break slow-consumer`: events arrive faster than the handler processes
//! them, and the group's lag grows while you watch.

use std::time::Duration;

use super::{Env, FaultError, Report, Scratch, Verdict};
use crate::{
    events,
    kafka::{
        consumer::{self, ConsumeOptions, Decoders, StartAt},
        groups,
        producer::{self, OutRecord, ProduceOptions},
    },
};

/// `break slow-consumer` settings.
pub struct SlowConsumer {
    /// Events per second published.
    pub rate: f64,
    /// How long events are published.
    pub duration: Duration,
    /// Handler time per event.
    pub handler_delay: Duration,
}

impl SlowConsumer {
    pub async fn run(&self, env: &Env) -> Result<Report, FaultError> {
        let scratch = Scratch::create(&env.conn, "break.slow", &[("", 1)]).await?;
        let topic = scratch.names[0].clone();
        let group = events::new_id("break-slow");
        let count = (self.rate * self.duration.as_secs_f64()).ceil().max(1.0) as usize;
        let records: Vec<OutRecord> =
            (0..count as i64).map(|id| OutRecord::event(&topic, &events::created(id))).collect();
        let produce_options = ProduceOptions { rate: Some(self.rate), ..Default::default() };
        // The consumer handles what it can while the producer publishes, and stops when it is done.
        let published = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let consume_options = ConsumeOptions {
            start: StartAt::Start,
            max: Some(count as u64),
            stop: Some(published.clone()),
            handler_delay: self.handler_delay,
            ..ConsumeOptions::new(group.clone(), vec![topic.clone()])
        };
        let decoders = Decoders::lab(Some(crate::codec::EVENT_TYPE)).expect("built-in type");
        let done = std::sync::atomic::AtomicBool::new(false);
        let sampler = async {
            let mut samples = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if let Ok(d) = groups::describe(&env.conn, &group).await
                    && !d.partitions.is_empty()
                {
                    samples.push(d.total_lag);
                }
            }
            samples
        };
        let work = async {
            let (produced, consumed) = tokio::join!(
                async {
                    let produced = producer::produce(&env.conn, &produce_options, records, |_| {}).await;
                    published.store(true, std::sync::atomic::Ordering::Relaxed);
                    produced
                },
                consumer::consume(&env.conn, &consume_options, &decoders, |_| {})
            );
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            (produced, consumed)
        };
        let ((produced, consumed), samples) = tokio::join!(work, sampler);
        let (produced, consumed) = (produced?, consumed?);
        let final_lag = groups::describe(&env.conn, &group).await?.total_lag;
        scratch.remove(&env.conn).await;

        let mut report = Report::new("slow-consumer");
        let growing = samples.windows(2).filter(|w| w[1] > w[0]).count();
        // Every row is observed: the acks, the handler's count, the group's commits on the broker.
        let handled = consumed.handled as usize;
        report.checks.push(Verdict::equal("events published", count, produced.acked));
        report.checks.push(Verdict::holds(
            "events handled while publishing",
            format!("fewer than {} (the handler takes {:?} each)", produced.acked, self.handler_delay),
            handled,
            handled < produced.acked,
        ));
        report.checks.push(Verdict::equal(
            "lag at the end (committed offsets on the broker)",
            produced.acked.saturating_sub(handled),
            final_lag,
        ));
        report.checks.push(Verdict::equal("lag grew between samples", "yes", if growing > 0 { "yes" } else { "no" }));
        report.figure("published", produced.acked);
        report.figure("handled", consumed.handled);
        report.figure("final_lag", final_lag);
        report.look_for = lag_story(&samples);
        report.fix = "Make the handler faster (batch work, avoid a round trip per event), or scale out: more partitions and more members in the group share the load (`chinook consume --group …` in more terminals).".into();
        Ok(report)
    }
}

fn lag_story(samples: &[i64]) -> String {
    format!(
        "The producer published faster than the handler could keep up, so the committed offset fell further behind the high watermark. Lag sampled every half second: {samples:?}. Watch it live with `chinook group describe <group>`."
    )
}
