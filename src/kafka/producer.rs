//! The batching producer: records are enqueued into librdkafka (which batches
//! them per partition) and their delivery reports settled while more are
//! enqueued — never one `send().await` per record. Records are pulled lazily
//! from any iterator, and at most librdkafka's queue of them is held at once,
//! so memory does not grow with the run. Idempotent with acks=all by default;
//! records that fail with a retriable error are re-sent with exponential
//! backoff, a bounded number of times; what finally failed is reported with
//! its reason and input position.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use rdkafka::{
    ClientConfig, ClientContext, Message,
    message::{BorrowedMessage, Header, Headers, OwnedHeaders},
    producer::{
        BaseProducer, BaseRecord, DeliveryFuture, DeliveryResult, FutureProducer, FutureRecord, Producer,
        ProducerContext,
    },
    types::RDKafkaErrorCode,
};
use serde::Serialize;
use tokio::sync::mpsc;

use super::{Connection, KafkaError};

/// One record to send.
#[derive(Clone, Debug, Default)]
pub struct OutRecord {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// Milliseconds since the epoch; the broker's clock when absent.
    pub timestamp: Option<i64>,
}

impl OutRecord {
    /// A customer event as a record: keyed by its customer (aggregate) id, with
    /// the routing headers, and the event time as the record time.
    pub fn event(topic: &str, e: &crate::codec::pb::events::v1::CustomerEvent) -> Self {
        Self {
            topic: topic.to_string(),
            partition: None,
            key: Some(e.aggregate_id.clone().into_bytes()),
            headers: crate::events::event_headers(e),
            timestamp: e.timestamp.as_ref().map(crate::events::millis),
            value: prost::Message::encode_to_vec(e),
        }
    }
}

/// How to send.
#[derive(Clone, Debug)]
pub struct ProduceOptions {
    pub idempotent: bool,
    /// none, gzip, snappy, lz4 or zstd.
    pub compression: String,
    pub linger_ms: u32,
    /// Bytes per partition batch.
    pub batch_size: u32,
    /// How long librdkafka keeps trying one send before it reports a failure.
    pub delivery_timeout: Duration,
    /// How many times chinook re-sends a record whose delivery failed with a retriable error.
    pub retries: u32,
    /// Records per second (None: as fast as possible).
    pub rate: Option<f64>,
    /// Stop taking new records once this is set (Ctrl-C); what is in flight is still awaited.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Default for ProduceOptions {
    fn default() -> Self {
        Self {
            idempotent: true,
            compression: "none".into(),
            linger_ms: 5,
            batch_size: 1_000_000,
            delivery_timeout: Duration::from_secs(30),
            retries: 3,
            rate: None,
            stop: None,
        }
    }
}

/// A record that was not acknowledged in the end.
#[derive(Clone, Debug, Serialize)]
pub struct Failed {
    /// Position of the record in the input (0-based).
    pub index: usize,
    pub error: String,
    pub retriable: bool,
    pub attempts: u32,
}

/// What happened to a run of records.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub sent: usize,
    pub acked: usize,
    pub failed: usize,
    /// Re-sends after retriable failures.
    pub retries: usize,
    pub elapsed_ms: u64,
    pub per_second: f64,
    /// Acknowledged offsets per partition: "topic/partition" → (first, last).
    pub offsets: BTreeMap<String, (i64, i64)>,
    pub failures: Vec<Failed>,
    /// Stopped by Ctrl-C before every record was taken.
    pub interrupted: bool,
}

/// Errors worth sending again: the broker was away or slow, not the record wrong.
pub fn is_retriable(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        MessageTimedOut
            | BrokerTransportFailure
            | AllBrokersDown
            | RequestTimedOut
            | NetworkException
            | LeaderNotAvailable
            | NotLeaderForPartition
            | NotEnoughReplicas
            | NotEnoughReplicasAfterAppend
            | BrokerNotAvailable
            | Resolve
    )
}

/// Explains a delivery error to a student.
pub fn explain(code: RDKafkaErrorCode) -> String {
    match code {
        RDKafkaErrorCode::InvalidRecord => "INVALID_RECORD: the broker's schema check rejected the value (and every other record of its batch)".into(),
        RDKafkaErrorCode::ProducerFenced => "PRODUCER_FENCED: the broker stopped accepting this idempotent producer (it follows a rejected batch on the embedded broker); start a new producer".into(),
        RDKafkaErrorCode::MessageTimedOut => "timed out: no broker acknowledged it within the delivery timeout".into(),
        RDKafkaErrorCode::UnknownTopicOrPartition => "unknown topic or partition: create it first (`chinook topics create`)".into(),
        RDKafkaErrorCode::MessageSizeTooLarge => "the record is larger than the broker accepts".into(),
        other => other.to_string(),
    }
}

impl ProduceOptions {
    pub fn producer(&self, conn: &Connection) -> Result<FutureProducer, KafkaError> {
        self.config(conn).create().map_err(|e| KafkaError::request("creating the producer", e))
    }

    /// The producer's settings: chinook's, then the `-X` overrides.
    pub(crate) fn config(&self, conn: &Connection) -> ClientConfig {
        let mut config = conn.client_config();
        config
            .set("enable.idempotence", self.idempotent.to_string())
            .set("acks", "all")
            .set("compression.type", &self.compression)
            .set("linger.ms", self.linger_ms.to_string())
            .set("batch.size", self.batch_size.to_string())
            .set("message.timeout.ms", self.delivery_timeout.as_millis().to_string())
            .set("retry.backoff.ms", "100")
            .set("retry.backoff.max.ms", "2000")
            // Java's partitioner: the same key lands on the same partition as from Go or Java clients.
            .set("partitioner", "murmur2_random");
        if !self.idempotent {
            config.set("max.in.flight.requests.per.connection", "5");
        }
        conn.apply_overrides(&mut config);
        config
    }
}

/// The in-flight bound when `-X queue.buffering.max.messages` does not set one:
/// small enough that a run of any length stays in a few tens of MB, large enough
/// for librdkafka to fill 1 MB batches on every partition.
const IN_FLIGHT: usize = 20_000;

fn headers(pairs: &[(String, Vec<u8>)]) -> Option<OwnedHeaders> {
    (!pairs.is_empty()).then(|| {
        pairs
            .iter()
            .fold(OwnedHeaders::new_with_capacity(pairs.len()), |h, (k, v)| h.insert(Header { key: k, value: Some(v) }))
    })
}

/// `record` (an rdkafka `FutureRecord` or `BaseRecord`: same builder methods,
/// no shared trait) with the key, partition, timestamp and headers of `r`.
macro_rules! with_fields {
    ($record:expr, $r:expr) => {{
        let (mut record, r): (_, &OutRecord) = ($record, $r);
        if let Some(k) = &r.key {
            record = record.key(k);
        }
        if let Some(p) = r.partition {
            record = record.partition(p);
        }
        if let Some(ts) = r.timestamp {
            record = record.timestamp(ts);
        }
        if let Some(h) = headers(&r.headers) {
            record = record.headers(h);
        }
        record
    }};
}

/// `r` as an rdkafka record for a `BaseProducer` (no per-record state).
pub fn base_record(r: &OutRecord) -> BaseRecord<'_, [u8], [u8]> {
    with_fields!(BaseRecord::<[u8], [u8]>::to(&r.topic).payload(&r.value), r)
}

/// `r` as an rdkafka record whose delivery report carries `opaque`.
pub fn base_record_with<D: rdkafka::util::IntoOpaque>(r: &OutRecord, opaque: D) -> BaseRecord<'_, [u8], [u8], D> {
    with_fields!(BaseRecord::<[u8], [u8], D>::with_opaque_to(&r.topic, opaque).payload(&r.value), r)
}

fn enqueue(producer: &FutureProducer, r: &OutRecord) -> Result<DeliveryFuture, RDKafkaErrorCode> {
    let record = with_fields!(FutureRecord::<[u8], [u8]>::to(&r.topic).payload(&r.value), r);
    producer.send_result(record).map_err(|(e, _)| e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail))
}

/// Sends every record, calling `progress(acked + failed)` as deliveries come back.
///
/// `records` is pulled lazily: at most the in-flight bound (librdkafka's
/// `queue.buffering.max.messages`, [`IN_FLIGHT`] unless `-X` sets it) is held
/// at once, in librdkafka's queue or waiting to be re-sent, so memory does not
/// grow with the number of records. A record waiting for its delivery report
/// lives only in librdkafka's copy; a failed one comes back with its report.
pub async fn produce(
    conn: &Connection,
    options: &ProduceOptions,
    records: impl IntoIterator<Item = OutRecord>,
    progress: impl Fn(u64),
) -> Result<Report, KafkaError> {
    conn.probe().await?;
    let mut run = Run::start(conn, options, progress)?;
    let mut records = records.into_iter();
    for index in 0.. {
        run.settle_ready();
        run.resend_due();
        // Room first, then the next record: never more than the bound pulled ahead of the reports.
        while run.held() >= run.bound {
            run.step().await;
        }
        if options.stop.as_ref().is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
            run.report.interrupted = true;
            break;
        }
        let Some(record) = records.next() else { break };
        run.report.sent += 1;
        if let Some(rate) = options.rate {
            run.wait_until(run.started + Duration::from_secs_f64(index as f64 / rate)).await;
        }
        let topic = run.topics.id(&record.topic);
        run.send(Sent { index, attempt: 0, topic, partition: record.partition }, &record).await;
    }
    while run.held() > 0 {
        run.step().await;
    }
    Ok(run.finish())
}

/// What chinook remembers of a record librdkafka holds: enough to report it,
/// and to re-send the copy librdkafka hands back if it fails.
#[derive(Clone, Copy, Debug)]
struct Sent {
    /// Position in the input.
    index: usize,
    attempt: u32,
    /// Index into [`Run::topics`].
    topic: u32,
    /// The partition the caller chose (None: the partitioner's choice).
    partition: Option<i32>,
}

/// How one delivery ended, as the polling thread reports it.
enum Delivered {
    Acked {
        partition: i32,
        offset: i64,
    },
    /// The error, and the record as librdkafka still held it.
    Failed(RDKafkaErrorCode, OutRecord),
}

/// The producer context: every delivery report goes to one channel, tagged
/// with the slot of its [`Sent`] (no allocation or future per record).
struct Reports(mpsc::UnboundedSender<(usize, Delivered)>);

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, slot: usize) {
        let delivered = match result {
            Ok(m) => Delivered::Acked { partition: m.partition(), offset: m.offset() },
            Err((e, m)) => Delivered::Failed(e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail), detach(m)),
        };
        // The receiver is gone only when the run was abandoned.
        let _ = self.0.send((slot, delivered));
    }
}

/// How often the polling thread returns to check whether it should stop: the
/// longest a finished run waits for it. (rdkafka's `ThreadedProducer` polls in
/// 100 ms steps, which every run paid on its way out.)
const POLL_STEP: Duration = Duration::from_millis(5);

/// librdkafka's producer with a thread of its own serving the delivery reports;
/// dropping it stops the thread (within [`POLL_STEP`]) before the producer goes.
struct Polled {
    producer: Arc<BaseProducer<Reports>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Polled {
    fn new(config: &ClientConfig, reports: Reports) -> Result<Self, KafkaError> {
        let producer: Arc<BaseProducer<Reports>> =
            Arc::new(config.create_with_context(reports).map_err(|e| KafkaError::request("creating the producer", e))?);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("chinook-producer-poll".into())
            .spawn({
                let (producer, stop) = (producer.clone(), stop.clone());
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        producer.poll(POLL_STEP);
                    }
                }
            })
            .map_err(|e| KafkaError::request("starting the producer's polling thread", e))?;
        Ok(Self { producer, stop, thread: Some(thread) })
    }
}

impl Drop for Polled {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A failed record back as an [`OutRecord`] (its partition is set from [`Sent`]).
fn detach(m: &BorrowedMessage<'_>) -> OutRecord {
    OutRecord {
        topic: m.topic().to_string(),
        partition: None,
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().unwrap_or_default().to_vec(),
        headers: m
            .headers()
            .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec())).collect())
            .unwrap_or_default(),
        timestamp: m.timestamp().to_millis(),
    }
}

/// The records librdkafka holds, by slot (the delivery opaque); slots are reused.
#[derive(Default)]
struct InFlight {
    slots: Vec<Sent>,
    free: Vec<usize>,
}

impl InFlight {
    fn insert(&mut self, sent: Sent) -> usize {
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = sent;
                slot
            }
            None => {
                self.slots.push(sent);
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, slot: usize) -> Sent {
        self.free.push(slot);
        self.slots[slot]
    }

    fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

/// The topics of a run, numbered (one topic, almost always).
#[derive(Default)]
struct Topics(Vec<String>);

impl Topics {
    fn id(&mut self, topic: &str) -> u32 {
        let found = self.0.iter().rposition(|t| t == topic);
        found.unwrap_or_else(|| {
            self.0.push(topic.to_string());
            self.0.len() - 1
        }) as u32
    }
}

/// One `produce` in progress.
struct Run<'a, P> {
    producer: Polled,
    deliveries: mpsc::UnboundedReceiver<(usize, Delivered)>,
    options: &'a ProduceOptions,
    progress: P,
    /// At most this many records held at once (in librdkafka or waiting to be re-sent).
    bound: usize,
    started: Instant,
    in_flight: InFlight,
    /// Failed records waiting for their backoff, by due time (then input position).
    waiting: BTreeMap<(Instant, usize), (Sent, OutRecord)>,
    topics: Topics,
    /// (topic, partition) → (first, last) acknowledged offset.
    offsets: HashMap<(u32, i32), (i64, i64)>,
    report: Report,
}

impl<'a, P: Fn(u64)> Run<'a, P> {
    fn start(conn: &Connection, options: &'a ProduceOptions, progress: P) -> Result<Self, KafkaError> {
        let mut config = options.config(conn);
        if config.get("queue.buffering.max.messages").is_none() {
            config.set("queue.buffering.max.messages", IN_FLIGHT.to_string());
        }
        let bound = config.get("queue.buffering.max.messages").and_then(|v| v.parse().ok()).unwrap_or(IN_FLIGHT);
        let (tx, deliveries) = mpsc::unbounded_channel();
        let producer = Polled::new(&config, Reports(tx))?;
        Ok(Self {
            producer,
            deliveries,
            options,
            progress,
            bound: bound.max(1),
            started: Instant::now(),
            in_flight: InFlight::default(),
            waiting: BTreeMap::new(),
            topics: Topics::default(),
            offsets: HashMap::new(),
            report: Report::default(),
        })
    }

    /// Records held: enqueued and not yet reported, or waiting to be re-sent.
    fn held(&self) -> usize {
        self.in_flight.len() + self.waiting.len()
    }

    /// Enqueues one record; while librdkafka's queue is full, waits for deliveries to make room.
    async fn send(&mut self, sent: Sent, r: &OutRecord) {
        loop {
            match self.enqueue(sent, r) {
                Ok(()) => return,
                Err(RDKafkaErrorCode::QueueFull) if self.in_flight.len() > 0 => self.step().await,
                // None of ours awaits a report: librdkafka is still releasing reported ones.
                Err(RDKafkaErrorCode::QueueFull) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(code) => return self.fail(sent, code),
            }
        }
    }

    fn enqueue(&mut self, sent: Sent, r: &OutRecord) -> Result<(), RDKafkaErrorCode> {
        let slot = self.in_flight.insert(sent);
        let record = with_fields!(BaseRecord::<[u8], [u8], usize>::with_opaque_to(&r.topic, slot).payload(&r.value), r);
        self.producer.producer.send(record).map_err(|(e, _)| {
            self.in_flight.remove(slot);
            e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail)
        })
    }

    /// Settles the deliveries already reported, without waiting (keeps progress live).
    fn settle_ready(&mut self) {
        while let Ok((slot, delivered)) = self.deliveries.try_recv() {
            self.settle(slot, delivered);
        }
    }

    /// Waits for the next delivery report or re-send, whichever comes first, and handles it.
    async fn step(&mut self) {
        self.resend_due();
        let next_resend = self.waiting.first_key_value().map(|((due, _), _)| *due);
        tokio::select! {
            Some((slot, delivered)) = self.deliveries.recv(), if self.in_flight.len() > 0 => self.settle(slot, delivered),
            _ = tokio::time::sleep_until(next_resend.unwrap_or(self.started).into()), if next_resend.is_some() => self.resend_due(),
            else => {}
        }
    }

    /// Waits until `due` (for `--rate`), settling deliveries meanwhile.
    async fn wait_until(&mut self, due: Instant) {
        loop {
            tokio::select! {
                biased;
                Some((slot, delivered)) = self.deliveries.recv(), if self.in_flight.len() > 0 => self.settle(slot, delivered),
                _ = tokio::time::sleep_until(due.into()) => return,
            }
        }
    }

    /// Re-sends the failed records whose backoff is over.
    fn resend_due(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.waiting.first_entry()
            && entry.key().0 <= now
        {
            let (sent, mut record) = entry.remove();
            record.partition = sent.partition;
            match self.enqueue(sent, &record) {
                Ok(()) => {}
                // Full for now: try again shortly (the record keeps its attempt count).
                Err(RDKafkaErrorCode::QueueFull) => {
                    self.waiting.insert((now + Duration::from_millis(5), sent.index), (sent, record));
                    return;
                }
                Err(code) => self.fail(sent, code),
            }
        }
    }

    fn settle(&mut self, slot: usize, delivered: Delivered) {
        let sent = self.in_flight.remove(slot);
        match delivered {
            Delivered::Acked { partition, offset } => {
                self.report.acked += 1;
                let e = self.offsets.entry((sent.topic, partition)).or_insert((offset, offset));
                e.0 = e.0.min(offset);
                e.1 = e.1.max(offset);
                self.progressed();
            }
            Delivered::Failed(code, record) if is_retriable(code) && sent.attempt < self.options.retries => {
                let backoff = Duration::from_millis(200 * 2u64.pow(sent.attempt)).min(Duration::from_secs(5));
                let again = Sent { attempt: sent.attempt + 1, ..sent };
                self.waiting.insert((Instant::now() + backoff, sent.index), (again, record));
                self.report.retries += 1;
            }
            Delivered::Failed(code, _) => self.fail(sent, code),
        }
    }

    fn fail(&mut self, sent: Sent, code: RDKafkaErrorCode) {
        self.report.failed += 1;
        self.report.failures.push(Failed {
            index: sent.index,
            error: explain(code),
            retriable: is_retriable(code),
            attempts: sent.attempt + 1,
        });
        self.progressed();
    }

    fn progressed(&self) {
        (self.progress)((self.report.acked + self.report.failed) as u64);
    }

    fn finish(mut self) -> Report {
        let _ = self.producer.producer.flush(Duration::from_secs(5));
        let mut report = std::mem::take(&mut self.report);
        report.offsets = self
            .offsets
            .iter()
            .map(|((topic, partition), range)| (format!("{}/{partition}", self.topics.0[*topic as usize]), *range))
            .collect();
        report.failures.sort_by_key(|f| f.index);
        let elapsed = self.started.elapsed();
        report.elapsed_ms = elapsed.as_millis() as u64;
        report.per_second = report.acked as f64 / elapsed.as_secs_f64().max(1e-9);
        report
    }
}

/// Enqueues every record, then awaits every delivery (no re-sends): for small
/// sends such as dead letters, where each result matters on its own.
pub async fn send_all(producer: &FutureProducer, records: &[OutRecord]) -> Vec<Result<(i32, i64), String>> {
    let deliveries: Vec<_> = records.iter().map(|r| enqueue(producer, r)).collect();
    let mut results = Vec::with_capacity(records.len());
    for delivery in deliveries {
        results.push(match delivery {
            Ok(future) => match future.await {
                Ok(Ok(d)) => Ok((d.partition, d.offset)),
                Ok(Err((e, _))) => Err(e.rdkafka_error_code().map_or_else(|| e.to_string(), explain)),
                Err(_) => Err("the producer went away before the delivery report".into()),
            },
            Err(code) => Err(explain(code)),
        });
    }
    results
}
