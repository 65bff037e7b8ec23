//! The checks behind steps and victory conditions. A manifest names one by
//! kind with its parameters (`check = { kind = "group-parallel", topic =
//! "customer_events", members = 3, events = 60 }`); each kind lives in a file
//! of its own. A check that judges a student's program runs it under the lab
//! contract against scratch topics shaped like the lab topic it names, and
//! judges what the program left on the broker; one whose program is not
//! configured is not attempted.

mod aggregator;
mod breaking;
mod consumer_routing;
mod evidence;
mod group_parallel;
mod lag;
mod metrics;
mod producer_events;
mod producer_outage;
mod producer_tuned;
mod projector;
mod registry_evolution;
mod saga;
mod setup;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{
    Lab, Role,
    programs::{self, Programs, Running, Source},
};
use crate::{
    broker::{Paths, State},
    kafka::{Connection, topics::TopicPlan},
    verdict::Verdict,
};

/// A check and its parameters, as a manifest names it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CheckSpec {
    /// A metadata request answers on the configured address.
    BrokerReachable,
    /// Every topic the lab declares exists with its partition count.
    TopicsPlanned,
    /// The lab's topics exist as planned, `topic`'s schema is enforced, and the
    /// student's producer writes `count` valid, keyed events with the lab's headers.
    ProducerEvents { topic: String, count: u32 },
    /// `members` instances of the student's consumer share `events` events in
    /// one group and commit every partition to the end.
    GroupParallel { topic: String, members: u32, events: u32 },
    /// The student's producer publishes `count` events through a broker that is
    /// cut off for `outage_ms` right after its first produce request: every event
    /// stored exactly once, and the producer exits 0.
    ProducerOutage { topic: String, count: u32, outage_ms: u64 },
    /// One event of each kind, one of an unknown type and one poison event:
    /// the student's consumer commits past all of them without crashing and
    /// dead-letters the poison one.
    ConsumerRouting { topic: String },
    /// The student's projector rebuilds a customer table published as events
    /// on a topic shaped like `topic`, before and after the table changes.
    ProjectorMatchesSource { topic: String },
    /// The student's orchestrator completes three sagas, steps in order.
    SagaCompletes,
    /// A failing step: the completed ones compensated in reverse order.
    SagaCompensates,
    /// Correlation and causation ids on every saga message.
    SagaIds,
    /// A SIGKILL mid-saga and redelivered commands: nothing happens twice.
    SagaExactlyOnce,
    /// The student's aggregator counts the sample stream (late and out-of-order
    /// events included) in tumbling windows of `window_ms` with `grace_ms`:
    /// the final counts Kafka Streams' rules give, each window once.
    AggregatorWindows { topic: String, window_ms: u64, grace_ms: u64 },
    /// The student's consumer drains a burst of `events` events: lag back to 0.
    LagDrains { topic: String, events: u32 },
    /// The student's consumer serves metrics: processed and error counters that
    /// move with what is published, and a lag gauge.
    MetricsExposed { topic: String },
    /// The student's producer, run with its defaults and then with
    /// `CHINOOK_TUNED=1`: the tuned run sends `count` events in `fewer_bytes_percent`
    /// fewer bytes, or publishes them `faster_percent` faster (a wide margin:
    /// two runs of the same settings differ by a quarter on a busy machine).
    ProducerTuned { topic: String, count: u32, fewer_bytes_percent: u32, faster_percent: u32 },
    /// The student's producer frames events through the schema registry, and
    /// the consumer reads them before and after a compatible schema change.
    RegistryEvolution { topic: String },
    /// The student's schema check passes a compatible change and fails breaking ones.
    BreakingCaught,
}

impl CheckSpec {
    /// The student program the check runs, if any.
    pub fn needs(&self) -> Option<Role> {
        match self {
            CheckSpec::BrokerReachable | CheckSpec::TopicsPlanned => None,
            CheckSpec::ProducerEvents { .. } | CheckSpec::ProducerOutage { .. } | CheckSpec::ProducerTuned { .. } => {
                Some(Role::Producer)
            }
            // It runs the producer too, and says so when there is none.
            CheckSpec::RegistryEvolution { .. } => Some(Role::Consumer),
            CheckSpec::BreakingCaught => Some(Role::SchemaCheck),
            CheckSpec::GroupParallel { .. }
            | CheckSpec::ConsumerRouting { .. }
            | CheckSpec::LagDrains { .. }
            | CheckSpec::MetricsExposed { .. } => Some(Role::Consumer),
            CheckSpec::AggregatorWindows { .. } => Some(Role::Aggregator),
            CheckSpec::ProjectorMatchesSource { .. } => Some(Role::Projector),
            CheckSpec::SagaCompletes | CheckSpec::SagaCompensates | CheckSpec::SagaIds | CheckSpec::SagaExactlyOnce => {
                Some(Role::Orchestrator)
            }
        }
    }

    /// The lab topic the check's scratch topics are shaped like.
    pub fn topic(&self) -> Option<&str> {
        match self {
            CheckSpec::BrokerReachable
            | CheckSpec::TopicsPlanned
            | CheckSpec::SagaCompletes
            | CheckSpec::SagaCompensates
            | CheckSpec::SagaIds
            | CheckSpec::SagaExactlyOnce
            | CheckSpec::BreakingCaught => None,
            CheckSpec::ProjectorMatchesSource { topic } => Some(topic),
            CheckSpec::ProducerEvents { topic, .. }
            | CheckSpec::GroupParallel { topic, .. }
            | CheckSpec::ProducerOutage { topic, .. }
            | CheckSpec::ConsumerRouting { topic }
            | CheckSpec::AggregatorWindows { topic, .. }
            | CheckSpec::LagDrains { topic, .. }
            | CheckSpec::MetricsExposed { topic }
            | CheckSpec::ProducerTuned { topic, .. }
            | CheckSpec::RegistryEvolution { topic } => Some(topic),
        }
    }
}

/// What checks run against.
pub struct Env {
    pub conn: Connection,
    pub managed: Option<State>,
    pub paths: Paths,
    pub lab: Lab,
    pub programs: Programs,
    /// Where this run keeps the programs' output (`.chinook/runs/<lab>-<time>`).
    pub runs: PathBuf,
}

impl Env {
    /// The planned topic a check names (the manifest lint makes sure it exists).
    fn topic(&self, name: &str) -> Result<&TopicPlan, Failed> {
        self.lab.topic(name).ok_or_else(|| format!("lab {} declares no topic {name}", self.lab.number).into())
    }

    /// Starts instance `n` of the `role` program for check `id`.
    fn start(&self, id: &str, role: Role, n: usize, vars: &[(&str, String)]) -> Result<Running, Failed> {
        let command = self.programs.get(role).ok_or("no program configured")?;
        let whose = match self.programs.source {
            Source::Student => "your",
            Source::Reference => "the reference",
        };
        let log = self.runs.join(id).join(format!("{}-{n}.log", role.name()));
        // The check's own variables come last: they may point the program at a private door.
        let vars: Vec<(&str, String)> =
            [("CHINOOK_BROKERS", self.conn.brokers.clone())].into_iter().chain(vars.iter().cloned()).collect();
        Ok(programs::spawn(command, &format!("{whose} {} #{n}", role.name()), &vars, &log)?)
    }
}

/// A check's finding, before the condition's statement is put on it.
pub struct Judged {
    pub verdict: Verdict,
    /// False when the program it needs is not configured.
    pub attempted: bool,
    /// The programs' output files.
    pub logs: Vec<String>,
    /// Their last lines.
    pub output_tail: String,
}

impl Judged {
    fn new(passed: bool, expected: impl Into<String>, observed: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::holds("", expected, observed.into(), passed),
            attempted: true,
            logs: Vec::new(),
            output_tail: String::new(),
        }
    }

    /// The same finding, with what `programs` wrote.
    fn with_output(mut self, programs: &[Running]) -> Self {
        self.logs = programs.iter().map(|p| p.log.display().to_string()).collect();
        self.output_tail = programs.iter().map(|p| p.tail(8)).collect::<Vec<_>>().join("\n");
        self
    }
}

type Failed = Box<dyn std::error::Error + Send + Sync>;
type Checked = Result<Judged, Failed>;

/// Runs `spec` for the step or condition `id`.
pub async fn run(spec: &CheckSpec, id: &str, env: &Env) -> Judged {
    if let Some(role) = spec.needs()
        && env.programs.get(role).is_none()
    {
        let mut judged =
            Judged::new(false, format!("your {} run and judged", role.name()), "not attempted: none configured");
        judged.attempted = false;
        return judged;
    }
    let result = match spec {
        CheckSpec::BrokerReachable => setup::broker_reachable(env).await,
        CheckSpec::TopicsPlanned => setup::topics_planned(env).await,
        CheckSpec::ProducerEvents { topic, count } => producer_events::check(env, id, topic, *count).await,
        CheckSpec::GroupParallel { topic, members, events } => {
            group_parallel::check(env, id, topic, *members, *events).await
        }
        CheckSpec::ProducerOutage { topic, count, outage_ms } => {
            producer_outage::check(env, id, topic, *count, *outage_ms).await
        }
        CheckSpec::ConsumerRouting { topic } => consumer_routing::check(env, id, topic).await,
        CheckSpec::ProjectorMatchesSource { topic } => projector::check(env, id, topic).await,
        CheckSpec::SagaCompletes => saga::check(env, id, saga::Kind::Completes).await,
        CheckSpec::SagaCompensates => saga::check(env, id, saga::Kind::Compensates).await,
        CheckSpec::SagaIds => saga::check(env, id, saga::Kind::Ids).await,
        CheckSpec::SagaExactlyOnce => saga::check(env, id, saga::Kind::ExactlyOnce).await,
        CheckSpec::ProducerTuned { topic, count, fewer_bytes_percent, faster_percent } => {
            producer_tuned::check(env, id, topic, *count, (*fewer_bytes_percent, *faster_percent)).await
        }
        CheckSpec::RegistryEvolution { topic } => registry_evolution::check(env, id, topic).await,
        CheckSpec::BreakingCaught => breaking::check(env, id).await,
        CheckSpec::AggregatorWindows { topic, window_ms, grace_ms } => {
            aggregator::check(env, id, topic, *window_ms, *grace_ms).await
        }
        CheckSpec::LagDrains { topic, events } => lag::check(env, id, topic, *events).await,
        CheckSpec::MetricsExposed { topic } => metrics::check(env, id, topic).await,
    };
    result.unwrap_or_else(|e| Judged::new(false, "the check to run", format!("it could not: {e}")))
}
