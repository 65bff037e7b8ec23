//! `chinook bench`: measurements for Lab 3, made on this machine — the
//! flags, the tables, the chart and the explanations; the measuring is in
//! [`crate::bench`].

use clap::{Args, Subcommand};

use super::{ConnectionArgs, Outcome};
use crate::{
    bench::{
        produce::{self, Codec, ProduceError},
        serialization::{self, BenchError, Row},
    },
    exit,
    kafka::{scratch::Scratch, topics::EVENTS},
    ui::{self, Ui},
};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The same events as protobuf and as JSON: size, encode and decode speed.
    #[command(after_help = "\
Examples:
  chinook bench serialization                    # 20,000 events of every kind
  chinook bench serialization --events 1000 --format json

Speeds depend on the build: measure a release build (`cargo install --path .`) for figures to compare.")]
    Serialization(SerializationArgs),
    /// Customer events sent to the broker under a grid of compression, linger and batch settings.
    #[command(after_help = "\
Examples:
  chinook bench produce                                    # every codec, linger 0/5/50 ms, batch 16 KiB/128 KiB
  chinook bench produce --codecs none,zstd --events 20000
  chinook bench produce --codecs zstd --compression-level 1,3   # KIP-390's comparison
  chinook bench produce --codecs none,lz4 --linger-ms 0 --format json

Each cell uses a fresh idempotent producer (acks=all) and waits for every delivery report. By default
the events go to a scratch topic bound to the customer_events schema, removed afterwards.")]
    Produce(ProduceArgs),
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Compression codecs to try (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "none,gzip,snappy,lz4,zstd")]
    pub codecs: Vec<Codec>,
    /// linger.ms values to try (comma-separated): how long the producer waits to fill a batch.
    #[arg(long, value_delimiter = ',', default_value = "0,5,50",
          value_parser = clap::value_parser!(u32).range(0..=900_000))]
    pub linger_ms: Vec<u32>,
    /// batch.size values to try, in bytes (comma-separated): the most a batch holds per partition.
    #[arg(long, value_delimiter = ',', default_value = "16384,131072",
          value_parser = clap::value_parser!(u32).range(1..=2_147_483_647))]
    pub batch_size: Vec<u32>,
    /// Events sent in each cell of the grid.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub events: u32,
    /// compression.level values to try (comma-separated) with the codecs that take one:
    /// gzip 0–9, lz4 0–12, zstd 1–12. Default: each codec's own.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub compression_level: Vec<i32>,
    /// Send to this topic instead of a scratch topic (it is kept, with every event sent).
    #[arg(long)]
    pub topic: Option<String>,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

#[derive(Debug, Args)]
pub struct SerializationArgs {
    /// How many events to serialize each way (every event kind in turn).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub events: u32,
}

impl From<BenchError> for super::Failure {
    fn from(e: BenchError) -> Self {
        let code = match &e {
            BenchError::Codec(c) => c.exit_code(),
            BenchError::Mismatch { .. } => exit::FAILED,
        };
        super::Failure::new(code, e)
    }
}

impl From<ProduceError> for super::Failure {
    fn from(e: ProduceError) -> Self {
        super::Failure::new(e.exit_code(), e)
    }
}

fn table(rows: &[Row]) -> String {
    let mut t = ui::table(["format", "bytes/event", "total bytes", "size vs protobuf", "encode/s", "decode/s"]);
    for r in rows {
        t.add_row([
            r.format.to_string(),
            format!("{:.1}", r.bytes_per_event),
            r.bytes.to_string(),
            format!("×{:.2}", r.size_ratio),
            format!("{:.0}", r.encode_per_sec),
            format!("{:.0}", r.decode_per_sec),
        ]);
    }
    t.to_string()
}

pub fn run(cmd: BenchCommand, ui: Ui) -> Outcome {
    match cmd {
        BenchCommand::Produce(args) => match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
            Ok(runtime) => runtime.block_on(bench_produce(args, ui)),
            Err(e) => Err(super::Failure::new(
                exit::FAILED,
                crate::kafka::KafkaError::request("starting the async runtime", e),
            )),
        },
        BenchCommand::Serialization(args) => {
            let events = serialization::sample(args.events as usize);
            let rows = serialization::measure(&events)?;
            ui.emit(&rows, || {
                format!(
                    "{}\n{} events, every one decoded back and compared; speeds are this build's ({})",
                    table(&rows),
                    args.events,
                    if cfg!(debug_assertions) { "a debug build: slower than release" } else { "release" }
                )
            });
            Ok(exit::OK)
        }
    }
}

async fn bench_produce(args: ProduceArgs, ui: Ui) -> Outcome {
    let cells = produce::grid(&args.codecs, &args.compression_level, &args.linger_ms, &args.batch_size)?;
    let ctx = args.conn.context()?;
    let conn = &ctx.conn;
    conn.probe().await?;
    let events = args.events as usize;
    let (scratch, topic) = match &args.topic {
        Some(topic) => (None, topic.clone()),
        None => {
            let bufstream = ctx.managed.as_ref().is_some_and(|s| s.engine == crate::broker::Engine::Bufstream);
            let scratch = Scratch::create_bound(conn, "bench", EVENTS, bufstream).await?;
            let topic = scratch.topic().to_string();
            (Some(scratch), topic)
        }
    };

    let total = (cells.len() * events) as u64;
    let bar = if !ui.quiet && console::Term::stderr().is_term() {
        progress_bar(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let stop =
        super::stop_on(&[tokio::signal::unix::SignalKind::interrupt(), tokio::signal::unix::SignalKind::terminate()])?;
    let measured = async {
        let schema_enforced = match scratch {
            Some(_) => Some(produce::schema_enforced(conn, &topic).await?),
            None => None,
        };
        let rows = produce::measure(conn, &topic, &cells, events, &stop, |cell, done| {
            if done == 1 {
                bar.set_message(cells[cell].label());
            }
            bar.set_position((cell * events) as u64 + done);
        })
        .await?;
        Ok::<_, crate::kafka::KafkaError>((schema_enforced, rows))
    }
    .await;
    bar.finish_and_clear();
    if let Some(scratch) = scratch {
        scratch.remove(conn).await;
    }
    let (schema_enforced, rows) = measured?;
    let report = produce::Report {
        topic,
        schema_enforced,
        events_per_cell: events,
        value_bytes_per_cell: produce::value_bytes(events),
        build: if cfg!(debug_assertions) { "debug" } else { "release" },
        interrupted: stop.load(std::sync::atomic::Ordering::Relaxed),
        rows,
    };
    ui.emit(&report, || [produce_table(&report.rows), chart(&report.rows), explain(&report)].join("\n\n"));
    let failed = report.failed_cells();
    if !failed.is_empty() {
        return Err(ProduceError::Undelivered { cells: failed }.into());
    }
    if report.interrupted {
        ui.note(format!(
            "interrupted after {} of {} cells; the scratch topic was removed",
            report.rows.len(),
            cells.len()
        ));
        return Ok(exit::INTERRUPTED);
    }
    Ok(exit::OK)
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let style = indicatif::ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} delivered · {msg}")
        .expect("a valid template");
    indicatif::ProgressBar::new(total).with_style(style)
}

fn count(n: impl Into<u64>) -> String {
    indicatif::HumanCount(n.into()).to_string()
}

fn produce_table(rows: &[produce::Row]) -> String {
    let mut t = ui::table([
        "codec",
        "linger ms",
        "batch size",
        "acked",
        "msg/s",
        "batch bytes",
        "wire bytes",
        "ratio",
        "p50 ms",
        "p99 ms",
    ]);
    for r in rows {
        let codec = match r.cell.level {
            Some(level) => format!("{} (level {level})", r.cell.codec.name()),
            None => r.cell.codec.name().to_string(),
        };
        let acked = if r.failed == 0 {
            count(r.acked as u64)
        } else {
            format!("{} ✘ {} failed: {}", r.acked, r.failed, r.error.as_deref().unwrap_or("?"))
        };
        t.add_row([
            codec,
            r.cell.linger_ms.to_string(),
            count(r.cell.batch_size),
            acked,
            count(r.msgs_per_sec.round() as u64),
            count(r.batch_bytes),
            count(r.wire_bytes),
            format!("{:.2}", r.compression_ratio),
            format!("{:.1}", r.p50_ms),
            format!("{:.1}", r.p99_ms),
        ]);
    }
    t.to_string()
}

/// msg/s per cell as bars of block characters, scaled to the fastest (in eighths of a character).
fn chart(rows: &[produce::Row]) -> String {
    const WIDTH: f64 = 40.0;
    const EIGHTHS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    let top = rows.iter().map(|r| r.msgs_per_sec).fold(0.0, f64::max).max(1e-9);
    let labels: Vec<String> = rows.iter().map(|r| r.cell.label()).collect();
    let pad = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut out = vec!["msg/s per cell".to_string()];
    for (r, label) in rows.iter().zip(&labels) {
        let eighths = (r.msgs_per_sec / top * WIDTH * 8.0).round() as usize;
        let bar = format!("{}{}", "█".repeat(eighths / 8), EIGHTHS[eighths % 8]);
        let value = if r.failed > 0 { "failed".to_string() } else { count(r.msgs_per_sec.round() as u64) };
        out.push(format!("{label:<pad$}  {bar} {value}"));
    }
    out.join("\n")
}

/// What the figures mean, with this run's own comparisons.
fn explain(report: &produce::Report) -> String {
    let mut text = Vec::new();
    text.push(format!(
        "{} events per cell ({} bytes of protobuf values), each cell a fresh idempotent producer (acks=all) on {}.",
        count(report.events_per_cell as u64),
        count(report.value_bytes_per_cell as u64),
        report.topic
    ));
    text.push(match report.schema_enforced {
        Some(true) => "The broker refused a malformed value on this topic: it validates every record against the \
            CustomerEvent schema, so it must decompress each compressed batch before it can accept it. A codec \
            is paid for twice, by the producer compressing and by the broker decompressing, and where the broker \
            is the bottleneck compression lowers msg/s."
            .to_string(),
        Some(false) => "The broker accepted a malformed value on this topic: it does not validate records here, so \
            these figures show compression's cost on the producer's side only."
            .to_string(),
        None => "Whether the broker validates this topic was not checked (a topic given with --topic is never sent \
            a malformed value)."
            .to_string(),
    });
    let fastest = |codec: Codec| {
        report
            .rows
            .iter()
            .filter(|r| r.cell.codec == codec && r.failed == 0)
            .max_by(|a, b| a.msgs_per_sec.total_cmp(&b.msgs_per_sec))
    };
    if let Some(none) = fastest(Codec::None) {
        for codec in Codec::ALL.into_iter().filter(|c| *c != Codec::None) {
            if let Some(r) = fastest(codec) {
                text.push(format!(
                    "{}: batches {:.0} % of uncompressed size, best {} msg/s, {:.0} % of uncompressed's best.",
                    codec.name(),
                    100.0 * r.batch_bytes as f64 / none.batch_bytes.max(1) as f64,
                    count(r.msgs_per_sec.round() as u64),
                    100.0 * r.msgs_per_sec / none.msgs_per_sec.max(1e-9),
                ));
            }
        }
    }
    text.push(
        "Batch bytes are the record batches as sent (after compression, with record framing and headers); wire \
        bytes are everything the producer wrote to the socket, requests and metadata included. Ratio is key and \
        value bytes over batch bytes: under 1 without compression, the headers and framing; above 1, what the \
        codec saved. linger.ms lets the producer wait to fill a batch (fewer, larger requests, compressed \
        better) at the price of latency when traffic is light; batch.size caps a batch. Every cell enqueues all \
        its events at once, so batches fill without waiting and p50/p99 are mostly time spent queued behind \
        earlier events: compare them between cells, not with one event's round trip."
            .to_string(),
    );
    if report.build == "debug" {
        text.push("This is a debug build of chinook: the figures are lower than a release build's.".to_string());
    }
    text.join("\n")
}
