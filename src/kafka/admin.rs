//! Admin operations: create the lab topics, list and describe topics with
//! their high-water marks, and a metadata round trip for `broker status`.

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication},
    client::DefaultClientContext,
    consumer::{BaseConsumer, Consumer},
    types::RDKafkaErrorCode,
};
use serde::Serialize;

use super::{Connection, KafkaError, REQUEST_TIMEOUT, topics::TopicPlan};

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PartitionInfo {
    pub id: i32,
    pub leader: i32,
    /// First offset still stored.
    pub low: i64,
    /// Offset the next record will get (= records ever written, when low is 0).
    pub high: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: Vec<PartitionInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<(String, String)>,
}

impl TopicInfo {
    pub fn records(&self) -> i64 {
        self.partitions.iter().map(|p| p.high - p.low).sum()
    }
}

/// What `topics create` did to one topic.
#[derive(Clone, Debug, Serialize)]
pub struct Created {
    pub name: String,
    pub partitions: i32,
    /// "created", or "exists" when it was there already.
    pub outcome: &'static str,
    /// Set when an existing topic's partition count differs from the plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mismatch: Option<String>,
}

fn admin(conn: &Connection) -> Result<AdminClient<DefaultClientContext>, KafkaError> {
    conn.client_config().create().map_err(|e| KafkaError::request("creating an admin client", e))
}

fn consumer(conn: &Connection) -> Result<BaseConsumer, KafkaError> {
    let mut config = conn.client_config();
    config.set("group.id", "chinook-admin").set("enable.auto.commit", "false");
    config.create().map_err(|e| KafkaError::request("creating a metadata client", e))
}

/// Creates the planned topics; existing ones are left alone and reported.
pub async fn create_topics(conn: &Connection, plan: &[TopicPlan], bufstream: bool) -> Result<Vec<Created>, KafkaError> {
    conn.probe().await?;
    let admin = admin(conn)?;
    let configs: Vec<Vec<(&str, &str)>> =
        plan.iter().map(|t| if bufstream { super::topics::bufstream_configs(t) } else { vec![] }).collect();
    let topics: Vec<NewTopic<'_>> = plan
        .iter()
        .zip(&configs)
        .map(|(t, cfg)| {
            cfg.iter().fold(NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(1)), |nt, (k, v)| nt.set(k, v))
        })
        .collect();
    let results = admin
        .create_topics(&topics, &AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT)))
        .await
        .map_err(|e| KafkaError::request("CreateTopics", e))?;
    let existing = list_topics(conn).await?;
    let mut out = Vec::new();
    for (t, result) in plan.iter().zip(results) {
        let outcome = match result {
            Ok(_) => "created",
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => "exists",
            Err((name, code)) => {
                return Err(KafkaError::request(&format!("creating topic {name}"), code));
            }
        };
        let seen = existing.iter().find(|i| i.name == t.name).map(|i| i.partitions.len() as i32);
        let mismatch = seen.filter(|n| *n != t.partitions).map(|n| {
            format!(
                "has {n} partitions, the lab expects {}: delete and recreate it (or restart the embedded broker)",
                t.partitions
            )
        });
        out.push(Created { name: t.name.to_string(), partitions: seen.unwrap_or(t.partitions), outcome, mismatch });
    }
    Ok(out)
}

/// Deletes topics (used by checks and tests that make temporary ones).
pub async fn delete_topics(conn: &Connection, names: &[&str]) -> Result<(), KafkaError> {
    let admin = admin(conn)?;
    admin
        .delete_topics(names, &AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT)))
        .await
        .map_err(|e| KafkaError::request("DeleteTopics", e))?;
    Ok(())
}

/// The names of every topic (internal topics hidden): one Metadata request,
/// no watermarks (cheap on a slow link, e.g. for a clean-up after Ctrl-C).
pub async fn topic_names(conn: &Connection) -> Result<Vec<String>, KafkaError> {
    conn.probe().await?;
    let conn = conn.clone();
    tokio::task::spawn_blocking(move || {
        let metadata =
            consumer(&conn)?.fetch_metadata(None, REQUEST_TIMEOUT).map_err(|e| KafkaError::request("Metadata", e))?;
        let mut names: Vec<String> =
            metadata.topics().iter().map(|t| t.name().to_string()).filter(|n| !n.starts_with("__")).collect();
        names.sort();
        Ok(names)
    })
    .await
    .map_err(|e| KafkaError::request("Metadata", e))?
}

/// Every topic with its partitions and watermarks (internal topics hidden).
pub async fn list_topics(conn: &Connection) -> Result<Vec<TopicInfo>, KafkaError> {
    conn.probe().await?;
    let conn = conn.clone();
    tokio::task::spawn_blocking(move || {
        let consumer = consumer(&conn)?;
        let metadata =
            consumer.fetch_metadata(None, REQUEST_TIMEOUT).map_err(|e| KafkaError::request("Metadata", e))?;
        let mut topics = Vec::new();
        for t in metadata.topics().iter().filter(|t| !t.name().starts_with("__")) {
            let mut partitions = Vec::new();
            for p in t.partitions() {
                let (low, high) = consumer
                    .fetch_watermarks(t.name(), p.id(), REQUEST_TIMEOUT)
                    .map_err(|e| KafkaError::request(&format!("ListOffsets for {}/{}", t.name(), p.id()), e))?;
                partitions.push(PartitionInfo { id: p.id(), leader: p.leader(), low, high });
            }
            partitions.sort_by_key(|p| p.id);
            topics.push(TopicInfo { name: t.name().to_string(), partitions, configs: vec![] });
        }
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    })
    .await
    .map_err(|e| KafkaError::request("Metadata", e))?
}

/// One topic with its partitions, watermarks and configs.
pub async fn describe_topic(conn: &Connection, name: &str) -> Result<TopicInfo, KafkaError> {
    let mut info = list_topics(conn)
        .await?
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| KafkaError::NoTopic { topic: name.to_string() })?;
    let admin = admin(conn)?;
    if let Ok(results) = admin
        .describe_configs(
            [&ResourceSpecifier::Topic(name)],
            &AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT)),
        )
        .await
    {
        for resource in results.into_iter().flatten() {
            for entry in resource.entries {
                if let Some(value) = entry.value {
                    info.configs.push((entry.name, value));
                }
            }
        }
        info.configs.sort();
    }
    Ok(info)
}
