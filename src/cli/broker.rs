//! `chinook broker …`: run, start, stop, inspect and disturb the local broker.

use std::{net::IpAddr, time::Duration};

use clap::{Args, Subcommand};
use serde::Serialize;

use super::{ConnectionArgs, Outcome};
use crate::{
    broker::{BrokerError, Engine, Paths, State, control, frontdoor::DoorState, process},
    exit,
    kafka::admin::{self, TopicInfo},
    ui::{self, Ui},
};

#[derive(Debug, Subcommand)]
pub enum BrokerCommand {
    /// Start a broker in the background and wait until it accepts Kafka requests.
    #[command(
        after_help = "Examples:\n  chinook broker start\n  chinook broker start --port 19092\n  chinook broker start --engine bufstream     # a bufstream binary on PATH\n\nState (pid, ports, log) is kept in .chinook/broker/ of the current directory."
    )]
    Start(RunArgs),
    /// Run a broker in the foreground until Ctrl-C.
    #[command(after_help = "Example:\n  chinook broker run --port 9092")]
    Run(RunArgs),
    /// Is the broker up? Engine, address, uptime, front door, topics. Exit 0 only if it answers.
    #[command(
        after_help = "Examples:\n  chinook broker status\n  chinook broker status --brokers kafka.local:9092 --format json"
    )]
    Status(ConnectionArgs),
    /// Stop the managed broker and wait until its port is free (in-memory data is lost).
    Stop,
    /// Show the managed broker's log.
    #[command(after_help = "Example:\n  chinook broker logs -f")]
    Logs {
        /// Keep printing new lines until Ctrl-C.
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
    },
    /// Take the broker "down" for clients: close every connection, refuse new ones, then come back.
    #[command(
        after_help = "The broker and its data keep running behind chinook's front door; clients see what a\nbroker restart looks like. Examples:\n  chinook broker outage --for 10s\n  chinook broker outage --end"
    )]
    Outage {
        /// How long to stay down (e.g. 10s, 1m30s).
        #[arg(long = "for", value_parser = humantime::parse_duration, default_value = "10s", conflicts_with = "end")]
        duration: Duration,
        /// End the current outage now.
        #[arg(long)]
        end: bool,
    },
    /// Delay every response to clients (e.g. 300ms), or `off`.
    #[command(after_help = "Examples:\n  chinook broker latency 300ms\n  chinook broker latency off")]
    Latency {
        /// A duration such as 300ms or 1s, or `off`.
        #[arg(value_parser = parse_latency)]
        delay: Duration,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Which broker to run.
    #[arg(long, value_enum, default_value_t = Engine::Embedded)]
    pub engine: Engine,
    /// The port clients connect to (the front door).
    #[arg(long, default_value_t = 9092)]
    pub port: u16,
    /// The address to listen on (0.0.0.0 to accept other machines).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Accept any bytes on every topic (the lab's "no enforcement" setup).
    #[arg(long)]
    pub no_schemas: bool,
    /// Serve TLS: a certificate made at start, its CA written to .chinook/broker/tls-ca.pem
    /// (chinook commands in this directory use it by themselves; others pass it as their CA).
    #[arg(long)]
    pub tls: bool,
    /// Require SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) from the users in FILE: one
    /// `user,password` per line.
    #[arg(long, value_name = "FILE")]
    pub users: Option<std::path::PathBuf>,
    /// The schema registry's port (Confluent's REST API; default 8081, or a free port when
    /// 8081 is taken). The embedded engine only.
    #[arg(long, value_name = "PORT", conflicts_with = "no_registry")]
    pub registry_port: Option<u16>,
    /// Serve no schema registry.
    #[arg(long)]
    pub no_registry: bool,
}

impl RunArgs {
    fn options(&self) -> process::Options {
        process::Options {
            engine: self.engine,
            host: self.host,
            port: self.port,
            schemas: !self.no_schemas,
            tls: self.tls,
            users: self.users.clone(),
            registry: match (self.no_registry, self.registry_port) {
                (true, _) => process::RegistryPort::Off,
                (false, Some(p)) => process::RegistryPort::Port(p),
                (false, None) => process::RegistryPort::Default,
            },
        }
    }
}

fn parse_latency(text: &str) -> Result<Duration, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|e| format!("{e} (try 300ms, 1s or off)"))
}

fn paths() -> Paths {
    Paths::under(&std::env::current_dir().unwrap_or_default())
}

/// How a client reaches a secured broker: the protocol, the CA to trust and
/// where users log in (their passwords are in the users file, never printed).
fn security_card(s: &State) -> String {
    let protocol = match (s.tls_ca.is_some(), s.users.is_some()) {
        (false, false) => return String::new(),
        (true, false) => "SSL",
        (false, true) => "SASL_PLAINTEXT",
        (true, true) => "SASL_SSL",
    };
    let mut card = format!("\n  clients connect with: security.protocol={protocol}");
    if let Some(ca) = &s.tls_ca {
        card += &format!("\n  trust the CA in: {} (chinook commands in this directory do by themselves)", ca.display());
    }
    if let Some(users) = &s.users {
        card += &format!(
            "\n  users log in with SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN as listed in {} (chinook: --sasl-username NAME, the password in CHINOOK_SASL_PASSWORD)",
            users.display()
        );
    }
    card
}

fn managed(paths: &Paths) -> Result<State, BrokerError> {
    process::current(paths)?.0.ok_or_else(|| BrokerError::NotRunning { state: paths.state().display().to_string() })
}

pub async fn run(cmd: BrokerCommand, ui: Ui) -> Outcome {
    let paths = paths();
    match cmd {
        BrokerCommand::Start(args) => {
            let started = process::start_detached(&args.options(), &paths).await?;
            if let Some(pid) = started.cleared_stale_pid {
                ui.note(format!("removed a stale state file: broker pid {pid} is gone"));
            }
            if !args.host.is_loopback() {
                ui.note(format!(
                    "⚠ listening on {} beyond this machine: anyone on the network can reach the broker{}",
                    args.host,
                    if args.users.is_none() { " — and without --users, nobody has to log in" } else { "" }
                ));
            }
            ui.emit(&started, || {
                let s = &started.state;
                if started.fresh {
                    let mut text = format!("broker ready at {} in {} ms ({}, pid {})\n  use it with: --brokers {}   ·   stop it with: chinook broker stop", s.bootstrap, started.ready_ms, s.engine, s.pid, s.bootstrap);
                    if let Some(r) = s.registry {
                        text += &format!("\n  schema registry: http://{r} (Confluent's REST API; chinook produce/consume --schema-registry use it)");
                    }
                    text += &security_card(s);
                    text
                } else {
                    format!("a broker is already running at {} ({}, pid {})", s.bootstrap, s.engine, s.pid)
                }
            });
            Ok(exit::OK)
        }
        BrokerCommand::Run(args) => {
            // A server must outlive a client that hangs up: TLS records go out with writev, which
            // (unlike send) raises SIGPIPE on a closed connection, and chinook otherwise keeps
            // SIGPIPE's default so that `chinook consume | head` ends quietly.
            // SAFETY: setting a signal disposition; no handler runs.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            }
            process::serve(&args.options(), &paths, |state| {
                ui.success(format!("broker listening on {} ({}); Ctrl-C stops it", state.bootstrap, state.engine));
            })
            .await?;
            ui.note("broker stopped");
            Ok(exit::OK)
        }
        BrokerCommand::Status(conn) => status(conn, ui).await,
        BrokerCommand::Stop => {
            match process::stop(&paths).await? {
                Some(state) => ui.success(format!("broker pid {} stopped; {} is free", state.pid, state.bootstrap)),
                None => ui.note("no chinook-managed broker is running here; nothing to stop"),
            }
            Ok(exit::OK)
        }
        BrokerCommand::Logs { follow, lines } => logs(&paths, follow, lines).await,
        BrokerCommand::Outage { duration, end } => {
            let state = managed(&paths)?;
            if end {
                control::request(state.control, &control::Request::Restore).await?;
                ui.success(format!("outage ended: {} accepts connections again", state.bootstrap));
            } else {
                control::request(state.control, &control::Request::Outage { millis: duration.as_millis() as u64 })
                    .await?;
                ui.success(format!(
                    "{} is down for {}: connections closed, new ones refused; the broker and its data live on",
                    state.bootstrap,
                    humantime::format_duration(duration)
                ));
            }
            Ok(exit::OK)
        }
        BrokerCommand::Latency { delay } => {
            let state = managed(&paths)?;
            control::request(state.control, &control::Request::Latency { millis: delay.as_millis() as u64 }).await?;
            if delay.is_zero() {
                ui.success("latency off");
            } else {
                ui.success(format!(
                    "every response from {} is now delayed by {}",
                    state.bootstrap,
                    humantime::format_duration(delay)
                ));
            }
            Ok(exit::OK)
        }
    }
}

#[derive(Serialize)]
struct Status {
    reachable: bool,
    bootstrap: String,
    engine: String,
    managed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uptime_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    front_door: Option<DoorState>,
    schema_enforcement: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema_registry: Option<String>,
    topics: Vec<TopicInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn status(conn: ConnectionArgs, ui: Ui) -> Outcome {
    let ctx = conn.context()?;
    let (connection, managed) = (&ctx.conn, ctx.managed.as_ref());
    let (pid, uptime_ms, front_door) = match managed {
        Some(s) => match control::request(s.control, &control::Request::Status).await {
            Ok(control::Reply::Status { pid, uptime_ms, door }) => (Some(pid), Some(uptime_ms), Some(door)),
            _ => (Some(s.pid), None, None),
        },
        None => (None, None, None),
    };
    let topics = admin::list_topics(connection).await;
    let report = Status {
        reachable: topics.is_ok(),
        bootstrap: connection.brokers.clone(),
        engine: managed.map_or("external (not managed by chinook)".to_string(), |s| s.engine.to_string()),
        managed: managed.is_some(),
        pid,
        uptime_ms,
        front_door,
        schema_enforcement: managed.map(|s| s.schema_enforcement),
        schema_registry: managed.and_then(|s| s.registry).map(|r| format!("http://{r}")),
        error: topics.as_ref().err().map(|e| e.to_string()),
        topics: topics.as_ref().map(Clone::clone).unwrap_or_default(),
    };
    ui.emit(&report, || human_status(&report));
    match topics {
        Ok(_) => Ok(exit::OK),
        Err(e) if ui.format == ui::Format::Human => Err(e.into()),
        Err(_) => Ok(exit::UNAVAILABLE),
    }
}

fn human_status(s: &Status) -> String {
    if !s.reachable {
        return String::new();
    }
    let mut out = format!("{} broker answers at {}\n", console::style("✔").green(), s.bootstrap);
    out += &format!("  engine       {}\n", s.engine);
    if let (Some(pid), Some(up)) = (s.pid, s.uptime_ms) {
        out +=
            &format!("  process      pid {pid}, up {}\n", humantime::format_duration(Duration::from_secs(up / 1000)));
    }
    if let Some(enforced) = s.schema_enforcement {
        out += &format!(
            "  schemas      {}\n",
            if enforced { "enforced (customer_events, customer_commands)" } else { "off: any bytes are accepted" }
        );
    }
    if let Some(r) = &s.schema_registry {
        out += &format!("  registry     {r}\n");
    }
    if let Some(d) = s.front_door {
        let state = if d.outage_left_ms > 0 { format!("DOWN for {} more ms", d.outage_left_ms) } else { "up".into() };
        let latency = if d.latency_ms > 0 { format!("{} ms latency", d.latency_ms) } else { "no added latency".into() };
        out += &format!("  front door   {state}, {latency}, {} connections so far\n", d.connections);
        if let Some(rejected) = d.rejected_batches {
            out += &format!("  rejected     {rejected} produce batch(es) refused as INVALID_RECORD\n");
        }
    }
    if s.topics.is_empty() {
        out += "  topics       none yet: `chinook topics create` makes the lab's";
    } else {
        let mut t = ui::table(["topic", "partitions", "records"]);
        for topic in &s.topics {
            t.add_row(vec![topic.name.clone(), topic.partitions.len().to_string(), topic.records().to_string()]);
        }
        out += &t.to_string();
    }
    out
}

async fn logs(paths: &Paths, follow: bool, lines: usize) -> Outcome {
    let log = paths.log();
    if !log.exists() {
        return Err(BrokerError::NotRunning { state: log.display().to_string() }.into());
    }
    println!("{}", process::log_tail(&log, lines));
    if follow {
        let mut seen = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        // One listener for the whole loop, so a Ctrl-C between two polls is not missed.
        let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(|e| BrokerError::Io { what: "listening for Ctrl-C".into(), reason: e.to_string() })?;
        loop {
            tokio::select! {
                _ = interrupt.recv() => return Ok(exit::OK),
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
            let len = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
            if len > seen {
                let bytes = std::fs::read(&log).unwrap_or_default();
                let _ = Ui::write_stdout(&bytes[seen as usize..]);
                seen = len;
            } else if len < seen {
                seen = 0; // a new broker started and truncated the log
            }
        }
    }
    Ok(exit::OK)
}
