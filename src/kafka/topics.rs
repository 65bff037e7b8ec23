//! The lab's topic plan: names, partition counts and the message each carries.

/// Where customer events go (schema: `events.v1.CustomerEvent`).
pub const EVENTS: &str = "customer_events";
/// Where customer commands go (schema: `events.v1.CustomerCommand`).
pub const COMMANDS: &str = "customer_commands";
/// Where consumers park records they cannot process (no schema: any bytes).
pub const DEAD_LETTERS: &str = "customer_events.dlq";

/// Prefix of the temporary topics lab checks create (and remove).
pub const CHECK_PREFIX: &str = "chinook.check.";

/// One topic of the plan.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct TopicPlan {
    pub name: &'static str,
    pub partitions: i32,
    /// The message type values must decode as; `None` accepts any bytes.
    pub value_type: Option<&'static str>,
    pub purpose: &'static str,
}

/// Every topic `chinook topics create` makes.
pub const PLAN: [TopicPlan; 3] = [
    TopicPlan {
        name: EVENTS,
        partitions: 3,
        value_type: Some(crate::codec::EVENT_TYPE),
        purpose: "customer events, keyed by customer id",
    },
    TopicPlan {
        name: COMMANDS,
        partitions: 1,
        value_type: Some(crate::codec::COMMAND_TYPE),
        purpose: "commands asking for customer changes, in one global order",
    },
    TopicPlan {
        name: DEAD_LETTERS,
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
