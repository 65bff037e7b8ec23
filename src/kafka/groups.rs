//! Consumer groups: list them, describe members, assignments, committed
//! offsets and lag, and reset a group's offsets (only while it has no members).

use std::collections::BTreeMap;

use rdkafka::{
    Offset, TopicPartitionList,
    consumer::{BaseConsumer, CommitMode, Consumer},
};
use serde::Serialize;

use super::{Connection, KafkaError, REQUEST_TIMEOUT, admin, consumer::StartAt};

#[derive(Clone, Debug, Serialize)]
pub struct GroupSummary {
    pub group: String,
    pub state: String,
    pub members: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Member {
    pub id: String,
    pub client_id: String,
    pub host: String,
    /// "topic/partition" entries.
    pub assignment: Vec<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// Next offset the group will read; None when it never committed here.
    pub committed: Option<i64>,
    pub high: i64,
    pub lag: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupDescription {
    pub group: String,
    pub state: String,
    pub members: Vec<Member>,
    pub partitions: Vec<PartitionLag>,
    pub total_lag: i64,
}

fn client(conn: &Connection, group: &str) -> Result<BaseConsumer, KafkaError> {
    let mut config = conn.client_config();
    config.set("group.id", group).set("enable.auto.commit", "false");
    config.create().map_err(|e| KafkaError::request("creating a group client", e))
}

/// Parses a member assignment in Kafka's consumer protocol: version, then
/// [topic, [partition]] arrays (user data after that is ignored).
pub fn parse_assignment(bytes: &[u8]) -> Vec<(String, i32)> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (b.get(..n)?, b.get(n..)?);
        *b = tail;
        Some(head)
    }
    let mut b = bytes;
    let mut out = Vec::new();
    let parse = |b: &mut &[u8], out: &mut Vec<(String, i32)>| -> Option<()> {
        take(b, 2)?;
        let topics = i32::from_be_bytes(take(b, 4)?.try_into().ok()?);
        for _ in 0..topics.max(0) {
            let len = i16::from_be_bytes(take(b, 2)?.try_into().ok()?) as usize;
            let topic = String::from_utf8_lossy(take(b, len)?).into_owned();
            let parts = i32::from_be_bytes(take(b, 4)?.try_into().ok()?);
            for _ in 0..parts.max(0) {
                out.push((topic.clone(), i32::from_be_bytes(take(b, 4)?.try_into().ok()?)));
            }
        }
        Some(())
    };
    let _ = parse(&mut b, &mut out);
    out
}

pub async fn list(conn: &Connection) -> Result<Vec<GroupSummary>, KafkaError> {
    conn.probe().await?;
    let conn = conn.clone();
    tokio::task::spawn_blocking(move || {
        let c = client(&conn, "chinook-admin")?;
        let groups = c.fetch_group_list(None, REQUEST_TIMEOUT).map_err(|e| KafkaError::request("ListGroups", e))?;
        let mut out: Vec<GroupSummary> = groups
            .groups()
            .iter()
            .filter(|g| g.name() != "chinook-admin")
            .map(|g| GroupSummary {
                group: g.name().to_string(),
                state: g.state().to_string(),
                members: g.members().len(),
            })
            .collect();
        out.sort_by(|a, b| a.group.cmp(&b.group));
        Ok(out)
    })
    .await
    .map_err(|e| KafkaError::request("ListGroups", e))?
}

pub async fn describe(conn: &Connection, group: &str) -> Result<GroupDescription, KafkaError> {
    let topics = admin::list_topics(conn).await?;
    let (conn, group) = (conn.clone(), group.to_string());
    tokio::task::spawn_blocking(move || {
        let c = client(&conn, &group)?;
        let list =
            c.fetch_group_list(Some(&group), REQUEST_TIMEOUT).map_err(|e| KafkaError::request("DescribeGroups", e))?;
        let info = list.groups().iter().find(|g| g.name() == group);
        let state = info.map_or_else(|| "Unknown".to_string(), |g| g.state().to_string());
        let members: Vec<Member> = info
            .map(|g| {
                g.members()
                    .iter()
                    .map(|m| Member {
                        id: m.id().to_string(),
                        client_id: m.client_id().to_string(),
                        host: m.client_host().to_string(),
                        assignment: m
                            .assignment()
                            .map(parse_assignment)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(t, p)| format!("{t}/{p}"))
                            .collect(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let owner: BTreeMap<String, String> =
            members.iter().flat_map(|m| m.assignment.iter().map(|tp| (tp.clone(), m.client_id.clone()))).collect();
        let mut tpl = TopicPartitionList::new();
        for t in &topics {
            for p in &t.partitions {
                tpl.add_partition(&t.name, p.id);
            }
        }
        let committed = c.committed_offsets(tpl, REQUEST_TIMEOUT).map_err(|e| KafkaError::request("OffsetFetch", e))?;
        let at = |topic: &str, p: i32| {
            committed.find_partition(topic, p).and_then(|e| e.offset().to_raw()).filter(|o| *o >= 0)
        };
        let mut partitions = Vec::new();
        // Every partition of a topic the group reads (it committed or owns some of it):
        // a partition it never committed is lag from the log start, not something to hide.
        let reads = |t: &admin::TopicInfo| {
            t.partitions
                .iter()
                .any(|p| at(&t.name, p.id).is_some() || owner.contains_key(&format!("{}/{}", t.name, p.id)))
        };
        for t in topics.iter().filter(|t| reads(t)) {
            for p in &t.partitions {
                let at = at(&t.name, p.id);
                let key = format!("{}/{}", t.name, p.id);
                // Watermarks read after the commits, so lag is never negative.
                let (low, high) = c.fetch_watermarks(&t.name, p.id, REQUEST_TIMEOUT).unwrap_or((p.low, p.high));
                let lag = high - at.unwrap_or(low);
                partitions.push(PartitionLag {
                    topic: t.name.clone(),
                    partition: p.id,
                    committed: at,
                    high,
                    lag,
                    member: owner.get(&key).cloned(),
                });
            }
        }
        let total_lag = partitions.iter().map(|p| p.lag).sum();
        Ok(GroupDescription { group, state, members, partitions, total_lag })
    })
    .await
    .map_err(|e| KafkaError::request("DescribeGroups", e))?
}

/// A planned (or done) offset change.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Reset {
    pub topic: String,
    pub partition: i32,
    pub from: Option<i64>,
    pub to: i64,
}

/// Where to move a group's offsets.
#[derive(Clone, Copy, Debug)]
pub enum ResetTo {
    At(StartAt),
    Offset(i64),
}

/// Plans a reset of `group` on `topic` (or every topic it committed on);
/// applies it with `execute`. Refuses while the group has members.
pub async fn reset(
    conn: &Connection,
    group: &str,
    topic: Option<&str>,
    to: ResetTo,
    execute: bool,
) -> Result<Vec<Reset>, KafkaError> {
    let desc = describe(conn, group).await?;
    if !desc.members.is_empty() {
        return Err(KafkaError::Request {
            operation: format!("resetting group {group}"),
            reason: format!(
                "it has {} active member(s): offsets may only move while nobody consumes",
                desc.members.len()
            ),
            help: "stop the group's consumers first, then run the reset again".into(),
        });
    }
    let topics = admin::list_topics(conn).await?;
    let wanted: Vec<(String, i32, Option<i64>, i64, i64)> = topics
        .iter()
        .filter(|t| topic.map_or_else(|| desc.partitions.iter().any(|p| p.topic == t.name), |name| t.name == name))
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                let from =
                    desc.partitions.iter().find(|d| d.topic == t.name && d.partition == p.id).and_then(|d| d.committed);
                (t.name.clone(), p.id, from, p.low, p.high)
            })
        })
        .collect();
    if wanted.is_empty() {
        return Err(KafkaError::Request {
            operation: format!("resetting group {group}"),
            reason: "it has no committed offsets and no --topic was given".into(),
            help: "name the topic: --topic customer_events".into(),
        });
    }
    let (conn, group) = (conn.clone(), group.to_string());
    tokio::task::spawn_blocking(move || {
        let c = client(&conn, &group)?;
        let mut plan = Vec::new();
        for (t, p, from, low, high) in wanted {
            let target = match to {
                ResetTo::Offset(o) => o.clamp(low, high),
                ResetTo::At(start) => start.offset(&c, (&t, p), (low, high), from)?,
            };
            plan.push(Reset { topic: t, partition: p, from, to: target });
        }
        if execute {
            let mut tpl = TopicPartitionList::new();
            for r in &plan {
                let _ = tpl.add_partition_offset(&r.topic, r.partition, Offset::Offset(r.to));
            }
            c.commit(&tpl, CommitMode::Sync).map_err(|e| KafkaError::request("OffsetCommit", e))?;
        }
        Ok(plan)
    })
    .await
    .map_err(|e| KafkaError::request("OffsetCommit", e))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_consumer_protocol_assignment() {
        let mut b = vec![0, 0, 0, 0, 0, 1, 0, 15];
        b.extend_from_slice(b"customer_events");
        b.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(parse_assignment(&b), vec![("customer_events".to_string(), 0), ("customer_events".to_string(), 2)]);
        assert!(parse_assignment(&[0, 0, 0]).is_empty(), "cut-off input gives what was read, no panic");
    }
}
