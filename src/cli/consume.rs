//! `chinook consume`: the lab's consumer — a group member that decodes, routes,
//! commits after processing and dead-letters what it cannot process.

use std::{
    io::Write,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use clap::Args;

use super::{ConnectionArgs, Outcome};
use crate::{
    exit,
    kafka::{
        consumer::{self, ConsumeOptions, Decoders, Event, FailRule, Outcome as RecordOutcome, StartAt},
        topics::{DEAD_LETTERS, EVENTS},
    },
    ui::{self, Format, Ui},
};

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  chinook consume                                   # follow customer_events as group `chinook`
  chinook consume --group billing --offset start --until-end
  chinook consume --offset -10 --max 10             # the last ten events
  chinook consume --offset @-10m                    # everything from the last ten minutes
  chinook consume --format jsonl --until-end > events.jsonl
  chinook consume --handler-fail key=3 --attempts 3 # customer 3's events fail and go to the DLQ
  chinook consume --metrics 127.0.0.1:9465 --follow # Prometheus metrics while it consumes

On a terminal it follows new records until Ctrl-C; otherwise it stops at the end (--until-end).
Offsets are committed only after a record is processed; Ctrl-C or SIGTERM finishes the record in
hand, commits, and leaves the group.")]
pub struct ConsumeArgs {
    /// Topic(s) to read.
    #[arg(long, short = 't', default_value = EVENTS)]
    pub topic: Vec<String>,
    /// Consumer group.
    #[arg(long, short = 'g', default_value = "chinook")]
    pub group: String,
    /// Where to start: start, end, committed, -N (last N) or @<RFC 3339 | -10m>. A member that joins a
    /// group with members already running continues from the group's committed offsets instead.
    #[arg(long, short = 'o', default_value = "committed", allow_hyphen_values = true)]
    pub offset: StartAt,
    /// Stop after this many records.
    #[arg(long, short = 'n')]
    pub max: Option<u64>,
    /// Stop when every assigned partition reaches its high watermark.
    #[arg(long, conflicts_with = "follow")]
    pub until_end: bool,
    /// Keep waiting for new records (the default on a terminal).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Decode every topic's values as this message type (default: the lab plan's type per topic).
    #[arg(long = "type", value_name = "FULL.NAME")]
    pub type_name: Option<String>,
    /// Dead-letter topic for records that cannot be processed.
    #[arg(long, default_value = DEAD_LETTERS)]
    pub dlq: String,
    /// Count unprocessable records but do not dead-letter them.
    #[arg(long)]
    pub no_dlq: bool,
    /// Make the handler fail on purpose: key=K, event-id=ID, type=TYPE or every=N.
    #[arg(long, value_name = "RULE")]
    pub handler_fail: Option<FailRule>,
    /// Handler attempts per record before it is dead-lettered.
    #[arg(long, default_value_t = 3)]
    pub attempts: u32,
    /// Handle each record once per group, even across crashes: the ids handled are kept in
    /// .chinook/dedupe/<group>.ids, and a record seen before is skipped (and committed).
    #[arg(long)]
    pub dedupe: bool,
    /// Make the handler take this long per record (a slow consumer, e.g. 50ms).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub handler_delay: std::time::Duration,
    /// Serve Prometheus metrics at http://ADDR/metrics while consuming:
    /// chinook_consumer_records_processed_total, chinook_consumer_processing_errors_total and
    /// chinook_consumer_lag{topic,partition} (the group's).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub registry: super::RegistryArgs,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

#[derive(serde::Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    record: &'a crate::kafka::records::RecordJson,
    #[serde(flatten)]
    outcome: &'a RecordOutcome,
}

pub async fn run(args: ConsumeArgs, ui: Ui) -> Outcome {
    let ctx = args.conn.context()?;
    let registry = args.registry.client(ctx.managed.as_ref());
    let conn = ctx.conn;
    let options = ConsumeOptions {
        group: args.group.clone(),
        topics: args.topic.clone(),
        start: args.offset,
        max: args.max,
        until_end: args.until_end || (!args.follow && !Ui::stdout_is_tty()),
        dead_letters: (!args.no_dlq).then(|| args.dlq.clone()),
        fail: args.handler_fail.clone(),
        attempts: args.attempts,
        handler_delay: args.handler_delay,
        standalone: false,
        // SIGTERM (what `chinook lab verify` and process managers send) stops the
        // loop as Ctrl-C does: the record in hand is finished, committed, the group left.
        stop: Some(super::stop_on(&[tokio::signal::unix::SignalKind::terminate()])?),
        dedupe: args.dedupe.then(|| std::path::PathBuf::from(".chinook").join("dedupe")),
    };
    let decoders = Decoders::lab(args.type_name.as_deref())?.with_registry(registry);
    let counters = Counters::default();
    let served = match args.metrics {
        Some(addr) => Some(serve_metrics(addr, &conn, &args.group, &counters, &ui).await?),
        None => None,
    };
    // One write per record (its JSON or text line at once), flushed before its offset is stored.
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let summary = consumer::consume(&conn, &options, &decoders, |event| match event {
        Event::Record(r, outcome) => {
            counters.processed.fetch_add(1, Ordering::Relaxed);
            if matches!(outcome, RecordOutcome::DeadLettered { .. }) {
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
            let written = match ui.format {
                Format::Human => writeln!(out, "{}", human_line(&r.json, outcome)),
                Format::Json | Format::Jsonl => {
                    let line = Line { record: &r.json, outcome };
                    let json = if ui.format == Format::Json {
                        serde_json::to_writer_pretty(&mut out, &line)
                    } else {
                        serde_json::to_writer(&mut out, &line)
                    };
                    json.map_err(std::io::Error::other).and_then(|()| writeln!(out))
                }
            };
            // A closed pipe ends the process quietly (SIGPIPE); other write errors are not recoverable here.
            let _ = written;
            // The record's offset is stored for commit right after this: its line must be
            // out first, or a crash could commit a record whose output was still buffered
            // (tests/crashes.rs caught 4 of 3,000 lost that way).
            let _ = out.flush();
        }
        Event::Idle => {
            let _ = out.flush();
        }
        Event::Assigned(parts) if ui.verbose || (ui.format == Format::Human && !ui.quiet) => {
            eprintln!(
                "{} assigned: {}",
                console::style("↻").cyan(),
                if parts.is_empty() { "nothing".to_string() } else { parts.join(", ") }
            );
        }
        Event::Assigned(_) => {}
        Event::JoinedRunningGroup(members) if !ui.quiet => eprintln!(
            "{} group {} already has {members} member(s): continuing from its committed offsets, not --offset",
            console::style("ℹ").cyan(),
            args.group
        ),
        Event::JoinedRunningGroup(_) => {}
    })
    .await;
    let _ = out.flush();
    drop(out);
    if let Some(served) = served {
        served.store(true, Ordering::Relaxed);
    }
    let summary = summary?;
    if ui.format == Format::Human && !ui.quiet {
        let mut t = ui::table(["route", "records"]);
        for (route, n) in &summary.per_route {
            t.add_row(vec![route.clone(), n.to_string()]);
        }
        eprintln!("{t}");
        eprintln!(
            "consumed {} · handled {} · skipped {} · dead-lettered {} · handler retries {}{}",
            summary.consumed,
            summary.handled,
            summary.skipped,
            summary.dead_lettered,
            summary.handler_retries,
            if args.dedupe { format!(" · duplicates skipped {}", summary.duplicates) } else { String::new() }
        );
    } else if ui.verbose {
        eprintln!("{}", serde_json::to_string(&summary).expect("summaries serialize"));
    }
    Ok(exit::OK)
}

/// What `--metrics` counts.
#[derive(Clone, Default)]
struct Counters {
    processed: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
}

/// Serves `counters` and the group's lag at `addr` until the returned flag is set.
async fn serve_metrics(
    addr: std::net::SocketAddr,
    conn: &crate::kafka::Connection,
    group: &str,
    counters: &Counters,
    ui: &Ui,
) -> Result<Arc<AtomicBool>, super::Failure> {
    let listener = crate::monitor::bind(addr).await?;
    if !addr.ip().is_loopback() {
        ui.note(format!("⚠ serving metrics beyond this machine ({addr})"));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (conn, group, counters) = (conn.clone(), group.to_string(), counters.clone());
    tokio::spawn(crate::monitor::serve_text(listener, stop.clone(), move || {
        let (conn, group, counters) = (conn.clone(), group.clone(), counters.clone());
        async move {
            // The group's lag as the broker has it (nothing before its first commit).
            let lag = crate::kafka::groups::describe(&conn, &group).await.map(|d| d.partitions).unwrap_or_default();
            Ok(crate::monitor::consumer(
                counters.processed.load(Ordering::Relaxed),
                counters.errors.load(Ordering::Relaxed),
                &lag,
            ))
        }
    }));
    Ok(stop)
}

fn human_line(r: &crate::kafka::records::RecordJson, outcome: &RecordOutcome) -> String {
    let key = match &r.key {
        Some(crate::kafka::records::Bytes::Text(k)) => k.clone(),
        Some(_) => "<binary>".into(),
        None => "-".into(),
    };
    let what = match (r.value.as_ref().and_then(|v| serde_json::from_str::<serde_json::Value>(v.get()).ok()), &r.error)
    {
        (Some(v), _) => {
            let kind = v.get("eventType").and_then(|t| t.as_str()).unwrap_or("");
            let id = v.get("eventId").or_else(|| v.get("commandId")).and_then(|t| t.as_str()).unwrap_or("");
            let version = v.get("version").and_then(|t| t.as_str()).map(|v| format!("v{v}")).unwrap_or_default();
            format!("{kind} {version} {id}")
        }
        (None, Some(e)) => format!("undecodable: {e}"),
        (None, None) => "(raw bytes)".into(),
    };
    let result = match outcome {
        RecordOutcome::Handled { route: _, attempts } if *attempts > 1 => {
            console::style(format!("handled after {attempts} attempts")).yellow()
        }
        RecordOutcome::Handled { .. } => console::style("handled".to_string()).green(),
        RecordOutcome::Skipped { route } => console::style(format!("skipped: {route}")).dim(),
        RecordOutcome::DeadLettered { reason } => console::style(format!("dead-lettered: {reason}")).red(),
        RecordOutcome::Duplicate { id } => console::style(format!("duplicate of {id}: skipped")).dim(),
    };
    format!("{}/{}@{} key={key} {what} → {result}", r.topic, r.partition.unwrap_or(-1), r.offset.unwrap_or(-1))
}
