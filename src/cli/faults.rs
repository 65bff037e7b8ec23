//! `chinook break …`: the workshop's deliberate failures, one subcommand each.

use std::time::Duration;

use clap::Subcommand;

use super::{ConnectionArgs, Failure, Outcome};
use crate::{
    broker::control,
    exit,
    faults::{
        self, BrokerDown, Duplicates, Env, FaultError, LateEvents, Malformed, MalformedKind, Oversized, Poison,
        RegistryBreak, Report, SlowConsumer,
    },
    kafka::{admin, scratch},
    ui::{self, Ui},
};

#[derive(Debug, Subcommand)]
pub enum BreakCommand {
    /// The catalogue of failures, with what each teaches.
    List,
    /// Send malformed protobuf values to a stand-in bound to customer_events' schema; see which are rejected.
    #[command(
        after_help = "Examples:\n  chinook break malformed\n  chinook break malformed --kind empty\n  chinook break malformed --bypass-schema     # land them anyway, then consume with a DLQ"
    )]
    Malformed {
        #[arg(long, value_enum, default_value_t = MalformedKind::All)]
        kind: MalformedKind,
        /// Send to a topic without schema enforcement, then run the consumer over it.
        #[arg(long)]
        bypass_schema: bool,
        #[command(flatten)]
        conn: ConnectionArgs,
    },
    /// Take the broker down in the middle of a publish, bring it back, and read everything back.
    #[command(
        name = "broker-down",
        after_help = "Examples:\n  chinook break broker-down\n  chinook break broker-down --count 10000 --after 3000 --for 5s\n  chinook break broker-down --hard     # SIGKILL and restart: memory storage loses what it acknowledged"
    )]
    BrokerDown {
        /// Events to publish.
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// Go down after this many acknowledgements (default: a third of --count).
        #[arg(long)]
        after: Option<usize>,
        /// How long the broker stays down.
        #[arg(long = "for", value_parser = humantime::parse_duration, default_value = "10s")]
        down_for: Duration,
        /// Events per second.
        #[arg(long, default_value_t = 2_500.0)]
        rate: f64,
        /// Stop and restart the broker process instead (asks first on a terminal).
        #[arg(long)]
        hard: bool,
        /// Do not ask.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Late broker responses make the producer retry stored requests: duplicates, then the fixes.
    #[command(
        after_help = "Needs a broker started by chinook here (it slows the front door).\nExample:\n  chinook break duplicates --count 20"
    )]
    Duplicates {
        #[arg(long, default_value_t = 20)]
        count: usize,
        /// How late responses come during the fault.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
        delay: Duration,
    },
    /// One event makes the consumer's handler fail every time: retries, then the DLQ.
    Poison {
        #[arg(long, default_value_t = 10)]
        count: usize,
        #[arg(long, default_value_t = 3)]
        attempts: u32,
        #[command(flatten)]
        conn: ConnectionArgs,
    },
    /// One customer's events under different keys: consumed out of order.
    #[command(name = "out-of-order")]
    OutOfOrder {
        /// Versions to publish.
        #[arg(long, default_value_t = 30)]
        count: i64,
        #[command(flatten)]
        conn: ConnectionArgs,
    },
    /// Events out of order and late, counted in windows without and with a grace period.
    #[command(name = "late-events", after_help = "Example:\n  chinook break late-events --window 10s --grace 5s")]
    LateEvents {
        /// Tumbling window size.
        #[arg(long, value_parser = window_length, default_value = "10s")]
        window: Duration,
        /// The grace period to compare with none.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
        grace: Duration,
        #[command(flatten)]
        conn: ConnectionArgs,
    },
    /// One event larger than message.max.bytes among normal ones: the producer refuses it.
    #[command(after_help = "Example:\n  chinook break oversized --count 20")]
    Oversized {
        /// Events to publish, one of them oversized.
        #[arg(long, default_value_t = 10)]
        count: usize,
        #[command(flatten)]
        conn: ConnectionArgs,
    },
    /// A breaking schema change under a running consumer: the registry refuses it; forced, the
    /// consumer dead-letters what it cannot read.
    #[command(
        name = "registry-break",
        after_help = "Needs the schema registry of `chinook broker start` (in this directory). Example:\n  chinook break registry-break"
    )]
    RegistryBreak,
    /// A new schema version renumbers fields: old readers decode wrong values, silently.
    #[command(name = "schema-break")]
    SchemaBreak,
    /// A consumer slower than the producer: lag grows.
    #[command(name = "slow-consumer")]
    SlowConsumer {
        /// Events per second published.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// How long to publish.
        #[arg(long = "for", value_parser = humantime::parse_duration, default_value = "5s")]
        duration: Duration,
        /// Handler time per event.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "40ms")]
        handler_delay: Duration,
        #[command(flatten)]
        conn: ConnectionArgs,
    },
}

/// A window size: a duration above zero (milliseconds count).
fn window_length(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d.as_millis() == 0 { Err("a window needs a length of at least 1 ms (e.g. 10s)".into()) } else { Ok(d) }
}

impl From<FaultError> for Failure {
    fn from(e: FaultError) -> Self {
        Failure::new(e.exit_code(), e)
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("not confirmed: nothing was done")]
#[diagnostic(code(chinook::faults::declined))]
struct Declined;

pub async fn run(cmd: BreakCommand, ui: Ui) -> Outcome {
    // Resolved once: where the scenario runs, and where its scratch topics are cleaned up after Ctrl-C.
    let env: Env = match &cmd {
        BreakCommand::Malformed { conn, .. }
        | BreakCommand::Poison { conn, .. }
        | BreakCommand::OutOfOrder { conn, .. }
        | BreakCommand::LateEvents { conn, .. }
        | BreakCommand::Oversized { conn, .. }
        | BreakCommand::SlowConsumer { conn, .. } => conn.context()?,
        _ => ConnectionArgs::default().context()?,
    };
    let scratch_conn = env.conn.clone();
    let (name, undo) = (cmd.name(), Undo::of(&cmd));
    let scenario = async {
        match cmd {
            BreakCommand::List => {
                ui.emit(
                    &faults::CATALOGUE
                        .iter()
                        .map(|(n, w, l)| serde_json::json!({"scenario": n, "what": w, "lesson": l}))
                        .collect::<Vec<_>>(),
                    || {
                        let mut t = ui::table(["scenario", "what it does", "what it teaches"]);
                        for (n, w, l) in faults::CATALOGUE {
                            t.add_row(vec![n, w, l]);
                        }
                        t.to_string()
                    },
                );
                Ok(None)
            }
            BreakCommand::Malformed { kind, bypass_schema, .. } => {
                ui.note("sending malformed values, one batch each…");
                Ok(Some(Malformed { kind, bypass_schema }.run(&env).await?))
            }
            BreakCommand::BrokerDown { count, after, down_for, rate, hard, yes } => {
                if hard
                    && !yes
                    && console::Term::stderr().is_term()
                    && !confirm("This stops the broker process: every record it holds in memory is lost. Go on?")?
                {
                    return Err(Failure::new(exit::FAILED, Declined));
                }
                ui.note(format!(
                    "publishing {count} events at {rate}/s; the broker goes down after {} of them, for {}…",
                    after.unwrap_or(count / 3),
                    humantime::format_duration(down_for)
                ));
                let scenario = BrokerDown { count, after: after.unwrap_or(count / 3), down_for, rate, hard };
                Ok(Some(scenario.run(&env).await?))
            }
            BreakCommand::Duplicates { count, delay } => {
                ui.note(format!(
                    "sending {count} events while responses come {} late, without and with idempotence…",
                    humantime::format_duration(delay)
                ));
                Ok(Some(Duplicates { count, delay }.run(&env).await?))
            }
            BreakCommand::Poison { count, attempts, .. } => {
                ui.note(format!("publishing {count} events, one of them poison, and consuming them…"));
                Ok(Some(Poison { count, attempts }.run(&env).await?))
            }
            BreakCommand::OutOfOrder { count, .. } => {
                ui.note(format!(
                    "publishing {count} versions of customer 77 twice: keyed per event, then per customer…"
                ));
                Ok(Some(faults::out_of_order(&env, count).await?))
            }
            BreakCommand::LateEvents { window, grace, .. } => {
                ui.note(format!(
                    "publishing 13 events out of order and late, counting them in {} windows without and with {} of grace…",
                    humantime::format_duration(window),
                    humantime::format_duration(grace)
                ));
                Ok(Some(LateEvents { window, grace }.run(&env).await?))
            }
            BreakCommand::SchemaBreak => Ok(Some(faults::schema_break()?)),
            BreakCommand::Oversized { count, .. } => {
                ui.note(format!("publishing {count} events, one of them 1.5 MB…"));
                Ok(Some(Oversized { count }.run(&env).await?))
            }
            BreakCommand::RegistryBreak => {
                ui.note(
                    "registering a breaking schema version under a framed scratch topic's subject, then forcing it…",
                );
                Ok(Some(RegistryBreak.run(&env).await?))
            }
            BreakCommand::SlowConsumer { rate, duration, handler_delay, .. } => {
                ui.note(format!(
                    "publishing {rate}/s for {} to a consumer taking {} per event…",
                    humantime::format_duration(duration),
                    humantime::format_duration(handler_delay)
                ));
                Ok(Some(SlowConsumer { rate, duration, handler_delay }.run(&env).await?))
            }
        }
    };
    // SIGTERM (a process manager, `timeout`) ends a scenario as Ctrl-C does.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Failure::new(exit::FAILED, crate::kafka::KafkaError::request("listening for SIGTERM", e)))?;
    let outcome = tokio::select! {
        r = scenario => r?,
        _ = async { tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = terminate.recv() => {} } } => {
            let done = cleanup(name, undo, &scratch_conn, env.managed.as_ref()).await;
            ui.emit(&done, String::new);
            ui.note(done.sentence());
            return Ok(exit::INTERRUPTED);
        }
    };
    let Some(report) = outcome else {
        return Ok(exit::OK);
    };
    ui.emit(&report, || human(&report));
    // 0: the scenario ran and showed what it teaches; 1: something did not go as it should.
    match crate::verdict::failures(&report.checks) {
        0 => Ok(exit::OK),
        failed => {
            ui.note(format!("{failed} of {} rows were not as expected (✘): see above", report.checks.len()));
            Ok(exit::FAILED)
        }
    }
}

fn confirm(question: &str) -> Result<bool, Failure> {
    dialoguer::Confirm::new().with_prompt(question).default(false).interact().map_err(|e| {
        Failure::new(
            exit::FAILED,
            crate::broker::BrokerError::Io { what: "asking for confirmation".into(), reason: e.to_string() },
        )
    })
}

impl BreakCommand {
    /// The scenario's name, as `break list` gives it.
    fn name(&self) -> &'static str {
        match self {
            BreakCommand::List => "list",
            BreakCommand::Malformed { .. } => "malformed",
            BreakCommand::BrokerDown { .. } => "broker-down",
            BreakCommand::Duplicates { .. } => "duplicates",
            BreakCommand::Poison { .. } => "poison",
            BreakCommand::OutOfOrder { .. } => "out-of-order",
            BreakCommand::LateEvents { .. } => "late-events",
            BreakCommand::Oversized { .. } => "oversized",
            BreakCommand::RegistryBreak => "registry-break",
            BreakCommand::SchemaBreak => "schema-break",
            BreakCommand::SlowConsumer { .. } => "slow-consumer",
        }
    }
}

/// What a scenario does to the managed broker's front door, to be undone after Ctrl-C
/// (and only that: an outage or latency someone set up by hand is theirs).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Undo {
    Nothing,
    /// `broker-down`: an outage.
    Outage,
    /// `duplicates`: late responses.
    Latency,
}

impl Undo {
    fn of(cmd: &BreakCommand) -> Self {
        match cmd {
            BreakCommand::BrokerDown { .. } => Undo::Outage,
            BreakCommand::Duplicates { .. } => Undo::Latency,
            _ => Undo::Nothing,
        }
    }
}

/// What the clean-up after Ctrl-C did: printed as JSON with `--format json`,
/// as one sentence on stderr always.
#[derive(serde::Serialize)]
struct Interrupted {
    scenario: &'static str,
    interrupted: bool,
    /// This run's scratch topics, deleted.
    scratch_topics_removed: Vec<String>,
    /// This run's scratch topics that could not be deleted (the broker did not answer).
    scratch_topics_left: Vec<String>,
    /// The front door's outage ended or its latency turned off (`broker-down`,
    /// `duplicates`); absent when the scenario does not touch it.
    #[serde(skip_serializing_if = "Option::is_none")]
    front_door_restored: Option<bool>,
    /// Why the topics could not be listed or deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Interrupted {
    fn sentence(&self) -> String {
        let mut text = format!(
            "interrupted: break {} stopped before its report; {} scratch topic(s) removed",
            self.scenario,
            self.scratch_topics_removed.len()
        );
        match self.front_door_restored {
            Some(true) => text += "; the broker's front door is restored",
            Some(false) => {
                text += "; the front door could not be restored: see `chinook broker status` (then `chinook broker outage --end`, `chinook broker latency off`, or `chinook broker start` after `--hard`)"
            }
            None => {}
        }
        if !self.scratch_topics_left.is_empty() {
            text += &format!("; left behind (delete them by hand): {}", self.scratch_topics_left.join(", "));
        }
        if let Some(e) = &self.error {
            text += &format!("; the broker did not answer: {e}");
        }
        text
    }
}

/// After Ctrl-C: undo what the scenario did to the front door, then delete
/// this process's scratch topics (and, with a registry, their subjects).
async fn cleanup(
    scenario: &'static str,
    undo: Undo,
    conn: &crate::kafka::Connection,
    managed: Option<&crate::broker::State>,
) -> Interrupted {
    let front_door_restored = match (managed, undo) {
        (Some(state), Undo::Outage) => Some(control::request(state.control, &control::Request::Restore).await.is_ok()),
        (Some(state), Undo::Latency) => {
            Some(control::request(state.control, &control::Request::Latency { millis: 0 }).await.is_ok())
        }
        _ => None,
    };
    let mut done = Interrupted {
        scenario,
        interrupted: true,
        scratch_topics_removed: Vec::new(),
        scratch_topics_left: Vec::new(),
        front_door_restored,
        error: None,
    };
    let mine: Vec<String> = match admin::topic_names(conn).await {
        Ok(names) => names.into_iter().filter(|n| scratch::made_by(n, std::process::id())).collect(),
        Err(e) => {
            done.error = Some(e.to_string());
            return done;
        }
    };
    let names: Vec<&str> = mine.iter().map(String::as_str).collect();
    if names.is_empty() {
        return done;
    }
    match admin::delete_topics(conn, &names).await {
        Ok(()) => done.scratch_topics_removed = mine,
        Err(e) => {
            done.error = Some(e.to_string());
            done.scratch_topics_left = mine;
        }
    }
    // `registry-break` registers a subject per scratch topic.
    if let Some(addr) = managed.and_then(|s| s.registry) {
        let client = crate::registry::client::Client::new(&format!("http://{addr}"));
        for topic in &done.scratch_topics_removed {
            let _ = client.delete_subject(&crate::registry::value_subject(topic)).await;
        }
    }
    done
}

fn human(r: &Report) -> String {
    let t = ui::verdict_table("check", &r.checks);
    format!(
        "{}\n{t}\n{} {}\n{} {}",
        console::style(format!("break {}", r.scenario)).bold(),
        console::style("what to look for:").bold(),
        r.look_for,
        console::style("how to fix it:").bold(),
        r.fix
    )
}
