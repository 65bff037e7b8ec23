//! `chinook correlate`: every message of one business operation — events,
//! commands and saga messages sharing a correlation id, across topics — as
//! the causal tree their causation ids draw, with the time between each
//! message and its cause. A causation id that names no message (an orphan)
//! and causation chains that loop (a cycle) are reported, not hidden.

use std::collections::{BTreeMap, HashMap, HashSet};

use prost::Message as _;
use serde::Serialize;

use crate::{
    codec::pb::events::v1::{CustomerCommand, CustomerEvent, SagaMessage, SagaStep, customer_command::Action},
    kafka::{Connection, KafkaError},
    saga::steps::step_name,
};

/// One message of the operation.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    /// What it is: `event CUSTOMER_EVENT_TYPE_CREATED`, `command CREATE_CUSTOMER`, `saga completed welcome-email`.
    pub kind: String,
    /// `topic/partition@offset`.
    pub at: String,
    /// Milliseconds since the epoch (the message's own timestamp).
    pub time: i64,
    /// Empty for a root.
    pub causation_id: String,
}

/// The operation as a tree.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Tree {
    pub correlation_id: String,
    /// Messages with no causation id: where the operation starts.
    pub roots: Vec<String>,
    /// Each message's children (the messages it caused), in time order.
    pub children: BTreeMap<String, Vec<String>>,
    pub nodes: BTreeMap<String, Node>,
    /// Messages whose causation id names no message of the operation.
    pub orphans: Vec<String>,
    /// Messages on a causation loop (each loop once, in chain order).
    pub cycles: Vec<Vec<String>>,
}

/// Builds the tree of `nodes` (every one sharing `correlation_id`).
pub fn build(correlation_id: &str, mut nodes: Vec<Node>) -> Tree {
    nodes.sort_by(|a, b| (a.time, &a.at).cmp(&(b.time, &b.at)));
    let mut tree = Tree { correlation_id: correlation_id.to_string(), ..Default::default() };
    let ids: HashSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    for n in &nodes {
        if n.causation_id.is_empty() {
            tree.roots.push(n.id.clone());
        } else if ids.contains(n.causation_id.as_str()) {
            tree.children.entry(n.causation_id.clone()).or_default().push(n.id.clone());
        } else {
            tree.orphans.push(n.id.clone());
        }
    }
    // A node on a loop never reaches a root or an orphan by its causation ids.
    let cause: HashMap<&str, &str> = nodes
        .iter()
        .filter(|n| ids.contains(n.causation_id.as_str()))
        .map(|n| (n.id.as_str(), n.causation_id.as_str()))
        .collect();
    let mut on_cycle: HashSet<String> = HashSet::new();
    for n in &nodes {
        let mut seen = Vec::new();
        let mut at = n.id.as_str();
        while let Some(next) = cause.get(at) {
            if let Some(i) = seen.iter().position(|s| *s == at) {
                let cycle: Vec<String> = seen[i..].iter().map(|s: &&str| s.to_string()).collect();
                if !cycle.iter().any(|c| on_cycle.contains(c)) {
                    on_cycle.extend(cycle.iter().cloned());
                    tree.cycles.push(cycle);
                }
                break;
            }
            seen.push(at);
            at = next;
        }
    }
    tree.nodes = nodes.into_iter().map(|n| (n.id.clone(), n)).collect();
    tree
}

/// Where each kind of message travels.
#[derive(Clone, Debug)]
pub struct Topics {
    pub events: String,
    pub commands: String,
    pub saga: String,
}

/// Reads the three topics and builds the tree of `correlation_id`.
pub async fn read(conn: &Connection, topics: &Topics, correlation_id: &str) -> Result<Tree, KafkaError> {
    let mut nodes = Vec::new();
    for (topic, which) in [(&topics.events, 0), (&topics.commands, 1), (&topics.saga, 2)] {
        let stored = match crate::sourcing::log::read(conn, topic, None).await {
            Err(KafkaError::NoTopic { .. }) => continue,
            other => other?,
        };
        for s in stored {
            let at = format!("{topic}/{}@{}", s.partition, s.offset);
            let record_time = s.timestamp.unwrap_or_default();
            let node = match which {
                0 => CustomerEvent::decode(s.value.as_slice()).ok().filter(|e| e.correlation_id == correlation_id).map(
                    |e| Node {
                        kind: format!(
                            "event {}",
                            crate::events::route(&e)
                                .ok()
                                .flatten()
                                .map_or("?".to_string(), |t| t.as_str_name().to_string())
                        ),
                        time: e.timestamp.as_ref().map_or(record_time, crate::events::millis),
                        id: e.event_id,
                        causation_id: e.causation_id,
                        at,
                    },
                ),
                1 => CustomerCommand::decode(s.value.as_slice())
                    .ok()
                    .filter(|c| c.correlation_id == correlation_id)
                    .map(|c| Node {
                        kind: format!(
                            "command {}",
                            match c.action {
                                Some(Action::CreateCustomer(_)) => "CREATE_CUSTOMER",
                                Some(Action::UpdateCustomer(_)) => "UPDATE_CUSTOMER",
                                Some(Action::DeleteCustomer(_)) => "DELETE_CUSTOMER",
                                None => "?",
                            }
                        ),
                        time: c.timestamp.as_ref().map_or(record_time, crate::events::millis),
                        id: c.command_id,
                        causation_id: String::new(),
                        at,
                    }),
                _ => SagaMessage::decode(s.value.as_slice()).ok().filter(|m| m.correlation_id == correlation_id).map(
                    |m| {
                        let (kind, _) = crate::saga::history::kind(&m.body);
                        Node {
                            kind: format!("saga {kind} {}", step_name(SagaStep::try_from(m.step).unwrap_or_default())),
                            time: m.timestamp.as_ref().map_or(record_time, crate::events::millis),
                            id: m.message_id,
                            causation_id: m.causation_id,
                            at,
                        }
                    },
                ),
            };
            nodes.extend(node.filter(|n| !n.id.is_empty()));
        }
    }
    Ok(build(correlation_id, nodes))
}

impl Tree {
    /// The tree as indented lines: kind, id, time since its cause.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack: Vec<(String, usize)> =
            self.roots.iter().chain(&self.orphans).rev().map(|r| (r.clone(), 0)).collect();
        let mut printed = HashSet::new();
        while let Some((id, depth)) = stack.pop() {
            if !printed.insert(id.clone()) {
                continue;
            }
            let n = &self.nodes[&id];
            let since = self.nodes.get(&n.causation_id).map_or(String::new(), |c| format!("  +{} ms", n.time - c.time));
            let orphan = if self.orphans.contains(&id) { "  ⚠ caused by an unknown message" } else { "" };
            out.push(format!("{}{}  {}{since}{orphan}", "   ".repeat(depth), n.kind, n.id));
            for child in self.children.get(&id).into_iter().flatten().rev() {
                stack.push((child.clone(), depth + 1));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, cause: &str, time: i64) -> Node {
        Node { id: id.into(), kind: "saga".into(), at: format!("t/0@{time}"), time, causation_id: cause.into() }
    }

    #[test]
    fn a_chain_with_a_branch_an_orphan_and_a_loop() {
        let tree = build(
            "c",
            vec![
                node("cmd", "", 0),
                node("a", "cmd", 5),
                node("b", "a", 9),
                node("e", "a", 7),
                node("lost", "nowhere", 3),
                node("x", "y", 20),
                node("y", "x", 21),
            ],
        );
        assert_eq!(tree.roots, ["cmd"]);
        assert_eq!(tree.children["a"], ["e", "b"], "children in time order");
        assert_eq!(tree.orphans, ["lost"]);
        assert_eq!(tree.cycles.len(), 1);
        let mut cycle = tree.cycles[0].clone();
        cycle.sort();
        assert_eq!(cycle, ["x", "y"]);
        let lines = tree.lines();
        assert_eq!(lines[0], "saga  cmd");
        assert_eq!(lines[1], "   saga  a  +5 ms");
        assert!(lines.iter().any(|l| l.contains("lost") && l.contains("unknown message")));
    }
}
