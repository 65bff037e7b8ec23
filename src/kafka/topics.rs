//! The lab's topic plan: names, partition counts and the message each carries.

use std::borrow::Cow;

/// Where customer events go (schema: `events.v1.CustomerEvent`).
pub const EVENTS: &str = "customer_events";
/// Where customer commands go (schema: `events.v1.CustomerCommand`).
pub const COMMANDS: &str = "customer_commands";
/// Where consumers park records they cannot process (no schema: any bytes).
pub const DEAD_LETTERS: &str = "customer_events.dlq";

/// Prefix of the schema-bound stand-ins of the lab topics (see [`check_topic`]).
const CHECK_PREFIX: &str = "chinook.check.";

/// The stand-in of lab topic `topic` that checks and scenarios publish to:
/// bound to the same schema, so nothing they send lands in the student's topic.
pub fn check_topic(topic: &str) -> String {
    format!("{CHECK_PREFIX}{topic}")
}

/// One topic of the plan.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TopicPlan {
    pub name: Cow<'static, str>,
    pub partitions: i32,
    /// The message type values must decode as; `None` accepts any bytes.
    pub value_type: Option<&'static str>,
    pub purpose: &'static str,
}

/// Every topic `chinook topics create` makes.
pub const PLAN: [TopicPlan; 3] = [
    TopicPlan {
        name: Cow::Borrowed(EVENTS),
        partitions: 3,
        value_type: Some(crate::codec::EVENT_TYPE),
        purpose: "customer events, keyed by customer id",
    },
    TopicPlan {
        name: Cow::Borrowed(COMMANDS),
        partitions: 1,
        value_type: Some(crate::codec::COMMAND_TYPE),
        purpose: "commands asking for customer changes, in one global order",
    },
    TopicPlan {
        name: Cow::Borrowed(DEAD_LETTERS),
        partitions: 1,
        value_type: None,
        purpose: "records a consumer could not process, with the reason in headers",
    },
];

/// Bufstream's topic configs that bind `value_type` and reject bad records.
pub fn bufstream_configs(plan: &TopicPlan) -> Vec<(&'static str, &'static str)> {
    match plan.value_type {
        Some(t) => vec![("buf.registry.value.schema.message", t), ("bufstream.validate.mode", "reject")],
        None => vec![],
    }
}
