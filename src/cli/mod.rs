//! The command line: clap definitions, global flags, dispatch, and the
//! mapping from domain errors to exit codes. Each verb lives in its own file
//! and stays thin: parse flags, call the domain, hand the result to `ui`.

mod aggregate;
mod bench;
mod broker;
mod codec;
mod consume;
mod correlate;
mod faults;
mod group;
mod import;
mod labs;
mod monitor;
mod produce;
mod project;
mod saga;
mod schema;
mod topics;

use clap::{CommandFactory, Parser, Subcommand};
use miette::{Diagnostic, Report};

use crate::broker::context::Context;
use crate::kafka::security::{self, Secret, Security};
use crate::{exit, ui};

const AFTER_HELP: &str = "\
Exit codes: 0 ok · 1 an operation or check failed · 2 usage error · 3 invalid input data · 4 broker unavailable

Stream Day, start to finish:
  chinook broker start                       # a schema-enforcing broker on localhost:9092
  chinook topics create                      # customer_events (3), customer_commands (1), DLQ
  chinook produce customer-created --id 1    # a keyed CustomerEvent with headers
  chinook consume --until-end                # decode, route, commit after processing
  chinook break broker-down                  # a deliberate failure, explained
  chinook lab 1 verify                       # the victory conditions, checked against the broker";

/// chinook — the Stream Day toolkit: a local Kafka-compatible broker, the
/// workshop's protobuf codec, and the labs' producer, consumer and failures.
#[derive(Debug, Parser)]
#[command(name = "chinook", version, about, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// Output format of reporting commands: human (default), json or jsonl.
    #[arg(long, global = true, value_enum, default_value_t = ui::Format::Human)]
    pub format: ui::Format,
    /// Colour: auto (terminal and no NO_COLOR), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ui::ColorChoice::Auto)]
    pub color: ui::ColorChoice,
    /// Print only results and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Say more about what is happening.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run and control the local broker (embedded, Bufstream, or an external one).
    #[command(subcommand)]
    Broker(broker::BrokerCommand),
    /// Create, list and describe the lab's topics.
    #[command(subcommand)]
    Topics(topics::TopicsCommand),
    /// Publish customer events or commands (typed, generated, or from JSON lines).
    Produce(produce::ProduceArgs),
    /// Consume in a group: decode, route by event type, commit after processing, dead-letter failures.
    Consume(consume::ConsumeArgs),
    /// Publish the Chinook database's customers as events: a snapshot, then what changed.
    Import(import::ImportArgs),
    /// Rebuild state by replaying events: `project customers`.
    Project(project::ProjectArgs),
    /// Offsets and consumer lag: snapshots, or Prometheus metrics (`--prometheus 127.0.0.1:9464`).
    Monitor(monitor::MonitorArgs),
    /// Count customer events in windows (tumbling, hopping, session) with Kafka Streams' rules.
    Aggregate(aggregate::AggregateArgs),
    /// One operation's events, commands and saga messages as a causal tree (by correlation id).
    Correlate(correlate::CorrelateArgs),
    /// Customer onboarding sagas: run the orchestrator, show one saga or all.
    #[command(subcommand)]
    Saga(saga::SagaCommand),
    /// Consumer groups: list, describe (lag), reset offsets.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Deliberate failures on demand: malformed records, broker down, poison, ordering, schema, lag.
    #[command(
        subcommand,
        name = "break",
        after_help = "Exit code: 0 when the scenario showed what it teaches, 1 when a row is ✘, 130 on Ctrl-C.\nScenarios write only to their own scratch topics (chinook.break.…, chinook.check.…)."
    )]
    Break(faults::BreakCommand),
    /// Lab walk-throughs, hints and victory-condition checks.
    Lab(labs::LabArgs),
    /// Check every lab's victory conditions against the broker (exit 0 only if all pass).
    #[command(after_help = "Example:\n  chinook verify --format json")]
    Verify(labs::VerifyArgs),
    /// Your Stream Day journal: show it, or `add` an entry.
    Journal(labs::JournalArgs),
    /// Decode protobuf bytes (raw, hex, base64, length-delimited, Confluent) to JSON.
    Decode(codec::DecodeArgs),
    /// Encode proto3 JSON to protobuf bytes (raw, hex, base64, length-delimited, Confluent).
    Encode(codec::EncodeArgs),
    /// Measurements for Lab 3: serialization size and speed.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Checks on .proto files: `schema check OLD NEW` names the breaking changes (buf's rule ids).
    #[command(subcommand)]
    Schema(schema::SchemaCommand),
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  chinook completions bash > ~/.local/share/bash-completion/completions/chinook")]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

/// A command that did not succeed: the report to show and the exit code.
pub struct Failure {
    pub code: i32,
    pub report: Report,
}

impl Failure {
    pub fn new(code: i32, error: impl Diagnostic + Send + Sync + 'static) -> Self {
        Self { code, report: Report::new(error) }
    }
}

impl From<crate::codec::CodecError> for Failure {
    fn from(e: crate::codec::CodecError) -> Self {
        Self::new(e.exit_code(), e)
    }
}

impl From<crate::kafka::KafkaError> for Failure {
    fn from(e: crate::kafka::KafkaError) -> Self {
        Self::new(e.exit_code(), e)
    }
}

impl From<crate::broker::BrokerError> for Failure {
    fn from(e: crate::broker::BrokerError) -> Self {
        Self::new(e.exit_code(), e)
    }
}

/// Where the broker is: shared by every command that talks to one.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectionArgs {
    /// Bootstrap servers, host:port[,host:port…]. Default: the broker chinook manages in this
    /// directory, else localhost:9092.
    #[arg(long, short = 'b', env = "CHINOOK_BROKERS")]
    pub brokers: Option<String>,
    /// A librdkafka property passed through, like kcat (repeatable): -X compression.type=zstd
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_property)]
    pub property: Vec<(String, String)>,
    /// A connection profile (brokers, TLS, SASL) from ~/.config/chinook/profiles.toml; flags win over it.
    #[arg(long, env = "CHINOOK_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (default: what the other settings imply).
    #[arg(long, value_name = "PROTOCOL")]
    pub security_protocol: Option<String>,
    /// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    #[arg(long, value_name = "MECHANISM")]
    pub sasl_mechanism: Option<String>,
    #[arg(long, env = "CHINOOK_SASL_USERNAME", value_name = "USER")]
    pub sasl_username: Option<String>,
    /// The SASL password. Prefer the environment variable: a command line is visible to others.
    #[arg(long, env = "CHINOOK_SASL_PASSWORD", hide_env_values = true, value_name = "PASSWORD",
          value_parser = |s: &str| Ok::<_, String>(Secret::new(s)))]
    pub sasl_password: Option<Secret>,
    /// The CA certificate (PEM) to verify the broker's certificate with (implies TLS).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,
}

/// Where a Confluent-compatible schema registry is, for framed values.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryArgs {
    /// Confluent-framed values through a schema registry: its URL, or no value for the one the
    /// managed broker serves (else http://localhost:8081).
    #[arg(long, env = "CHINOOK_SCHEMA_REGISTRY", value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    pub schema_registry: Option<String>,
}

impl RegistryArgs {
    /// The registry client, when one was asked for.
    pub fn client(&self, managed: Option<&crate::broker::State>) -> Option<crate::registry::client::Client> {
        let url = self.schema_registry.as_deref()?;
        let url = match (url.trim(), managed.and_then(|s| s.registry)) {
            ("", Some(addr)) => format!("http://{addr}"),
            ("", None) => format!("http://localhost:{}", crate::registry::DEFAULT_PORT),
            (given, _) => given.to_string(),
        };
        Some(crate::registry::client::Client::new(&url))
    }
}

impl From<crate::registry::client::ClientError> for Failure {
    fn from(e: crate::registry::client::ClientError) -> Self {
        let code = match &e {
            crate::registry::client::ClientError::Unreachable { .. } => exit::UNAVAILABLE,
            _ => exit::FAILED,
        };
        Self::new(code, e)
    }
}

impl ConnectionArgs {
    /// Resolves, once per command, where it works (see [`Context`]): the
    /// profile first, then the flags and environment over it.
    /// `CHINOOK_BROKERS` counts even for args that did not come from clap.
    pub fn context(&self) -> Result<Context, crate::broker::BrokerError> {
        let settings = |reason: String| crate::broker::BrokerError::Settings { reason };
        let profile_name =
            self.profile.clone().or_else(|| std::env::var("CHINOOK_PROFILE").ok()).filter(|p| !p.is_empty());
        let profile = match profile_name {
            Some(name) => security::load_profile(&security::profiles_path(), &name).map_err(settings)?,
            None => security::Profile::default(),
        };
        let brokers = self
            .brokers
            .clone()
            .or_else(|| std::env::var("CHINOOK_BROKERS").ok().filter(|b| !b.is_empty()))
            .or(profile.brokers);
        let flags = Security {
            protocol: self.security_protocol.clone(),
            mechanism: self.sasl_mechanism.clone(),
            username: self.sasl_username.clone(),
            password: self.sasl_password.clone(),
            ca: self.ca_cert.clone(),
        };
        Context::here(brokers.as_deref(), profile.security.under(flags), self.property.clone())
    }
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE (e.g. -X linger.ms=5)"))
}

/// A flag set when one of `signals` arrives (SIGINT, SIGTERM, …): a
/// long-running command checks it, finishes what is in hand, and reports.
/// Listening starts here, so a signal that comes early is not lost.
pub fn stop_on(
    signals: &[tokio::signal::unix::SignalKind],
) -> Result<std::sync::Arc<std::sync::atomic::AtomicBool>, Failure> {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };
    let stop = Arc::new(AtomicBool::new(false));
    for kind in signals {
        let mut stream = tokio::signal::unix::signal(*kind)
            .map_err(|e| Failure::new(exit::FAILED, crate::kafka::KafkaError::request("listening for signals", e)))?;
        let flag = stop.clone();
        tokio::spawn(async move {
            if stream.recv().await.is_some() {
                flag.store(true, Ordering::Relaxed);
            }
        });
    }
    Ok(stop)
}

/// What a command returns: an exit code, or a failure to report.
pub type Outcome = Result<i32, Failure>;

/// Parses the process arguments, runs the command and returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { exit::USAGE } else { exit::OK };
        }
    };
    let ui = ui::Ui::new(cli.format, cli.color, cli.quiet, cli.verbose);
    let color = ui.color;
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(miette::MietteHandlerOpts::new().color(color).unicode(color).build())
    }));
    let result = match cli.command {
        // The codec commands are synchronous: no async runtime to start (a few ms saved per run).
        Command::Decode(args) => codec::decode(args, ui),
        Command::Encode(args) => codec::encode(args, ui),
        Command::Bench(cmd) => bench::run(cmd, ui),
        Command::Schema(cmd) => schema::run(cmd, ui),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "chinook", &mut std::io::stdout());
            Ok(exit::OK)
        }
        command => match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
            Ok(runtime) => runtime.block_on(dispatch(command, ui)),
            Err(e) => {
                eprintln!("chinook: cannot start the async runtime: {e}");
                return exit::FAILED;
            }
        },
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            ui::report(&failure.report);
            failure.code
        }
    }
}

async fn dispatch(command: Command, ui: ui::Ui) -> Outcome {
    match command {
        Command::Broker(cmd) => broker::run(cmd, ui).await,
        Command::Topics(cmd) => topics::run(cmd, ui).await,
        Command::Produce(args) => produce::run(args, ui).await,
        Command::Consume(args) => consume::run(args, ui).await,
        Command::Import(args) => import::run(args, ui).await,
        Command::Project(args) => project::run(args, ui).await,
        Command::Saga(cmd) => saga::run(cmd, ui).await,
        Command::Correlate(args) => correlate::run(args, ui).await,
        Command::Aggregate(args) => aggregate::run(args, ui).await,
        Command::Monitor(args) => monitor::run(args, ui).await,
        Command::Group(cmd) => group::run(cmd, ui).await,
        Command::Break(cmd) => faults::run(cmd, ui).await,
        Command::Lab(args) => labs::lab(args, ui).await,
        Command::Verify(args) => match crate::labs::all() {
            Ok(all) => labs::verify(&all, args, ui).await,
            Err(e) => Err(e.into()),
        },
        Command::Journal(args) => labs::journal_cmd(args, ui),
        Command::Decode(_)
        | Command::Encode(_)
        | Command::Bench(_)
        | Command::Schema(_)
        | Command::Completions { .. } => {
            unreachable!("handled without a runtime in main")
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
