//! The group side of a consumer: where each partition starts (planned
//! before joining), and what happens when the group hands partitions out or
//! takes them back.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use rdkafka::{
    ClientContext, Offset, TopicPartitionList,
    consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext},
    types::RDKafkaRespErr,
};

use super::StartAt;
use crate::kafka::{Connection, KafkaError, REQUEST_TIMEOUT};

#[derive(Default)]
pub(super) struct Assignment {
    /// (topic, partition) → offset to stop at: the high watermark when the consumer started.
    pub(super) ends: HashMap<(String, i32), i64>,
    /// (topic, partition) → where to start, used for this member's first
    /// assignment only: every later one (after a rebalance) continues from
    /// the group's committed offsets, so nothing is rewound or read twice.
    pub(super) starts: HashMap<(String, i32), Offset>,
    /// The group already had this many members when this one planned: it
    /// follows the group's commits rather than the requested start.
    pub(super) joined_running_group: Option<usize>,
    /// (topic, partition) → next offset to process, for the partitions assigned now.
    pub(super) next: HashMap<(String, i32), i64>,
    pub(super) assigned_once: bool,
    /// Bumped on every assignment, so the consume loop can report rebalances.
    pub(super) generation: u64,
}

/// The consumer's context. Its rebalance callback must not wait on anything
/// slow: it runs inside `recv()` on the async runtime, and a member stuck there
/// holds up the whole group's rebalance. So offsets are resolved before
/// subscribing; the one round trip it makes is the commit on revocation.
pub(super) struct Ctx {
    pub(super) state: Arc<Mutex<Assignment>>,
}

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let first = !state.assigned_once;
                state.assigned_once = true;
                state.generation += 1;
                let mut assigned = TopicPartitionList::new();
                // Planned starts used now, stored as this member's position so a
                // rebalance before any record arrives hands the same position on.
                let mut planned = TopicPartitionList::new();
                for e in tpl.elements() {
                    let tp = (e.topic().to_string(), e.partition());
                    // The planned start in the first assignment; afterwards the group's commit.
                    let from = if first { state.starts.get(&tp).copied() } else { None }.unwrap_or(Offset::Stored);
                    let _ = assigned.add_partition_offset(e.topic(), e.partition(), from);
                    if matches!(from, Offset::Offset(_)) {
                        let _ = planned.add_partition_offset(e.topic(), e.partition(), from);
                    }
                    // Known starts count at once; a committed start is learnt from the position.
                    state.next.insert(tp, from.to_raw().filter(|o| *o >= 0).unwrap_or(-1));
                }
                drop(state);
                let _ = consumer.assign(&assigned);
                if planned.count() > 0 {
                    let _ = consumer.store_offsets(&planned);
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // Hand over what was processed before the partitions go to someone else,
                // and wait for it: the next owner starts from this commit (a short
                // round trip, the way Kafka's Java clients commit on revocation).
                let _ = consumer.commit_consumer_state(CommitMode::Sync);
                state.next.clear();
                state.generation += 1;
                drop(state);
                let _ = consumer.unassign();
            }
            _ => {}
        }
    }
}

impl Assignment {
    pub(super) fn at_end(&self) -> bool {
        self.assigned_once && self.next.iter().all(|(tp, next)| self.ends.get(tp).is_none_or(|end| *next >= *end))
    }
}

/// Resolves where each partition of `topics` starts and ends, before joining
/// the group. A committed start is the group's offset now (or the oldest
/// record); if another member commits further before we are handed the
/// partition, a few records are read twice — at-least-once, never lost.
///
/// A member joining a group that already has members shares its work: it
/// follows the group's commits whatever start was asked for, or every new
/// terminal of a `--offset start` group would redo what the others did.
pub(super) fn plan_offsets(
    conn: &Connection,
    group: &str,
    topics: &[String],
    mut start: StartAt,
    in_group: bool,
) -> Result<Assignment, KafkaError> {
    let mut config = conn.client_config();
    config.set("group.id", group).set("enable.auto.commit", "false");
    let c: BaseConsumer = config.create().map_err(|e| KafkaError::request("creating a metadata client", e))?;
    let mut plan = Assignment::default();
    if in_group && start != StartAt::Committed {
        let groups =
            c.fetch_group_list(Some(group), REQUEST_TIMEOUT).map_err(|e| KafkaError::request("DescribeGroups", e))?;
        let members = groups.groups().iter().find(|g| g.name() == group).map_or(0, |g| g.members().len());
        if members > 0 {
            plan.joined_running_group = Some(members);
            start = StartAt::Committed;
        }
    }
    for topic in topics {
        let metadata =
            c.fetch_metadata(Some(topic), REQUEST_TIMEOUT).map_err(|e| KafkaError::request("Metadata", e))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(KafkaError::NoTopic { topic: topic.clone() });
        }
        let mut all = TopicPartitionList::new();
        for p in &partitions {
            all.add_partition(topic, *p);
        }
        let committed = match start {
            StartAt::Committed => {
                Some(c.committed_offsets(all, REQUEST_TIMEOUT).map_err(|e| KafkaError::request("OffsetFetch", e))?)
            }
            _ => None,
        };
        for p in partitions {
            let (low, high) =
                c.fetch_watermarks(topic, p, REQUEST_TIMEOUT).map_err(|e| KafkaError::request("ListOffsets", e))?;
            let committed_here = committed
                .as_ref()
                .and_then(|c| c.find_partition(topic, p))
                .and_then(|e| e.offset().to_raw())
                .filter(|o| *o >= 0);
            let from = Offset::Offset(start.offset(&c, (topic, p), (low, high), committed_here)?);
            plan.ends.insert((topic.clone(), p), high);
            plan.starts.insert((topic.clone(), p), from);
        }
    }
    Ok(plan)
}
