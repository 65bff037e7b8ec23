//! The batching producer: records are enqueued into librdkafka (which batches
//! them per partition) and their deliveries awaited together — never one
//! `send().await` per record. Idempotent with acks=all by default; records
//! that fail with a retriable error are re-sent with exponential backoff, a
//! bounded number of times; what finally failed is reported with its reason.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use futures::{FutureExt, StreamExt, future::BoxFuture, stream::FuturesUnordered};
use rdkafka::{
    message::{Header, OwnedHeaders},
    producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer},
    types::RDKafkaErrorCode,
};
use serde::Serialize;

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
        config.create().map_err(|e| KafkaError::request("creating the producer", e))
    }
}

/// (record index, attempt, partition and offset or the error)
type Outcome = (usize, u32, Result<(i32, i64), RDKafkaErrorCode>);
type Pending = FuturesUnordered<BoxFuture<'static, Outcome>>;

fn enqueue(producer: &FutureProducer, r: &OutRecord) -> Result<DeliveryFuture, RDKafkaErrorCode> {
    let mut record = FutureRecord::<[u8], [u8]>::to(&r.topic).payload(&r.value);
    if let Some(k) = &r.key {
        record = record.key(k);
    }
    if let Some(p) = r.partition {
        record = record.partition(p);
    }
    if let Some(ts) = r.timestamp {
        record = record.timestamp(ts);
    }
    if !r.headers.is_empty() {
        let headers = r.headers.iter().fold(OwnedHeaders::new_with_capacity(r.headers.len()), |h, (k, v)| {
            h.insert(Header { key: k, value: Some(v) })
        });
        record = record.headers(headers);
    }
    producer.send_result(record).map_err(|(e, _)| e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail))
}

fn watch(pending: &Pending, index: usize, attempt: u32, delivery: DeliveryFuture) {
    pending.push(
        async move {
            let result = match delivery.await {
                Ok(Ok(d)) => Ok((d.partition, d.offset)),
                Ok(Err((e, _))) => Err(e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail)),
                Err(_) => Err(RDKafkaErrorCode::Fail),
            };
            (index, attempt, result)
        }
        .boxed(),
    );
}

/// Sends every record, calling `progress(acked + failed)` as deliveries come back.
pub async fn produce(
    conn: &Connection,
    options: &ProduceOptions,
    records: Vec<OutRecord>,
    progress: impl Fn(u64),
) -> Result<Report, KafkaError> {
    conn.probe().await?;
    let producer = options.producer(conn)?;
    let started = Instant::now();
    let mut report = Report { sent: records.len(), ..Default::default() };
    let mut pending: Pending = FuturesUnordered::new();
    let mut retry_queue: Vec<(Instant, usize, u32)> = Vec::new();

    let settle = |report: &mut Report, retry_queue: &mut Vec<(Instant, usize, u32)>, outcome: Outcome| {
        let (index, attempt, result) = outcome;
        match result {
            Ok((partition, offset)) => {
                report.acked += 1;
                let key = format!("{}/{partition}", records[index].topic);
                let e = report.offsets.entry(key).or_insert((offset, offset));
                e.0 = e.0.min(offset);
                e.1 = e.1.max(offset);
                progress((report.acked + report.failed) as u64);
            }
            Err(code) if is_retriable(code) && attempt < options.retries => {
                let backoff = Duration::from_millis(200 * 2u64.pow(attempt)).min(Duration::from_secs(5));
                retry_queue.push((Instant::now() + backoff, index, attempt + 1));
                report.retries += 1;
            }
            Err(code) => {
                report.failed += 1;
                report.failures.push(Failed {
                    index,
                    error: explain(code),
                    retriable: is_retriable(code),
                    attempts: attempt + 1,
                });
                progress((report.acked + report.failed) as u64);
            }
        }
    };

    for (index, record) in records.iter().enumerate() {
        if let Some(rate) = options.rate {
            // Wait for this record's turn, settling deliveries meanwhile.
            let due = started + Duration::from_secs_f64(index as f64 / rate);
            loop {
                tokio::select! {
                    biased;
                    Some(outcome) = pending.next(), if !pending.is_empty() => settle(&mut report, &mut retry_queue, outcome),
                    _ = tokio::time::sleep_until(due.into()) => break,
                }
            }
        }
        // Settle whatever is already delivered, without waiting (keeps progress live).
        while let Some(Some(outcome)) = pending.next().now_or_never() {
            settle(&mut report, &mut retry_queue, outcome);
        }
        loop {
            match enqueue(&producer, record) {
                Ok(delivery) => {
                    watch(&pending, index, 0, delivery);
                    break;
                }
                // librdkafka's queue is full: wait for a delivery to make room.
                Err(RDKafkaErrorCode::QueueFull) => match pending.next().await {
                    Some(outcome) => settle(&mut report, &mut retry_queue, outcome),
                    None => tokio::time::sleep(Duration::from_millis(5)).await,
                },
                Err(code) => {
                    settle(&mut report, &mut retry_queue, (index, options.retries, Err(code)));
                    break;
                }
            }
        }
    }
    // Drain deliveries and re-send retriable failures after their backoff.
    loop {
        retry_queue.sort_by_key(|r| r.0);
        while retry_queue.first().is_some_and(|r| r.0 <= Instant::now()) {
            let (_, index, attempt) = retry_queue.remove(0);
            match enqueue(&producer, &records[index]) {
                Ok(delivery) => watch(&pending, index, attempt, delivery),
                Err(code) => settle(&mut report, &mut retry_queue, (index, options.retries, Err(code))),
            }
        }
        let next_retry = retry_queue.first().map(|r| r.0);
        if pending.is_empty() && next_retry.is_none() {
            break;
        }
        let wake = next_retry.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            Some(outcome) = pending.next() => settle(&mut report, &mut retry_queue, outcome),
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    }
    let _ = producer.flush(Duration::from_secs(5));
    report.failures.sort_by_key(|f| f.index);
    let elapsed = started.elapsed();
    report.elapsed_ms = elapsed.as_millis() as u64;
    report.per_second = report.acked as f64 / elapsed.as_secs_f64().max(1e-9);
    Ok(report)
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
