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
    /// One connection card per user of the managed broker's users file (no passwords).
    #[command(
        after_help = "Examples:\n  chinook broker cards\n  chinook broker cards --format json\n\nEach card: the address other machines use, protocol, mechanism, user, topic prefix, the CA\nfile to trust (--tls), a chinook command line and librdkafka properties. Passwords stay in the\nusers file: each student already has theirs."
    )]
    Cards,
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
    /// With --users: the topic prefix each user is held to, unless the users file gives one in a
    /// third column (`user,password,prefix`). `{user}` stands for the user name; `*` lets every
    /// user use every topic.
    #[arg(long, value_name = "TEMPLATE", default_value = crate::broker::acl::DEFAULT_TEMPLATE, requires = "users")]
    pub topic_prefix: String,
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
            topic_prefix: self.topic_prefix.clone(),
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

/// The connection cards of a broker with users.
mod cards {
    use serde::Serialize;

    use crate::broker::{BrokerError, State, acl::Scope};

    #[derive(Debug, Serialize)]
    pub struct Cards {
        pub cards: Vec<Card>,
        /// Where the passwords are (never what they are).
        pub passwords: String,
        pub notes: Vec<String>,
    }

    #[derive(Debug, Serialize)]
    pub struct Card {
        pub user: String,
        /// The topic prefix (`*`: every topic).
        pub topics: String,
        pub bootstrap: String,
        pub security_protocol: &'static str,
        pub sasl_mechanism: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub ca_file: Option<String>,
        /// A ready-to-paste chinook command line (it asks for the password).
        pub chinook: String,
        /// librdkafka settings; the password's value is a placeholder.
        pub librdkafka: Vec<(String, String)>,
    }

    /// The cards of the managed broker `s`: an error when it takes no logins.
    pub fn of(s: &State) -> Result<Cards, BrokerError> {
        let Some(file) = &s.users else {
            return Err(BrokerError::BadUsers {
                file: "(none)".into(),
                reason: "this broker takes no logins: start it with --users FILE for cards".into(),
            });
        };
        let text = std::fs::read_to_string(file).map_err(|e| BrokerError::io(file, e))?;
        let bad = |reason| BrokerError::BadUsers { file: file.display().to_string(), reason };
        let users = crate::broker::sasl::Users::parse(&text).map_err(bad)?;
        let template = s.topic_prefix.clone().unwrap_or_else(|| crate::broker::acl::DEFAULT_TEMPLATE.into());
        let acl = crate::broker::acl::Acl::new(&users, &template).map_err(bad)?;
        let (host, mut notes) = reachable(s);
        let bootstrap = format!("{host}:{}", s.bootstrap.port());
        let protocol = if s.tls_ca.is_some() { "SASL_SSL" } else { "SASL_PLAINTEXT" };
        let mechanism = "SCRAM-SHA-512";
        if s.tls_ca.is_none() && s.listen.is_some() {
            notes.push("without --tls, passwords and events cross the network in the clear".into());
        }
        let cards = acl
            .scopes()
            .map(|(user, scope)| {
                let topic = match scope {
                    Scope::Any => "orders".to_string(),
                    Scope::Prefix(p) => format!("{p}orders"),
                };
                let ca = s.tls_ca.as_ref().map(|_| " --ca-cert tls-ca.pem").unwrap_or_default();
                let chinook = format!(
                    "read -rs CHINOOK_SASL_PASSWORD && export CHINOOK_SASL_PASSWORD && chinook topics create {topic} --brokers {bootstrap} --sasl-mechanism {mechanism} --sasl-username {user}{ca}"
                );
                let mut props = vec![
                    ("bootstrap.servers".to_string(), bootstrap.clone()),
                    ("security.protocol".into(), protocol.into()),
                    ("sasl.mechanisms".into(), mechanism.into()),
                    ("sasl.username".into(), user.to_string()),
                    ("sasl.password".into(), "<your password>".into()),
                ];
                if s.tls_ca.is_some() {
                    props.push(("ssl.ca.location".into(), "tls-ca.pem".into()));
                }
                Card {
                    user: user.to_string(),
                    topics: match scope {
                        Scope::Any => "* (every topic)".into(),
                        Scope::Prefix(p) => format!("{p}* (names starting with {p})"),
                    },
                    bootstrap: bootstrap.clone(),
                    security_protocol: protocol,
                    sasl_mechanism: mechanism,
                    ca_file: s.tls_ca.as_ref().map(|p| p.display().to_string()),
                    chinook,
                    librdkafka: props,
                }
            })
            .collect();
        Ok(Cards { cards, passwords: format!("their line of {}", file.display()), notes })
    }

    /// The host other machines reach the broker at, and a note when only this machine can.
    fn reachable(s: &State) -> (String, Vec<String>) {
        match s.listen {
            Some(ip) if ip.is_unspecified() => match crate::broker::tls::local_addresses().first() {
                Some(ip) => (ip.to_string(), Vec::new()),
                None => (
                    crate::broker::tls::hostname().unwrap_or_else(|| "localhost".into()),
                    vec!["no network address found on this machine: the bootstrap is its host name".into()],
                ),
            },
            Some(ip) => (ip.to_string(), Vec::new()),
            None => (
                s.bootstrap.ip().to_string(),
                vec!["the broker listens on loopback: only this machine reaches it (--host 0.0.0.0 for a room)".into()],
            ),
        }
    }
}

fn managed(paths: &Paths) -> Result<State, BrokerError> {
    process::current(paths)?.0.ok_or_else(|| BrokerError::NotRunning { state: paths.state().display().to_string() })
}

pub async fn run(cmd: BrokerCommand, ui: Ui) -> Outcome {
    let paths = paths();
    match cmd {
        BrokerCommand::Start(args) => {
            let started = process::start_detached(&args.options(), &paths).await?;
            let cards = cards::of(&started.state);
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
            let json = StartReport { started: &started, cards: cards.as_ref().ok().filter(|_| started.fresh) };
            ui.emit(&json, || {
                let s = &started.state;
                if started.fresh {
                    let mut text = format!("broker ready at {} in {} ms ({}, pid {})\n  use it with: --brokers {}   ·   stop it with: chinook broker stop", s.bootstrap, started.ready_ms, s.engine, s.pid, s.bootstrap);
                    if let Some(r) = s.registry {
                        text += &format!("\n  schema registry: http://{r} (Confluent's REST API; chinook produce/consume --schema-registry use it)");
                    }
                    text += &security_card(s);
                    if let Ok(cards) = &cards {
                        text += &human_cards(cards);
                    }
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
        BrokerCommand::Cards => {
            let state = managed(&paths)?;
            let cards = cards::of(&state)?;
            ui.emit(&cards, || human_cards(&cards));
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

/// `broker start --format json`: the start, and the cards when it took users.
#[derive(Serialize)]
struct StartReport<'a> {
    #[serde(flatten)]
    started: &'a process::Started,
    #[serde(skip_serializing_if = "Option::is_none")]
    cards: Option<&'a cards::Cards>,
}

fn human_cards(c: &cards::Cards) -> String {
    let mut out = format!(
        "\n\nconnection cards ({} user(s); passwords are not shown: each student has theirs, from {}):",
        c.cards.len(),
        c.passwords
    );
    for card in &c.cards {
        out += &format!("\n\n  ── {} ──", card.user);
        out += &format!("\n  bootstrap   {}", card.bootstrap);
        out += &format!("\n  protocol    {}   mechanism {}", card.security_protocol, card.sasl_mechanism);
        out += &format!("\n  user        {}   topics {}", card.user, card.topics);
        if let Some(ca) = &card.ca_file {
            out += &format!("\n  trust       {ca} (copy it next to your programs as tls-ca.pem)");
        }
        out += &format!("\n  chinook     {}", card.chinook);
        out += "\n  librdkafka";
        for (k, v) in &card.librdkafka {
            out += &format!("\n    {k}={v}");
        }
    }
    for note in &c.notes {
        out += &format!("\n\n  note: {note}");
    }
    out
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
