//! Deliberate failures on demand (`chinook break …`): each scenario injects
//! one failure the workshop teaches, observes what happens against the real
//! broker, and returns a report — expected vs observed, the figures, what to
//! look for and how the fix shows up. Scenarios clean up the topics they make.

mod broker_down;
mod duplicates;
mod late_events;
mod malformed;
mod ordering;
mod oversized;
mod poison;
mod registry_break;
mod schema_break;
mod slow_consumer;

use std::collections::BTreeMap;

use miette::Diagnostic;
use serde::Serialize;
use thiserror::Error;

pub use broker_down::BrokerDown;
pub use duplicates::Duplicates;
pub use late_events::LateEvents;
pub use malformed::{Kind as MalformedKind, Malformed};
pub use oversized::Oversized;
pub use poison::Poison;
pub use registry_break::RegistryBreak;
pub use slow_consumer::SlowConsumer;

use crate::{
    broker::BrokerError,
    kafka::{KafkaError, scratch::Scratch},
    verdict::Verdict,
};

/// Every scenario, for `chinook break list`.
pub const CATALOGUE: [(&str, &str, &str); 10] = [
    (
        "malformed",
        "send broken protobuf values to a topic bound to the customer_events schema",
        "the broker rejects them with INVALID_RECORD; what protobuf cannot tell apart slips through",
    ),
    (
        "broker-down",
        "take the broker away in the middle of a publish",
        "retries carry the producer over the gap; nothing acknowledged is lost or doubled",
    ),
    (
        "duplicates",
        "make the broker answer too late, so the producer retries stored requests",
        "without idempotence the retries are stored twice; dedupe on event id in the handler",
    ),
    (
        "poison",
        "one event makes the consumer's handler fail every time",
        "retries, then the dead-letter topic; the partition keeps moving",
    ),
    (
        "out-of-order",
        "publish one customer's events under different keys",
        "they land on different partitions and are consumed out of order; key by customer id",
    ),
    (
        "schema-break",
        "renumber fields in a new schema version",
        "old readers decode wrong values without an error; a compatibility check catches it",
    ),
    (
        "oversized",
        "publish one event larger than message.max.bytes among normal ones",
        "the producer refuses it (MSG_SIZE_TOO_LARGE, not retriable); keep events small, claim-check big payloads",
    ),
    (
        "registry-break",
        "deploy a breaking schema change under a running consumer, through the schema registry",
        "the registry refuses it (409); forced, the consumer dead-letters every event written with it",
    ),
    (
        "late-events",
        "publish events out of order and late, and count them in time windows",
        "without a grace period out-of-order events are dropped; with one, only the truly late, and counted",
    ),
    (
        "slow-consumer",
        "consume slower than events arrive",
        "lag grows in `chinook group describe`; scale out (more partitions and members) or speed up",
    ),
];

#[derive(Debug, Error, Diagnostic)]
pub enum FaultError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Broker(#[from] BrokerError),
    #[error("`break {scenario}` needs a broker started by chinook in this directory")]
    #[diagnostic(
        code(chinook::faults::managed),
        help("it takes the broker down through chinook's front door: run `chinook broker start` here first")
    )]
    NeedsManagedBroker { scenario: &'static str },
    #[error("`break registry-break` needs the schema registry of a broker started by chinook in this directory")]
    #[diagnostic(
        code(chinook::faults::registry),
        help("run `chinook broker start` here first (without --no-registry)")
    )]
    NeedsRegistry,
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(Box<crate::registry::client::ClientError>),
}

impl FaultError {
    pub fn exit_code(&self) -> i32 {
        match self {
            FaultError::Kafka(e) => e.exit_code(),
            FaultError::Broker(e) => e.exit_code(),
            FaultError::NeedsManagedBroker { .. } | FaultError::NeedsRegistry => crate::exit::UNAVAILABLE,
            FaultError::Registry(e) => match **e {
                crate::registry::client::ClientError::Unreachable { .. } => crate::exit::UNAVAILABLE,
                _ => crate::exit::FAILED,
            },
        }
    }
}

/// What a scenario did and saw.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub checks: Vec<Verdict>,
    /// Numbers for scripts and tests (sent, acked, lost, duplicates, …).
    pub figures: BTreeMap<String, i64>,
    pub look_for: String,
    pub fix: String,
}

impl Report {
    fn new(scenario: &'static str) -> Self {
        Self { scenario, checks: Vec::new(), figures: BTreeMap::new(), look_for: String::new(), fix: String::new() }
    }

    fn figure(&mut self, name: &str, value: impl TryInto<i64>) {
        self.figures.insert(name.to_string(), value.try_into().unwrap_or(i64::MAX));
    }
}

/// Where a scenario runs: the connection, and the managed broker if there is one.
pub type Env = crate::broker::context::Context;

pub use ordering::out_of_order;
pub use schema_break::schema_break;
