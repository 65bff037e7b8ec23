//! What the saga topic says: each saga's messages in order, where it stands,
//! and whether its messages are well formed — the right correlation id, a
//! causation id that points at the message it answers, no step done twice,
//! compensation in reverse order. `saga status`/`saga list` show it; Lab 2's
//! checks judge a student's orchestrator with it.

use std::collections::{BTreeMap, HashSet};

use prost::Message as _;
use serde::Serialize;

use super::steps::{STEPS, step_name};
use crate::{
    codec::pb::events::v1::{SagaMessage, SagaStep, saga_message::Body},
    kafka::{Connection, KafkaError},
};

/// Where a saga stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Running,
    Completed,
    /// A step failed and the saga ended compensated.
    Compensated,
}

/// One message as shown.
#[derive(Clone, Debug, Serialize)]
pub struct Line {
    pub kind: &'static str,
    pub step: &'static str,
    pub message_id: String,
    pub causation_id: String,
    /// Milliseconds since the epoch.
    pub at: i64,
    pub detail: String,
}

/// One saga, as its messages tell it.
#[derive(Clone, Debug, Serialize)]
pub struct Saga {
    pub correlation_id: String,
    pub customer_id: Option<i64>,
    pub command_id: Option<String>,
    pub outcome: Outcome,
    pub messages: Vec<Line>,
    /// What is wrong with the messages (empty: well formed).
    pub problems: Vec<String>,
}

impl Saga {
    /// The kinds and steps in order: `completed welcome-email`, ….
    pub fn trail(&self) -> Vec<String> {
        self.messages.iter().map(|l| format!("{} {}", l.kind, l.step)).collect()
    }
}

pub fn kind(body: &Option<Body>) -> (&'static str, String) {
    match body {
        Some(Body::Started(s)) => ("started", format!("customer {}", s.customer.as_ref().map_or(0, |c| c.id))),
        Some(Body::Completed(c)) => ("completed", c.detail.clone()),
        Some(Body::Failed(f)) => ("failed", f.reason.clone()),
        Some(Body::Compensated(c)) => ("compensated", c.detail.clone()),
        Some(Body::SagaCompleted(_)) => ("saga-completed", String::new()),
        Some(Body::SagaFailed(f)) => ("saga-failed", f.reason.clone()),
        None => ("empty", String::new()),
    }
}

/// Every saga on `topic`, in the order they started.
pub async fn read(conn: &Connection, topic: &str) -> Result<Vec<Saga>, KafkaError> {
    let mut by_id: BTreeMap<String, Vec<SagaMessage>> = BTreeMap::new();
    let mut order = Vec::new();
    for s in crate::sourcing::log::read(conn, topic, None).await? {
        if let Ok(m) = SagaMessage::decode(s.value.as_slice()) {
            if !by_id.contains_key(&m.correlation_id) {
                order.push(m.correlation_id.clone());
            }
            by_id.entry(m.correlation_id.clone()).or_default().push(m);
        }
    }
    Ok(order.into_iter().map(|id| judge(&id, &by_id[&id])).collect())
}

/// Builds one saga from its messages (in log order) and lists what is wrong.
pub fn judge(correlation_id: &str, messages: &[SagaMessage]) -> Saga {
    let mut problems = Vec::new();
    let mut lines = Vec::new();
    let mut ids = HashSet::new();
    let mut customer_id = None;
    let mut command_id = None;
    let mut done = HashSet::new();
    let mut completed = Vec::new();
    let mut compensated = Vec::new();
    let mut outcome = Outcome::Running;
    let mut previous: Option<&SagaMessage> = None;
    for m in messages {
        let (kind, detail) = kind(&m.body);
        let step = SagaStep::try_from(m.step).unwrap_or_default();
        if m.correlation_id != correlation_id {
            problems.push(format!("{kind} {}: correlation id {:?}", step_name(step), m.correlation_id));
        }
        // The causation id names the message this one answers: the command
        // for the first, the message before it for the others.
        let expected_cause = match (previous, &m.body) {
            (None, Some(Body::Started(s))) => Some(s.command_id.clone()),
            (Some(p), _) => Some(p.message_id.clone()),
            (None, _) => None,
        };
        if m.causation_id.is_empty() {
            problems.push(format!("{kind} {}: no causation id", step_name(step)));
        } else if expected_cause.as_ref().is_some_and(|c| *c != m.causation_id) {
            problems.push(format!(
                "{kind} {}: causation id {} is not the id of the message it answers ({})",
                step_name(step),
                m.causation_id,
                expected_cause.unwrap_or_default()
            ));
        }
        if !ids.insert(m.message_id.clone()) || m.message_id.is_empty() {
            problems.push(format!("{kind} {}: message id {:?} not unique", step_name(step), m.message_id));
        }
        if !done.insert((kind, m.step)) {
            problems.push(format!("{kind} {} happened twice", step_name(step)));
        }
        match &m.body {
            Some(Body::Started(s)) => {
                customer_id = s.customer.as_ref().map(|c| c.id);
                command_id = Some(s.command_id.clone());
            }
            Some(Body::Completed(_)) => completed.push(step),
            Some(Body::Compensated(_)) => compensated.push(step),
            Some(Body::SagaCompleted(_)) => outcome = Outcome::Completed,
            Some(Body::SagaFailed(_)) => outcome = Outcome::Compensated,
            _ => {}
        }
        lines.push(Line {
            kind,
            step: step_name(step),
            message_id: m.message_id.clone(),
            causation_id: m.causation_id.clone(),
            at: m.timestamp.as_ref().map_or(0, crate::events::millis),
            detail,
        });
        previous = Some(m);
    }
    let dedup = |v: &[SagaStep]| {
        v.iter().fold(Vec::new(), |mut acc, s| {
            if !acc.contains(s) {
                acc.push(*s);
            }
            acc
        })
    };
    let completed = dedup(&completed);
    if completed.iter().zip(STEPS).any(|(a, b)| *a != b) {
        problems.push("steps did not complete in order (create-customer, welcome-email, billing-setup)".into());
    }
    if outcome == Outcome::Compensated {
        let mut undo = completed.clone();
        undo.reverse();
        if dedup(&compensated) != undo {
            let names = |v: &[SagaStep]| v.iter().map(|s| step_name(*s)).collect::<Vec<_>>().join(", ");
            problems.push(format!(
                "compensated [{}], but the completed steps in reverse order are [{}]",
                names(&compensated),
                names(&undo)
            ));
        }
    }
    Saga { correlation_id: correlation_id.to_string(), customer_id, command_id, outcome, messages: lines, problems }
}
