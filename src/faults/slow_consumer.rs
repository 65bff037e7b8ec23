//! `break slow-consumer`: events arrive faster than the handler processes
//! them, and the group's lag grows while you watch.

use std::time::Duration;

use super::{Env, FaultError, Report, Scratch, Verdict};
use crate::{
    events,
    kafka::{
        admin,
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
        // The topic is empty before anything is published: the first sample is the lag at the start.
        let mut samples = vec![lag(env, &group, &topic).await?];
        let sampler = async {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if let Ok(l) = lag(env, &group, &topic).await {
                    samples.push(l);
                }
            }
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
        let ((produced, consumed), ()) = tokio::join!(work, sampler);
        let (produced, consumed) = (produced?, consumed?);
        let final_lag = groups::describe(&env.conn, &group).await?.total_lag;
        samples.push(final_lag);
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

/// The group's lag on `topic`: from its commits once it has made some, from
/// the start of the log before (the consumer starts there).
async fn lag(env: &Env, group: &str, topic: &str) -> Result<i64, FaultError> {
    let described = groups::describe(&env.conn, group).await?;
    if !described.partitions.is_empty() {
        return Ok(described.total_lag);
    }
    let topics = admin::list_topics(&env.conn).await?;
    Ok(topics.iter().filter(|t| t.name == topic).flat_map(|t| &t.partitions).map(|p| p.high - p.low).sum())
}

fn lag_story(samples: &[i64]) -> String {
    format!(
        "The producer published faster than the handler could keep up, so the committed offset fell further behind the high watermark. Lag sampled before publishing, every half second while consuming, and at the end: {samples:?}. Watch it live with `chinook group describe <group>`."
    )
}
