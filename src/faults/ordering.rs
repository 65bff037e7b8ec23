//! `break out-of-order`: one customer's events published under different keys
//! land on different partitions and are consumed out of order; keyed by the
//! customer id they stay in order.

use super::{Env, FaultError, Report, Scratch, Verdict};
use crate::{
    events::{self, EventKind, Facts},
    kafka::{
        consumer,
        producer::{self, OutRecord, ProduceOptions},
    },
};

/// Publishes versions 1..=n of one customer to `topic`, keyed badly or well,
/// then reads them back in consumption order and counts versions that came
/// after a higher one.
async fn run_once(env: &Env, topic: &str, n: i64, keyed_by_customer: bool) -> Result<(usize, Vec<i64>), FaultError> {
    let records: Vec<OutRecord> = (1..=n)
        .map(|version| {
            let kind = if version == 1 { EventKind::CustomerCreated } else { EventKind::CustomerUpdated };
            let e = events::event(kind, &Facts { id: 77, ..Default::default() }, version);
            OutRecord {
                topic: topic.to_string(),
                // The mistake: a fresh key (here: a partition) per event instead of the customer id.
                partition: (!keyed_by_customer).then_some((version % 3) as i32),
                key: Some(if keyed_by_customer { e.aggregate_id.clone() } else { e.event_id.clone() }.into_bytes()),
                headers: events::event_headers(&e),
                value: prost::Message::encode_to_vec(&e),
                ..Default::default()
            }
        })
        .collect();
    producer::produce(&env.conn, &ProduceOptions::default(), records, |_| {}).await?;
    let order: Vec<i64> = consumer::read_events(&env.conn, topic).await?.into_iter().map(|e| e.version).collect();
    let mut highest = 0;
    let regressions = order
        .iter()
        .filter(|v| {
            let late = **v < highest;
            highest = highest.max(**v);
            late
        })
        .count();
    Ok((regressions, order))
}

pub async fn out_of_order(env: &Env, n: i64) -> Result<Report, FaultError> {
    let scratch = Scratch::create(&env.conn, "break.order", &[("", 3), (".keyed", 3)]).await?;
    let (bad, bad_order) = run_once(env, &scratch.names[0], n, false).await?;
    let (good, good_order) = run_once(env, &scratch.names[1], n, true).await?;
    scratch.remove(&env.conn).await;
    let mut report = Report::new("out-of-order");
    report.checks.push(Verdict::equal("events of customer 77 read back (random keys)", n, bad_order.len()));
    report.checks.push(Verdict::holds("versions read after a higher one (random keys)", "more than 0", bad, bad > 0));
    report.checks.push(Verdict::equal("versions read after a higher one (keyed by customer id)", 0, good));
    report.checks.push(Verdict::equal("events of customer 77 read back (keyed)", n, good_order.len()));
    report.figure("regressions_random_keys", bad);
    report.figure("regressions_keyed", good);
    report.look_for = format!(
        "Kafka orders records within a partition only. With a key per event, customer 77's versions were spread over three partitions and read as {:?}; keyed by customer id they all went to one partition and were read as {:?}.",
        &bad_order[..bad_order.len().min(12)],
        &good_order[..good_order.len().min(12)]
    );
    report.fix = "Key every event by its aggregate id (the customer id), and have consumers check versions: a gap or a step back means something upstream broke the order.".into();
    Ok(report)
}
