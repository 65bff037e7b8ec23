//! `chinook aggregate`: windowed counts over customer events.

use std::{collections::HashMap, time::Duration};

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
  chinook aggregate --window tumbling:1m --follow                 # a live table, new events as they arrive

Counts by event time (the record timestamp), with Kafka Streams' rules: windows are epoch-aligned,
stream time is the largest timestamp seen, a record is dropped for a window that ended at or before
stream time − grace (and counted as dropped), sliding windows are [t − d, t] around the records (ends
inclusive), sessions merge what falls within the gap. Partitions are
read as one Kafka Streams task reads them: the record with the smallest timestamp first; with --follow,
new records count in the order they arrive.")]
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
    /// Keep counting records as they arrive, until Ctrl-C: on a terminal a live table redrawn in
    /// place, otherwise one JSON line per result --emit selects (and --to publishes them as they come).
    #[arg(long, short = 'f')]
    pub follow: bool,
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
    // Where following picks up: after the last record read, per partition.
    let next: HashMap<i32, i64> = stored.iter().fold(HashMap::new(), |mut next, s| {
        let at = next.entry(s.partition).or_insert(0);
        *at = (*at).max(s.offset + 1);
        next
    });
    let mut windows = Windows::new(args.window, args.grace.as_millis() as i64);
    let counted = aggregate::count(stored, args.by, &mut windows);
    if let Some(to) = &args.to {
        publish(&conn, to, &args, &selected(&counted, args.emit)).await?;
    }
    if args.follow {
        return follow(&conn, &args, &ui, windows, counted, next).await;
    }
    let json = match args.emit {
        Emit::Update => {
            serde_json::json!({ "updates": counted.updates, "dropped": counted.dropped, "records": counted.records })
        }
        Emit::Final => {
            serde_json::json!({ "final": counted.closed, "open": counted.open, "dropped": counted.dropped, "records": counted.records })
        }
    };
    ui.emit(&json, || format!("{}\n{}", table(&rows(&counted, args.emit)), summary(&counted, &args.topic)));
    Ok(exit::OK)
}

/// The rows a table shows: every update, or the closed windows then the open ones.
fn rows(counted: &aggregate::Counted, emit: Emit) -> Vec<(&Count, &'static str)> {
    match emit {
        Emit::Update => counted.updates.iter().map(|c| (c, "update")).collect(),
        Emit::Final => {
            counted.closed.iter().map(|c| (c, "final")).chain(counted.open.iter().map(|c| (c, "open"))).collect()
        }
    }
}

fn summary(counted: &aggregate::Counted, topic: &str) -> String {
    format!(
        "{} record(s) from {topic}; {} dropped as later than the grace period{}",
        counted.records,
        counted.dropped,
        counted.stream_time.map_or(String::new(), |t| format!("; stream time {}", time(t)))
    )
}

/// At most this many windows in the live table: the newest open ones, then the newest closed.
const LIVE_ROWS: usize = 20;

/// `--follow`: counts records as they arrive until SIGINT or SIGTERM.
async fn follow(
    conn: &crate::kafka::Connection,
    args: &AggregateArgs,
    ui: &Ui,
    mut windows: Windows,
    mut counted: aggregate::Counted,
    next: HashMap<i32, i64>,
) -> Outcome {
    use tokio::signal::unix::SignalKind;
    let stop = super::stop_on(&[SignalKind::interrupt(), SignalKind::terminate()])?;
    let term = console::Term::stdout();
    let live = term.is_term() && ui.format == ui::Format::Human;
    // What is known so far: drawn, or printed as lines.
    let mut pending: Vec<(Count, bool)> =
        selected(&counted, args.emit).into_iter().map(|(c, f)| (c.clone(), f)).collect();
    counted.updates.clear();
    counted.closed.clear();
    let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
    let reader = crate::sourcing::log::tail(conn, &args.topic, &next, tx, stop.clone());
    let mut recent: std::collections::VecDeque<Count> = std::collections::VecDeque::new();
    loop {
        // Everything that has arrived, then the results out at once.
        match tokio::time::timeout(Duration::from_millis(250), rx.recv()).await {
            Ok(Some(s)) => {
                let (changed, closed) = counted.add(&mut windows, args.by, &s);
                // Kept here, not in `counted`: a long follow must not grow without bound.
                counted.updates.clear();
                counted.closed.clear();
                match args.emit {
                    Emit::Update => pending.extend(changed.into_iter().map(|c| (c, false))),
                    Emit::Final => pending.extend(closed.into_iter().map(|c| (c, true))),
                }
                if !rx.is_empty() {
                    continue;
                }
            }
            Ok(None) => break,
            Err(_) => {}
        }
        if !pending.is_empty() {
            if let Some(to) = &args.to {
                let refs: Vec<(&Count, bool)> = pending.iter().map(|(c, f)| (c, *f)).collect();
                publish(conn, to, args, &refs).await?;
            }
            for (c, is_final) in pending.drain(..) {
                if live {
                    recent.push_front(c);
                    recent.truncate(LIVE_ROWS / 2);
                } else {
                    let state = if is_final { "final" } else { "update" };
                    ui.emit(&serde_json::json!({ "state": state, "window": c }), || {
                        format!("{state} {} [{}, {}) {}", c.key, time(c.start), time(c.end), c.count)
                    });
                }
            }
        }
        if live {
            let mut open = windows.open();
            open.sort_by_key(|c| std::cmp::Reverse((c.end, c.start)));
            open.truncate(LIVE_ROWS - recent.len().min(LIVE_ROWS / 2));
            let shown: Vec<(&Count, &str)> = open
                .iter()
                .map(|c| (c, "open"))
                .chain(recent.iter().map(|c| (c, if args.emit == Emit::Final { "final" } else { "update" })))
                .collect();
            let frame = format!(
                "chinook aggregate · {} by {} · grace {} · Ctrl-C stops\n{}\n{}\n",
                args.window,
                clap::ValueEnum::to_possible_value(&args.by).map(|v| v.get_name().to_string()).unwrap_or_default(),
                humantime::format_duration(args.grace),
                table(&shown),
                summary(&counted, &args.topic)
            );
            let _ = term.move_cursor_to(0, 0);
            let _ = term.write_str(&frame.replace('\n', "\x1b[K\n"));
            let _ = term.write_str("\x1b[J");
        }
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    reader.await.map_err(|e| crate::kafka::KafkaError::request("following the topic", e))??;
    if !live && ui.format == ui::Format::Human {
        eprintln!("{}", summary(&counted, &args.topic));
    }
    Ok(exit::OK)
}
