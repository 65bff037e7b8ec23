//! `chinook bench produce`: the same customer events sent to the broker under
//! a grid of producer settings — compression codec (and level) × `linger.ms`
//! × `batch.size` — one fresh producer per cell. For each cell: messages per
//! second from the first enqueue to the last delivery report, the bytes
//! librdkafka put on the wire and in record batches (from its statistics),
//! how much the codec shrank the keys and values, and the exact p50/p99 of
//! the time from enqueue to delivery report. Every event must be
//! acknowledged: a cell with a failed delivery says so and fails the run.

use std::{
    ops::RangeInclusive,
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use rdkafka::{
    ClientContext, Statistics,
    producer::{BaseProducer, DeliveryResult, ProducerContext},
    types::RDKafkaErrorCode,
};
use serde::Serialize;

use crate::kafka::{
    Connection, KafkaError,
    producer::{self, OutRecord, ProduceOptions},
};

/// A compression codec librdkafka offers (`compression.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    pub const ALL: [Codec; 5] = [Codec::None, Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd];

    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }

    /// The `compression.level` values librdkafka accepts for this codec (None: it takes no level).
    pub fn levels(self) -> Option<RangeInclusive<i32>> {
        match self {
            Codec::Gzip => Some(0..=9),
            Codec::Lz4 => Some(0..=12),
            Codec::Zstd => Some(1..=12),
            Codec::None | Codec::Snappy => None,
        }
    }
}

/// One combination of settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Cell {
    pub codec: Codec,
    /// The compression level (None: the codec's default, or a codec without levels).
    pub level: Option<i32>,
    pub linger_ms: u32,
    pub batch_size: u32,
}

impl Cell {
    /// A short label: `zstd:1 linger 5 batch 16384`.
    pub fn label(&self) -> String {
        let level = self.level.map(|l| format!(":{l}")).unwrap_or_default();
        format!("{}{level} linger {} batch {}", self.codec.name(), self.linger_ms, self.batch_size)
    }
}

/// The cells to measure, in order: codec, then level, then linger, then batch size.
/// Each level applies to every codec that takes levels; it must be valid for each.
pub fn grid(codecs: &[Codec], levels: &[i32], lingers: &[u32], batches: &[u32]) -> Result<Vec<Cell>, ProduceError> {
    let mut cells = Vec::new();
    for &codec in codecs {
        let levels: Vec<Option<i32>> = match codec.levels() {
            Some(range) if !levels.is_empty() => {
                if let Some(&bad) = levels.iter().find(|l| !range.contains(l)) {
                    return Err(ProduceError::Level { codec: codec.name(), level: bad, range });
                }
                levels.iter().copied().map(Some).collect()
            }
            _ => vec![None],
        };
        for level in levels {
            for &linger_ms in lingers {
                for &batch_size in batches {
                    cells.push(Cell { codec, level, linger_ms, batch_size });
                }
            }
        }
    }
    Ok(cells)
}

/// One cell, measured.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub cell: Cell,
    pub events: usize,
    pub acked: usize,
    pub failed: usize,
    /// Why the first failed delivery failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// From the first enqueue to the last delivery report.
    pub elapsed_ms: f64,
    /// Acknowledged events per second of `elapsed_ms`.
    pub msgs_per_sec: f64,
    /// Key and value bytes librdkafka sent, before compression (its partition `txbytes`).
    pub payload_bytes: u64,
    /// Record batches as sent, after compression, with their framing and headers (the sum of its topic `batchsize`).
    pub batch_bytes: u64,
    pub batches: u64,
    /// Everything the producer wrote to the broker's sockets: requests, metadata and all (its broker `txbytes`).
    pub wire_bytes: u64,
    /// `payload_bytes / batch_bytes`: below 1 without compression (framing and headers), above with it.
    pub compression_ratio: f64,
    /// Enqueue to delivery report, exact percentiles over every acknowledged event.
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub topic: String,
    /// Whether the broker refused a malformed value on the topic before the run
    /// (None: not tried, on a topic given with `--topic`).
    pub schema_enforced: Option<bool>,
    pub events_per_cell: usize,
    /// Bytes of the values sent in each cell (protobuf-encoded customer events).
    pub value_bytes_per_cell: usize,
    /// "debug" or "release": the client side of the figures.
    pub build: &'static str,
    /// Stopped by Ctrl-C: the rows are the cells measured before it.
    pub interrupted: bool,
    pub rows: Vec<Row>,
}

impl Report {
    pub fn failed_cells(&self) -> Vec<String> {
        self.rows.iter().filter(|r| r.failed > 0).map(|r| r.cell.label()).collect()
    }
}

/// A run that could not be made, or cells whose events were not all acknowledged.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ProduceError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Broker(#[from] crate::broker::BrokerError),
    #[error("--compression-level {level} is not a level {codec} takes ({}–{})", range.start(), range.end())]
    #[diagnostic(
        code(chinook::bench::level),
        help(
            "gzip takes 0–9, lz4 0–12, zstd 1–12; none and snappy take no level. Leave the flag out for each codec's default, or pick the codecs with --codecs"
        )
    )]
    Level { codec: &'static str, level: i32, range: RangeInclusive<i32> },
    #[error("not every event was acknowledged in {}: {}", if cells.len() == 1 { "1 cell" } else { "these cells" }, cells.join("; "))]
    #[diagnostic(
        code(chinook::bench::undelivered),
        help("the table shows each cell's failures and the first error; the figures of those cells do not count")
    )]
    Undelivered { cells: Vec<String> },
}

impl ProduceError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ProduceError::Kafka(e) => e.exit_code(),
            ProduceError::Broker(e) => e.exit_code(),
            ProduceError::Level { .. } => crate::exit::USAGE,
            ProduceError::Undelivered { .. } => crate::exit::FAILED,
        }
    }
}

/// The `p`-th percentile (0–100) of sorted `samples`, nearest rank: a value that was measured.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A broken value (a length-delimited field that claims more bytes than follow):
/// no schema lets it through.
const MALFORMED: &[u8] = &[0x0a, 0xff, 0xff];

/// Sends one malformed value on its own (its own producer, no idempotence, no
/// linger) and says whether the broker refused it with INVALID_RECORD.
pub async fn schema_enforced(conn: &Connection, topic: &str) -> Result<bool, KafkaError> {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = conn
        .client_config()
        .set("linger.ms", "0")
        .create()
        .map_err(|e| KafkaError::request("creating a producer", e))?;
    let record = FutureRecord::<str, [u8]>::to(topic).key("bench-schema-check").payload(MALFORMED);
    match producer.send(record, Duration::from_secs(10)).await {
        Ok(_) => Ok(false),
        Err((e, _)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::InvalidRecord) => Ok(true),
        Err((e, _)) => Err(KafkaError::request("sending a malformed value to check the schema", e)),
    }
}

/// What the polling thread hands over: a delivery report, with when it came.
struct Delivery {
    index: usize,
    at: Instant,
    error: Option<String>,
}

/// librdkafka's statistics as they come: batch sizes are windows reset at
/// each emission, so they are summed here; the counters are cumulative.
#[derive(Default)]
struct Stats {
    emissions: u64,
    batch_bytes: i64,
    batches: i64,
    payload_bytes: u64,
    wire_bytes: u64,
}

struct BenchContext {
    topic: String,
    deliveries: mpsc::Sender<Delivery>,
    stats: Arc<(Mutex<Stats>, Condvar)>,
}

impl ClientContext for BenchContext {
    fn stats(&self, s: Statistics) {
        let (lock, emitted) = &*self.stats;
        let Ok(mut acc) = lock.lock() else { return };
        acc.emissions += 1;
        acc.wire_bytes = s.brokers.values().map(|b| b.txbytes).sum();
        if let Some(t) = s.topics.get(&self.topic) {
            acc.batch_bytes += t.batchsize.sum;
            acc.batches += t.batchsize.cnt;
            acc.payload_bytes = t.partitions.values().map(|p| p.txbytes).sum();
        }
        emitted.notify_all();
    }
}

impl ProducerContext for BenchContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let at = Instant::now();
        let error =
            result.as_ref().err().map(|(e, _)| e.rdkafka_error_code().map_or_else(|| e.to_string(), producer::explain));
        // The receiver goes only when the cell was abandoned.
        let _ = self.deliveries.send(Delivery { index, at, error });
    }
}

/// A thread serving the producer's callbacks (delivery reports, statistics)
/// as they come, so each report is timed when librdkafka has it; it stops when dropped.
struct Poller {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Poller {
    fn start(producer: Arc<BaseProducer<BenchContext>>) -> Result<Self, KafkaError> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("chinook-bench-poll".into())
            .spawn({
                let stop = stop.clone();
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        producer.poll(Duration::from_millis(5));
                    }
                }
            })
            .map_err(|e| KafkaError::request("starting the producer's polling thread", e))?;
        Ok(Self { stop, thread: Some(thread) })
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How often librdkafka emits statistics during a cell.
const STATS_EVERY: Duration = Duration::from_millis(100);
/// How long a cell waits for the delivery report of an event it enqueued
/// (librdkafka gives up on a record after 30 s and reports that).
const REPORT_WAIT: Duration = Duration::from_secs(60);

/// Sends `records` once under `cell`'s settings with a fresh producer, and measures.
/// Blocking: call it off the async runtime's threads (`block_in_place`).
/// `progress(done)` is called as delivery reports come back.
pub fn measure_cell(
    conn: &Connection,
    cell: Cell,
    records: &[OutRecord],
    progress: &dyn Fn(u64),
) -> Result<Row, KafkaError> {
    let topic = records.first().map(|r| r.topic.clone()).unwrap_or_default();
    let options = ProduceOptions {
        compression: cell.codec.name().into(),
        linger_ms: cell.linger_ms,
        batch_size: cell.batch_size,
        ..ProduceOptions::default()
    };
    let mut config = options.config(conn);
    config.set("statistics.interval.ms", STATS_EVERY.as_millis().to_string());
    if let Some(level) = cell.level {
        config.set("compression.level", level.to_string());
    }
    let (tx, deliveries) = mpsc::channel();
    let stats = Arc::new((Mutex::new(Stats::default()), Condvar::new()));
    let context = BenchContext { topic, deliveries: tx, stats: stats.clone() };
    let producer: Arc<BaseProducer<BenchContext>> =
        Arc::new(config.create_with_context(context).map_err(|e| KafkaError::request("creating the producer", e))?);
    let _poller = Poller::start(producer.clone())?;

    // One event sent and acknowledged before the clock starts: the connection,
    // metadata and producer id are set up then, and the statistics so far set aside.
    let warm_up = records.first().map(|r| producer.send(producer::base_record_with(r, usize::MAX)));
    if let Some(sent) = warm_up {
        let error = match sent {
            Err((e, _)) => Some(e.to_string()),
            Ok(()) => match deliveries.recv_timeout(REPORT_WAIT) {
                Ok(d) => d.error,
                Err(_) => Some(format!("no delivery report within {} s", REPORT_WAIT.as_secs())),
            },
        };
        if let Some(error) = error {
            return Err(KafkaError::request(&format!("sending the warm-up event of {}", cell.label()), error));
        }
    }
    let before = counted(&stats)?;

    let n = records.len();
    let mut cell_run = CellRun {
        enqueued: vec![None; n],
        latencies: Vec::with_capacity(n),
        failed: 0,
        error: None,
        last: None,
        progress,
    };
    let started = Instant::now();
    for (index, record) in records.iter().enumerate() {
        loop {
            cell_run.enqueued[index] = Some(Instant::now());
            match producer.send(producer::base_record_with(record, index)) {
                Ok(()) => break,
                // librdkafka's queue is full: take a delivery report (the poller frees room), then again.
                Err((e, _)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    if let Ok(d) = deliveries.recv_timeout(Duration::from_millis(100)) {
                        cell_run.settle(d);
                    }
                }
                Err((e, _)) => {
                    cell_run.enqueued[index] = None;
                    cell_run.fail(e.rdkafka_error_code().map_or_else(|| e.to_string(), producer::explain));
                    break;
                }
            }
        }
        while let Ok(d) = deliveries.try_recv() {
            cell_run.settle(d);
        }
    }
    while cell_run.settled() < n {
        match deliveries.recv_timeout(REPORT_WAIT) {
            Ok(d) => cell_run.settle(d),
            Err(_) => {
                let missing = n - cell_run.settled();
                for _ in 0..missing {
                    cell_run.fail(format!("no delivery report within {} s", REPORT_WAIT.as_secs()));
                }
            }
        }
    }
    let elapsed = cell_run.last.map_or(Duration::ZERO, |last| last.saturating_duration_since(started));

    // Every batch was made before its records' reports: the emissions after the last report have counted them all.
    let stats = counted(&stats)?;

    let mut latencies = cell_run.latencies;
    latencies.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let acked = latencies.len();
    let batch_bytes = stats.batch_bytes.max(0) as u64;
    let payload_bytes = stats.payload_bytes.saturating_sub(before.payload_bytes);
    Ok(Row {
        cell,
        events: n,
        acked,
        failed: cell_run.failed,
        error: cell_run.error,
        elapsed_ms: ms(elapsed),
        msgs_per_sec: acked as f64 / elapsed.as_secs_f64().max(1e-9),
        payload_bytes,
        batch_bytes,
        batches: stats.batches.max(0) as u64,
        wire_bytes: stats.wire_bytes.saturating_sub(before.wire_bytes),
        compression_ratio: payload_bytes as f64 / batch_bytes.max(1) as f64,
        p50_ms: ms(percentile(&latencies, 50.0)),
        p99_ms: ms(percentile(&latencies, 99.0)),
    })
}

/// Waits for two more emissions of librdkafka's statistics (the first may
/// have been under way) and takes what they counted, starting the sums afresh.
fn counted(stats: &(Mutex<Stats>, Condvar)) -> Result<Stats, KafkaError> {
    fn poisoned<T>(_: T) -> KafkaError {
        KafkaError::request("reading librdkafka's statistics", "a thread panicked")
    }
    let (lock, emitted) = stats;
    let seen = lock.lock().map_err(poisoned)?.emissions;
    let wait = STATS_EVERY * 30;
    let (mut guard, waited) = emitted
        .wait_timeout_while(lock.lock().map_err(poisoned)?, wait, |s| s.emissions < seen + 2)
        .map_err(poisoned)?;
    if waited.timed_out() {
        return Err(KafkaError::request(
            "reading librdkafka's statistics",
            format!("none came within {} s", wait.as_secs()),
        ));
    }
    Ok(std::mem::take(&mut *guard))
}

/// One cell's deliveries as they are settled.
struct CellRun<'a> {
    /// When each event was (last) enqueued; None once settled.
    enqueued: Vec<Option<Instant>>,
    latencies: Vec<Duration>,
    failed: usize,
    error: Option<String>,
    /// The last delivery report.
    last: Option<Instant>,
    progress: &'a dyn Fn(u64),
}

impl CellRun<'_> {
    fn settled(&self) -> usize {
        self.latencies.len() + self.failed
    }

    fn settle(&mut self, d: Delivery) {
        let Some(enqueued) = self.enqueued.get_mut(d.index).and_then(Option::take) else { return };
        self.last = Some(self.last.map_or(d.at, |last| last.max(d.at)));
        match d.error {
            None => self.latencies.push(d.at.saturating_duration_since(enqueued)),
            Some(error) => self.fail(error),
        }
        (self.progress)(self.settled() as u64);
    }

    fn fail(&mut self, error: String) {
        self.failed += 1;
        self.error.get_or_insert(error);
    }
}

/// Measures every cell in turn on `topic`, with `events` customer events (see
/// [`crate::bench::serialization::sample`]). `progress(cell index, done in the cell)`.
/// Once `stop` is set (Ctrl-C), no further cell starts: the rows so far are returned.
pub async fn measure(
    conn: &Connection,
    topic: &str,
    cells: &[Cell],
    events: usize,
    stop: &AtomicBool,
    progress: impl Fn(usize, u64),
) -> Result<Vec<Row>, KafkaError> {
    let records: Vec<OutRecord> =
        super::serialization::sample(events).iter().map(|e| OutRecord::event(topic, e)).collect();
    let mut rows = Vec::with_capacity(cells.len());
    for (i, cell) in cells.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let progress = |done| progress(i, done);
        rows.push(tokio::task::block_in_place(|| measure_cell(conn, *cell, &records, &progress))?);
    }
    Ok(rows)
}

/// The bytes of the values [`measure`] sends per cell.
pub fn value_bytes(events: usize) -> usize {
    super::serialization::sample(events).iter().map(prost::Message::encoded_len).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_values_that_were_measured() {
        let ms = Duration::from_millis;
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 50.0), ms(50));
        assert_eq!(percentile(&sorted, 99.0), ms(99));
        assert_eq!(percentile(&sorted, 100.0), ms(100));
        assert_eq!(percentile(&[ms(7)], 99.0), ms(7));
        assert_eq!(percentile(&[ms(1), ms(9)], 50.0), ms(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn levels_apply_to_the_codecs_that_take_them() {
        let cells = grid(&[Codec::None, Codec::Zstd], &[1, 3], &[0], &[16384]).unwrap();
        let levels: Vec<(Codec, Option<i32>)> = cells.iter().map(|c| (c.codec, c.level)).collect();
        assert_eq!(levels, [(Codec::None, None), (Codec::Zstd, Some(1)), (Codec::Zstd, Some(3))]);
        assert_eq!(grid(&Codec::ALL, &[], &[0, 5, 50], &[16384, 131072]).unwrap().len(), 30);
        let err = grid(&[Codec::Gzip, Codec::Zstd], &[10], &[0], &[1]).unwrap_err();
        assert!(matches!(err, ProduceError::Level { codec: "gzip", level: 10, .. }), "{err:?}");
        assert_eq!(err.exit_code(), crate::exit::USAGE);
    }
}
