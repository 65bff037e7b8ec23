//! What the topic already says about customers: the last event version of
//! each aggregate, so `produce` can number the next event (created = 1, then
//! +1), the way an event-sourced writer reads its stream before appending.

use std::{collections::HashMap, time::Duration};

use prost::Message as _;
use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
};

use super::{Connection, KafkaError, REQUEST_TIMEOUT};
use crate::codec::pb::events::v1::CustomerEvent;

/// How far back each partition is read.
pub const LOOKBACK: i64 = 100_000;

/// The highest `version` seen per aggregate id among the last [`LOOKBACK]
/// records of every partition of `topic`.
pub async fn last_versions(conn: &Connection, topic: &str) -> Result<HashMap<String, i64>, KafkaError> {
    let conn = conn.clone();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let mut config = conn.client_config();
        config.set("group.id", "chinook-history").set("enable.auto.commit", "false").set("fetch.wait.max.ms", "10");
        let c: BaseConsumer = config.create().map_err(|e| KafkaError::request("creating a reader", e))?;
        let metadata =
            c.fetch_metadata(Some(&topic), REQUEST_TIMEOUT).map_err(|e| KafkaError::request("Metadata", e))?;
        let partitions: Vec<i32> =
            metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
        let mut tpl = TopicPartitionList::new();
        let mut ends = HashMap::new();
        for p in partitions {
            let (low, high) =
                c.fetch_watermarks(&topic, p, REQUEST_TIMEOUT).map_err(|e| KafkaError::request("ListOffsets", e))?;
            if high > low {
                tpl.add_partition_offset(&topic, p, Offset::Offset((high - LOOKBACK).max(low)))
                    .map_err(|e| KafkaError::request("assign", e))?;
                ends.insert(p, high);
            }
        }
        let mut versions: HashMap<String, i64> = HashMap::new();
        if ends.is_empty() {
            return Ok(versions);
        }
        c.assign(&tpl).map_err(|e| KafkaError::request("assign", e))?;
        let deadline = std::time::Instant::now() + REQUEST_TIMEOUT;
        while !ends.is_empty() && std::time::Instant::now() < deadline {
            match c.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    if let Ok(e) = CustomerEvent::decode(m.payload().unwrap_or_default()) {
                        let v = versions.entry(e.aggregate_id).or_default();
                        *v = (*v).max(e.version);
                    }
                    if ends.get(&m.partition()).is_some_and(|end| m.offset() + 1 >= *end) {
                        ends.remove(&m.partition());
                    }
                }
                Some(Err(e)) => return Err(KafkaError::request("reading the topic's history", e)),
                None => {}
            }
        }
        Ok(versions)
    })
    .await
    .map_err(|e| KafkaError::request("reading the topic's history", e))?
}
