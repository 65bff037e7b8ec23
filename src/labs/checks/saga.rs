//! The saga checks of Lab 2. Each runs the student's orchestrator on scratch
//! topics (commands, saga, events), publishes CreateCustomer commands, and
//! judges what the saga topic and the events topic hold afterwards (read
//! committed, as any downstream reader would):
//! - `saga-completes`: three sagas, each step completed in order, then the saga;
//! - `saga-compensates`: billing set-up fails (CHINOOK_FAIL_AT), the welcome
//!   email and the customer are compensated in reverse order, the customer deleted;
//! - `saga-ids`: every message carries the saga's correlation id and, as
//!   causation id, the id of the message it answers;
//! - `saga-exactly-once`: the orchestrator is killed (SIGKILL) once its first
//!   step is committed and started again, and a saga's command is delivered
//!   again after it finished: no step, and no customer, happens twice.

use std::time::Duration;

use prost::Message as _;
use tokio::time::Instant;

use super::{Checked, Env, Judged, Role};
use crate::{
    codec::pb::events::v1::{CustomerCommand, customer_event::Payload},
    events::{self, CommandKind, Facts},
    kafka::{
        producer::{self, OutRecord, ProduceOptions},
        scratch::Scratch,
    },
    labs::programs::Running,
    saga::history::{self, Outcome, Saga},
    sourcing::log,
};

/// How long the sagas may take (a first `go run` compiles).
const LIMIT: Duration = Duration::from_secs(120);

const COMPLETED: [&str; 5] = [
    "started -",
    "completed create-customer",
    "completed welcome-email",
    "completed billing-setup",
    "saga-completed -",
];
const COMPENSATED: [&str; 7] = [
    "started -",
    "completed create-customer",
    "completed welcome-email",
    "failed billing-setup",
    "compensated welcome-email",
    "compensated create-customer",
    "saga-failed -",
];

/// Which saga check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Completes,
    Compensates,
    Ids,
    ExactlyOnce,
}

/// What a run left behind.
struct Run {
    sagas: Vec<Saga>,
    /// CustomerCreated / CustomerDeleted events per customer id.
    created: Vec<i64>,
    deleted: Vec<i64>,
    programs: Vec<Running>,
    killed: bool,
}

fn command(topic: &str, c: &CustomerCommand, id: i64) -> OutRecord {
    OutRecord {
        topic: topic.to_string(),
        partition: None,
        key: Some(id.to_string().into_bytes()),
        headers: events::command_headers(c),
        timestamp: c.timestamp.as_ref().map(events::millis),
        value: c.encode_to_vec(),
    }
}

async fn send(env: &Env, records: Vec<OutRecord>) -> Result<(), super::Failed> {
    let report = producer::produce(&env.conn, &ProduceOptions::default(), records, |_| {}).await?;
    if report.failed > 0 {
        return Err("the commands were not acknowledged".into());
    }
    Ok(())
}

/// Polls the saga topic until `done` holds, the programs all ended, or the limit.
async fn watch(
    env: &Env,
    topic: &str,
    running: &mut [Running],
    done: impl Fn(&[Saga]) -> bool,
) -> Result<Vec<Saga>, super::Failed> {
    let deadline = Instant::now() + LIMIT;
    loop {
        let sagas = history::read(&env.conn, topic).await?;
        if done(&sagas) || running.iter_mut().all(|r| r.exited().is_some()) || Instant::now() >= deadline {
            return Ok(sagas);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn run(env: &Env, id: &str, kind: Kind) -> Result<Run, super::Failed> {
    let scratch = Scratch::create(&env.conn, "check.saga", &[(".commands", 1), (".saga", 3), (".events", 3)]).await?;
    let (commands, saga, events_topic) = (&scratch.names[0], &scratch.names[1], &scratch.names[2]);
    let result = async {
        let group = events::new_id("chinook-check-saga");
        let mut vars = vec![
            ("CHINOOK_COMMANDS_TOPIC", commands.clone()),
            ("CHINOOK_SAGA_TOPIC", saga.clone()),
            ("CHINOOK_EVENTS_TOPIC", events_topic.clone()),
            ("CHINOOK_GROUP", group),
        ];
        if kind == Kind::Compensates {
            vars.push(("CHINOOK_FAIL_AT", "billing-setup".into()));
        }
        let n = match kind {
            Kind::Compensates => 1,
            Kind::Ids => 2,
            Kind::Completes | Kind::ExactlyOnce => 3,
        };
        let run_id = events::new_id("onboard");
        let cmds: Vec<(i64, CustomerCommand)> = (1..=n)
            .map(|i| {
                let facts = Facts { id: 100 + i, correlation_id: Some(format!("{run_id}-{i}")), ..Default::default() };
                (100 + i, events::command(CommandKind::CreateCustomer, &facts))
            })
            .collect();
        let all_done = move |s: &[Saga]| s.len() >= n as usize && s.iter().all(|s| s.outcome != Outcome::Running);
        let mut programs = vec![env.start(id, Role::Orchestrator, 1, &vars)?];
        let mut killed = false;
        if kind == Kind::ExactlyOnce {
            // The first command; a crash once its first step is committed.
            send(env, vec![command(commands, &cmds[0].1, cmds[0].0)]).await?;
            let first_step = |s: &[Saga]| s.iter().any(|s| s.trail().iter().any(|t| t.starts_with("completed")));
            let seen = watch(env, saga, &mut programs, first_step).await?;
            if first_step(&seen) {
                programs[0].kill().await;
                killed = true;
            }
            // The others, and the first one again (redelivered).
            let rest: Vec<OutRecord> = cmds.iter().map(|(i, c)| command(commands, c, *i)).collect();
            send(env, rest).await?;
            programs.push(env.start(id, Role::Orchestrator, 2, &vars)?);
            let last = programs.len() - 1;
            let sagas = watch(env, saga, &mut programs[last..], all_done).await?;
            // Once all finished, every command once more.
            if all_done(&sagas) {
                send(env, cmds.iter().map(|(i, c)| command(commands, c, *i)).collect()).await?;
                // Whatever a second delivery makes the orchestrator do, it does soon after.
                let before = sagas.iter().map(|s| s.messages.len()).sum::<usize>();
                let more = |s: &[Saga]| s.iter().map(|s| s.messages.len()).sum::<usize>() > before;
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline && !more(&history::read(&env.conn, saga).await?) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        } else {
            send(env, cmds.iter().map(|(i, c)| command(commands, c, *i)).collect()).await?;
            watch(env, saga, &mut programs, all_done).await?;
        }
        for p in &mut programs {
            p.terminate(Duration::from_secs(10)).await;
        }
        let sagas = history::read(&env.conn, saga).await?;
        let (mut created, mut deleted) = (Vec::new(), Vec::new());
        for e in log::read(&env.conn, events_topic, None).await?.iter().filter_map(|s| s.event().ok()) {
            let id = e.aggregate_id.parse().unwrap_or_default();
            match e.payload {
                Some(Payload::CustomerCreated(_)) => created.push(id),
                Some(Payload::CustomerDeleted(_)) => deleted.push(id),
                _ => {}
            }
        }
        Ok::<_, super::Failed>(Run { sagas, created, deleted, programs, killed })
    }
    .await;
    scratch.remove(&env.conn).await;
    result
}

fn describe(s: &Saga) -> String {
    format!("{}: [{}]", s.correlation_id, s.trail().join(", "))
}

pub async fn check(env: &Env, id: &str, kind: Kind) -> Checked {
    let mut r = run(env, id, kind).await?;
    // Stopped by chinook (SIGTERM at the end, the SIGKILL of the crash) is not a crash.
    let crashed: Vec<String> =
        r.programs.iter_mut().filter_map(|p| p.crashed().then(|| format!("{} {}", p.label, p.ending()))).collect();
    let (passed, expected, observed) = match kind {
        Kind::Completes => {
            let good = r.sagas.iter().filter(|s| s.trail() == COMPLETED).count();
            let other: Vec<String> = r.sagas.iter().filter(|s| s.trail() != COMPLETED).map(describe).collect();
            (
                good == 3 && r.sagas.len() == 3,
                "3 commands → 3 sagas, each: started, create-customer, welcome-email, billing-setup completed, saga completed".to_string(),
                format!("{} saga(s), {good} completed in order{}", r.sagas.len(), if other.is_empty() { String::new() } else { format!("; {}", other.join("; ")) }),
            )
        }
        Kind::Compensates => {
            let s = r.sagas.first();
            let trail_ok = r.sagas.len() == 1 && s.is_some_and(|s| s.trail() == COMPENSATED);
            let customer_ok = r.created.len() == 1 && r.deleted == r.created;
            (
                trail_ok && customer_ok,
                "billing set-up fails: the welcome email, then the customer, compensated; the saga ends failed; the customer created, then deleted".to_string(),
                format!(
                    "{}; customer events: {} created, {} deleted",
                    s.map_or("no saga".to_string(), describe),
                    r.created.len(),
                    r.deleted.len()
                ),
            )
        }
        Kind::Ids => {
            let problems: Vec<String> = r
                .sagas
                .iter()
                .flat_map(|s| {
                    s.problems
                        .iter()
                        .filter(|p| p.contains("causation") || p.contains("correlation") || p.contains("message id"))
                        .map(move |p| format!("{}: {p}", s.correlation_id))
                })
                .collect();
            let finished = r.sagas.len() == 2 && r.sagas.iter().all(|s| s.outcome == Outcome::Completed);
            (
                finished && problems.is_empty(),
                "2 sagas completed; every message carries its saga's correlation id and, as causation id, the id of the message (or command) it answers".to_string(),
                if problems.is_empty() {
                    format!("{} saga(s), {} message(s), ids right", r.sagas.len(), r.sagas.iter().map(|s| s.messages.len()).sum::<usize>())
                } else {
                    problems.into_iter().take(4).collect::<Vec<_>>().join("; ")
                },
            )
        }
        Kind::ExactlyOnce => {
            let twice: Vec<String> = r
                .sagas
                .iter()
                .flat_map(|s| {
                    s.problems.iter().filter(|p| p.contains("twice")).map(move |p| format!("{}: {p}", s.correlation_id))
                })
                .collect();
            let mut ids = r.created.clone();
            ids.sort();
            ids.dedup();
            let completed = r.sagas.iter().filter(|s| s.trail() == COMPLETED).count();
            (
                r.killed && twice.is_empty() && r.created.len() == 3 && ids.len() == 3 && completed == 3 && r.sagas.len() == 3,
                "killed with SIGKILL after its first step and restarted, every command delivered again: 3 sagas completed, no step twice, 3 customers created once each".to_string(),
                format!(
                    "{}; {} saga(s), {completed} completed in order; {} CustomerCreated for {} customer(s){}",
                    if r.killed { "killed after the first step, restarted" } else { "never got to a first step" },
                    r.sagas.len(),
                    r.created.len(),
                    ids.len(),
                    if twice.is_empty() { String::new() } else { format!("; {}", twice.into_iter().take(3).collect::<Vec<_>>().join("; ")) }
                ),
            )
        }
    };
    let observed = if crashed.is_empty() { observed } else { format!("{observed}; {}", crashed.join(", ")) };
    Ok(Judged::new(passed && crashed.is_empty(), expected, observed).with_output(&r.programs))
}
