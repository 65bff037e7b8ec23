//! The shape of a planned topic (the plan itself is lab data: `labs::topic_plan`),
//! the lab topics' names the commands default to, and their check stand-ins.

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

/// What separates a scratch topic's own name from the lab topic whose schema
/// it borrows: `chinook.bench.<run>.schema.customer_events`.
const SCHEMA_OF: &str = ".schema.";

/// The name of a scratch topic `stem` (under `chinook.`) bound to lab topic `of`'s schema.
pub fn borrowing_schema(stem: &str, of: &str) -> String {
    format!("{stem}{SCHEMA_OF}{of}")
}

/// The lab topic whose schema scratch topic `topic` borrows (see [`borrowing_schema`]).
pub fn schema_lender(topic: &str) -> Option<&str> {
    topic.strip_prefix(super::scratch::PREFIX)?.split_once(SCHEMA_OF).map(|(_, of)| of).filter(|of| !of.is_empty())
}

/// One topic of the plan: declared by a lab (`[[topic]]` in its `lab.toml`),
/// made by `chinook topics create`, bound to its schema by the broker.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TopicPlan {
    pub name: String,
    pub partitions: i32,
    /// The message type values must decode as; `None` accepts any bytes.
    #[serde(rename = "schema", default)]
    pub value_type: Option<String>,
    pub purpose: String,
    /// Values carry the Confluent header (schema id, message indexes) and
    /// are validated against the schema registry instead of the raw type.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub framed: bool,
}

impl TopicPlan {
    /// A topic of `partitions` that accepts any bytes.
    pub fn plain(name: impl Into<String>, partitions: i32, purpose: &str) -> Self {
        Self { name: name.into(), partitions, value_type: None, purpose: purpose.into(), framed: false }
    }
}

/// Bufstream's topic configs that bind `value_type` and reject bad records.
pub fn bufstream_configs(plan: &TopicPlan) -> Vec<(&'static str, &str)> {
    match &plan.value_type {
        Some(t) => vec![("buf.registry.value.schema.message", t.as_str()), ("bufstream.validate.mode", "reject")],
        None => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_topic_names_the_lab_topic_whose_schema_it_borrows() {
        let name = borrowing_schema("chinook.bench.run-1a-2b-0", EVENTS);
        assert_eq!(name, "chinook.bench.run-1a-2b-0.schema.customer_events");
        assert_eq!(schema_lender(&name), Some(EVENTS));
        assert_eq!(schema_lender("chinook.check.customer_events"), None);
        assert_eq!(schema_lender("mine.schema.customer_events"), None, "only chinook's scratch topics borrow");
        assert_eq!(schema_lender("chinook.bench.run.schema."), None);
    }
}
