//! `break oversized`: one event too big for the producer's `message.max.bytes`
//! (librdkafka's default, 1,000,000 bytes, the same as Kafka's broker
//! default), published among normal ones. The producer refuses it before it
//! leaves the machine (MSG_SIZE_TOO_LARGE), the others are stored, and the
//! report names the one that was not.

use super::{Env, FaultError, Report, Scratch, Verdict};
use crate::{
    events,
    kafka::producer::{self, OutRecord, ProduceOptions},
};

/// librdkafka's (and Kafka's) default largest record, in bytes.
const LIMIT: usize = 1_000_000;

/// `break oversized` settings.
pub struct Oversized {
    /// Events to publish, one of them oversized.
    pub count: usize,
}

impl Oversized {
    pub async fn run(&self, env: &Env) -> Result<Report, FaultError> {
        let scratch = Scratch::create(&env.conn, "break.oversized", &[("", 1)]).await?;
        let count = self.count.max(2);
        let big = count / 2;
        let records: Vec<OutRecord> = (0..count)
            .map(|i| {
                let mut event = events::created(i as i64 + 1);
                if i == big {
                    // A customer record carrying a scanned contract in its metadata.
                    event.metadata.insert("contract_scan".into(), "x".repeat(LIMIT + LIMIT / 2));
                }
                OutRecord::event(scratch.topic(), &event)
            })
            .collect();
        let size = records[big].value.len();
        let sent = producer::produce(&env.conn, &ProduceOptions::default(), records, |_| {}).await;
        let stored = match &sent {
            Ok(_) => crate::kafka::admin::describe_topic(&env.conn, scratch.topic()).await.map(|t| t.records()),
            Err(_) => Ok(0),
        };
        scratch.remove(&env.conn).await;
        let report_of_run = sent?;
        let stored = stored?;
        let refused = report_of_run.failures.iter().find(|f| f.index == big);
        let mut report = Report::new("oversized");
        report.checks.push(Verdict::holds(
            format!("the {size}-byte event (#{big}) is refused by the producer"),
            "refused as too large, after 1 attempt (not retriable)",
            refused.map_or("acknowledged".to_string(), |f| format!("{} ({} attempt(s))", f.error, f.attempts)),
            refused.is_some_and(|f| !f.retriable && f.attempts == 1 && f.error.contains("larger")),
        ));
        report.checks.push(Verdict::equal("events acknowledged", count - 1, report_of_run.acked));
        report.checks.push(Verdict::equal("records stored", count as i64 - 1, stored));
        report.figure("published", count);
        report.figure("oversized_bytes", size);
        report.figure("limit_bytes", LIMIT);
        report.figure("acked", report_of_run.acked);
        report.figure("failed", report_of_run.failed);
        report.look_for = format!(
            "Event #{big} was {size} bytes, over the {LIMIT}-byte limit: librdkafka refused it when it was enqueued, so it never reached the broker and retrying could not help. The other {} events were stored. A batch is bounded the same way: the broker refuses one larger than its message.max.bytes (RECORD_LIST_TOO_LARGE / MESSAGE_TOO_LARGE).",
            count - 1
        );
        report.fix = "Keep events small: put large blobs in object storage and publish a reference (the claim-check pattern). If records must be bigger, raise the limit everywhere at once — the producer's message.max.bytes, the broker's (or the topic's max.message.bytes) and the consumers' fetch.max.bytes and max.partition.fetch.bytes — and treat a refusal as permanent, not retriable.".into();
        Ok(report)
    }
}
