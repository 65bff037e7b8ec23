//! `chinook aggregate`: windowed counts over customer events.

use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{ConnectionArgs, Outcome};
use crate::{
    exit,
    kafka::topics::EVENTS,
    streams::{
        aggregate::{self, By},
        windows::{Count, Spec, Windows},
    },
    ui::{self, Ui},
};

/// Which results to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    /// Every change of every window, in order.
    Update,
    /// Each window once, when it closes (end ≤ stream time − grace).
    Final,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  chinook aggregate --window tumbling:1m                      # events per type per minute
  chinook aggregate --window hopping:1m/10s --by country
  chinook aggregate --window sliding:5m --by customer             # each customer's events within 5 minutes
  chinook aggregate --window session:30s --by customer --grace 10s --emit final

Counts by event time (the record timestamp), with Kafka Streams' rules: windows are epoch-aligned,
stream time is the largest timestamp seen, a record is dropped for a window that ended at or before
stream time − grace (and counted as dropped), sliding windows are [t − d, t] around the records (ends
inclusive), sessions merge what falls within the gap. Partitions are
read as one Kafka Streams task reads them: the record with the smallest timestamp first.")]
pub struct AggregateArgs {
    /// tumbling:SIZE, hopping:SIZE/ADVANCE, sliding:DIFFERENCE or session:GAP (e.g. tumbling:1m).
    #[arg(long, value_name = "SPEC")]
    pub window: Spec,
    /// How late a record may be and still count.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub grace: Duration,
    /// What to count by.
    #[arg(long, value_enum, default_value_t = By::EventType)]
    pub by: By,
    /// update: every change; final: each window once, when it closes.
    #[arg(long, value_enum, default_value_t = Emit::Final)]
    pub emit: Emit,
    #[arg(long, default_value = EVENTS)]
    pub topic: String,
    /// Also publish the results (the ones --emit selects) to this topic, as events.v1.WindowResult
    /// keyed by the key counted.
    #[arg(long, value_name = "TOPIC")]
    pub to: Option<String>,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

/// The results --emit selects, each with whether it is final.
fn selected(counted: &aggregate::Counted, emit: Emit) -> Vec<(&Count, bool)> {
    match emit {
        Emit::Update => counted.updates.iter().map(|c| (c, false)).collect(),
        Emit::Final => counted.closed.iter().map(|c| (c, true)).collect(),
    }
}

/// Publishes `results` to `topic` as WindowResult records.
async fn publish(
    conn: &crate::kafka::Connection,
    topic: &str,
    args: &AggregateArgs,
    results: &[(&Count, bool)],
) -> Result<(), super::Failure> {
    use crate::codec::pb::events::v1::WindowResult;
    let stamp = |ms: i64| prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    };
    let by = clap::ValueEnum::to_possible_value(&args.by).map(|v| v.get_name().to_string()).unwrap_or_default();
    let records: Vec<crate::kafka::producer::OutRecord> = results
        .iter()
        .map(|(c, is_final)| {
            let r = WindowResult {
                key: c.key.clone(),
                window_start: Some(stamp(c.start)),
                window_end: Some(stamp(c.end)),
                count: c.count as i64,
                window: args.window.to_string(),
                group_by: by.clone(),
                r#final: *is_final,
            };
            crate::kafka::producer::OutRecord {
                topic: topic.to_string(),
                key: Some(c.key.clone().into_bytes()),
                value: prost::Message::encode_to_vec(&r),
                timestamp: Some(c.start),
                headers: vec![("content-type".into(), b"application/x-protobuf".to_vec())],
                partition: None,
            }
        })
        .collect();
    let report = crate::kafka::producer::produce(conn, &Default::default(), records, |_| {}).await?;
    if report.failed > 0 {
        let reason = report.failures.first().map_or(String::new(), |f| f.error.clone());
        return Err(super::Failure::new(
            exit::FAILED,
            crate::kafka::KafkaError::request(
                &format!("publishing {} window result(s) to {topic}", report.failed),
                reason,
            ),
        ));
    }
    Ok(())
}

fn time(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

fn table(rows: &[(&Count, &str)]) -> String {
    let mut t = ui::table(["key", "window start", "window end", "count", "state"]);
    for (c, state) in rows {
        t.add_row([c.key.clone(), time(c.start), time(c.end), c.count.to_string(), state.to_string()]);
    }
    t.to_string()
}

pub async fn run(args: AggregateArgs, ui: Ui) -> Outcome {
    let conn = args.conn.context()?.conn;
    let stored = crate::sourcing::log::read(&conn, &args.topic, None).await?;
    let windows = Windows::new(args.window, args.grace.as_millis() as i64);
    let counted = aggregate::count(stored, args.by, windows);
    if let Some(to) = &args.to {
        publish(&conn, to, &args, &selected(&counted, args.emit)).await?;
    }
    let json = match args.emit {
        Emit::Update => {
            serde_json::json!({ "updates": counted.updates, "dropped": counted.dropped, "records": counted.records })
        }
        Emit::Final => {
            serde_json::json!({ "final": counted.closed, "open": counted.open, "dropped": counted.dropped, "records": counted.records })
        }
    };
    ui.emit(&json, || {
        let rows: Vec<(&Count, &str)> = match args.emit {
            Emit::Update => counted.updates.iter().map(|c| (c, "update")).collect(),
            Emit::Final => {
                counted.closed.iter().map(|c| (c, "final")).chain(counted.open.iter().map(|c| (c, "open"))).collect()
            }
        };
        format!(
            "{}\n{} record(s) from {}; {} dropped as later than the grace period{}",
            table(&rows),
            counted.records,
            args.topic,
            counted.dropped,
            counted.stream_time.map_or(String::new(), |t| format!("; stream time {}", time(t)))
        )
    });
    Ok(exit::OK)
}
