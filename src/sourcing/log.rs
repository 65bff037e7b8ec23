//! Reading an event topic as an event store: every committed record of every
//! partition, from the start (or the last `lookback` records) to the end the
//! broker reported when the read began, in offset order per partition; and
//! following it from there ([`tail`]).

use std::{collections::HashMap, time::Duration};

use prost::Message as _;
use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
};

use crate::{
    codec::pb::events::v1::CustomerEvent,
    kafka::{Connection, KafkaError, REQUEST_TIMEOUT},
};

/// How far back `produce` reads each partition to number the next event.
pub const LOOKBACK: i64 = 100_000;

/// One record of the topic: where it is, and its value.
#[derive(Clone, Debug)]
pub struct Stored {
    pub partition: i32,
    pub offset: i64,
    /// The record's timestamp, milliseconds since the epoch.
    pub timestamp: Option<i64>,
    pub value: Vec<u8>,
}

impl Stored {
    /// The value as a customer event, or why it is not one.
    pub fn event(&self) -> Result<CustomerEvent, String> {
        CustomerEvent::decode(self.value.as_slice()).map_err(|e| e.to_string())
    }
}

/// Every committed record of `topic` (aborted transactions left out), or the
/// last `lookback` of each partition. Fails if the read stalls for
/// [`REQUEST_TIMEOUT`] before the end: a partial history would be a wrong one.
pub async fn read(conn: &Connection, topic: &str, lookback: Option<i64>) -> Result<Vec<Stored>, KafkaError> {
    let conn = conn.clone();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || read_blocking(&conn, &topic, lookback))
        .await
        .map_err(|e| KafkaError::request("reading the topic's history", e))?
}

/// A read-committed reader of no group (offsets are never committed).
fn reader(conn: &Connection) -> Result<BaseConsumer, KafkaError> {
    let mut config = conn.client_config();
    config
        .set("group.id", "chinook-history")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "10");
    config.create().map_err(|e| KafkaError::request("creating a reader", e))
}

fn stored(m: &rdkafka::message::BorrowedMessage<'_>) -> Stored {
    Stored {
        partition: m.partition(),
        offset: m.offset(),
        timestamp: m.timestamp().to_millis(),
        value: m.payload().unwrap_or_default().to_vec(),
    }
}

/// Follows `topic` from `next` (the next offset per partition; a partition
/// not named starts at its beginning), sending each committed record to
/// `records` until `stop` is set or nobody receives. Runs on a thread of its own.
pub fn tail(
    conn: &Connection,
    topic: &str,
    next: &HashMap<i32, i64>,
    records: tokio::sync::mpsc::Sender<Stored>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Result<(), KafkaError>> {
    let (conn, topic, next) = (conn.clone(), topic.to_string(), next.clone());
    tokio::task::spawn_blocking(move || {
        let c = reader(&conn)?;
        let metadata =
            c.fetch_metadata(Some(&topic), REQUEST_TIMEOUT).map_err(|e| KafkaError::request("Metadata", e))?;
        let Some(t) = metadata.topics().first().filter(|t| t.error().is_none() && !t.partitions().is_empty()) else {
            return Err(KafkaError::NoTopic { topic });
        };
        let mut tpl = TopicPartitionList::new();
        for p in t.partitions().iter().map(|p| p.id()) {
            let from = next.get(&p).map_or(Offset::Beginning, |o| Offset::Offset(*o));
            tpl.add_partition_offset(&topic, p, from).map_err(|e| KafkaError::request("assign", e))?;
        }
        c.assign(&tpl).map_err(|e| KafkaError::request("assign", e))?;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match c.poll(Duration::from_millis(100)) {
                Some(Ok(m)) if records.blocking_send(stored(&m)).is_err() => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(KafkaError::request("following the topic", e)),
                None => {}
            }
        }
        Ok(())
    })
}

fn read_blocking(conn: &Connection, topic: &str, lookback: Option<i64>) -> Result<Vec<Stored>, KafkaError> {
    let c = reader(conn)?;
    let metadata = c.fetch_metadata(Some(topic), REQUEST_TIMEOUT).map_err(|e| KafkaError::request("Metadata", e))?;
    let Some(t) = metadata.topics().first().filter(|t| t.error().is_none() && !t.partitions().is_empty()) else {
        return Err(KafkaError::NoTopic { topic: topic.to_string() });
    };
    let mut tpl = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for p in t.partitions().iter().map(|p| p.id()) {
        let (low, high) =
            c.fetch_watermarks(topic, p, REQUEST_TIMEOUT).map_err(|e| KafkaError::request("ListOffsets", e))?;
        if high > low {
            let start = lookback.map_or(low, |n| (high - n).max(low));
            tpl.add_partition_offset(topic, p, Offset::Offset(start)).map_err(|e| KafkaError::request("assign", e))?;
            ends.insert(p, high);
        }
    }
    let mut stored = Vec::new();
    if ends.is_empty() {
        return Ok(stored);
    }
    c.assign(&tpl).map_err(|e| KafkaError::request("assign", e))?;
    let mut last_progress = std::time::Instant::now();
    while !ends.is_empty() {
        match c.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                last_progress = std::time::Instant::now();
                stored.push(self::stored(&m));
            }
            Some(Err(e)) => return Err(KafkaError::request("reading the topic's history", e)),
            None => {}
        }
        // The position moves past transaction markers and aborted records too,
        // which are never delivered: the end is reached by position, not by message.
        let position = c.position().map_err(|e| KafkaError::request("reading the topic's history", e))?;
        ends.retain(|p, end| {
            !matches!(position.find_partition(topic, *p).map(|e| e.offset()), Some(Offset::Offset(o)) if o >= *end)
        });
        if last_progress.elapsed() > REQUEST_TIMEOUT {
            return Err(KafkaError::request(
                "reading the topic's history",
                format!("no progress for {} s before the end of partition(s) {:?}", REQUEST_TIMEOUT.as_secs(), {
                    let mut open: Vec<_> = ends.keys().collect();
                    open.sort();
                    open
                }),
            ));
        }
    }
    stored.sort_by_key(|s| (s.partition, s.offset));
    Ok(stored)
}

/// The highest `version` per aggregate id among the last [`LOOKBACK`]
/// records of each partition: what `produce` numbers the next event from.
pub async fn last_versions(conn: &Connection, topic: &str) -> Result<HashMap<String, i64>, KafkaError> {
    let mut versions: HashMap<String, i64> = HashMap::new();
    let stored = match read(conn, topic, Some(LOOKBACK)).await {
        // No topic yet: no history; the send itself will say what is wrong.
        Err(KafkaError::NoTopic { .. }) => Vec::new(),
        other => other?,
    };
    for e in stored.iter().filter_map(|s| s.event().ok()) {
        let v = versions.entry(e.aggregate_id).or_default();
        *v = (*v).max(e.version);
    }
    Ok(versions)
}
