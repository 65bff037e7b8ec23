//! `break poison`: one event makes the handler fail every time.

use super::{Env, FaultError, Report, Scratch, Verdict};
use crate::{
    events,
    kafka::{
        consumer::{self, ConsumeOptions, Decoders, Event, FailRule, StartAt},
        producer::{self, OutRecord, ProduceOptions},
    },
};

/// `break poison` settings.
pub struct Poison {
    /// Events to publish, one of them poisoned.
    pub count: usize,
    /// Handler attempts before the poison is dead-lettered.
    pub attempts: u32,
}

impl Poison {
    pub async fn run(&self, env: &Env) -> Result<Report, FaultError> {
        let scratch = Scratch::create(&env.conn, "break.poison", &[("", 1), (".dlq", 1)]).await?;
        let (topic, dlq) = (scratch.names[0].clone(), scratch.names[1].clone());
        let count = self.count.max(2);
        let poison_id = (count / 2) as i64 + 1;
        let records: Vec<OutRecord> =
            (1..=count as i64).map(|id| OutRecord::event(&topic, &events::created(id))).collect();
        producer::produce(&env.conn, &ProduceOptions::default(), records, |_| {}).await?;
        let options = ConsumeOptions {
            start: StartAt::Start,
            until_end: true,
            dead_letters: Some(dlq.clone()),
            fail: Some(FailRule::Key(poison_id.to_string())),
            attempts: self.attempts,
            standalone: true,
            ..ConsumeOptions::new(events::new_id("break-poison"), vec![topic.clone()])
        };
        let decoders = Decoders::lab(Some(crate::codec::EVENT_TYPE)).expect("built-in type");
        let mut last_offset = -1;
        let summary = consumer::consume(&env.conn, &options, &decoders, |event| {
            if let Event::Record(r, _) = event {
                last_offset = rdkafka::Message::offset(r.message);
            }
        })
        .await?;
        let parked = crate::kafka::admin::describe_topic(&env.conn, &dlq).await?.records();
        let mut report = Report::new("poison");
        report.checks.push(Verdict::equal("events handled", count - 1, summary.handled));
        report.checks.push(Verdict::equal(
            "handler retries of the poison",
            self.attempts.saturating_sub(1),
            summary.handler_retries,
        ));
        report.checks.push(Verdict::equal("records in the dead-letter topic", 1, parked));
        report.checks.push(Verdict::equal("consumer reached the end of the partition", count as i64 - 1, last_offset));
        report.figure("published", count);
        report.figure("handled", summary.handled);
        report.figure("dead_lettered", parked);
        report.figure("handler_retries", summary.handler_retries);
        report.look_for = format!(
            "Customer {poison_id}'s event failed {} times, then went to the dead-letter topic with the reason in its headers; the events after it were processed and committed. Without a DLQ the consumer would retry it forever and the partition would stall.",
            self.attempts
        );
        report.fix = "Bound the retries, dead-letter what still fails (with topic, partition, offset and error in headers), alert on DLQ growth, and replay it once the bug is fixed (`chinook consume --topic customer_events.dlq`).".into();
        scratch.remove(&env.conn).await;
        Ok(report)
    }
}
