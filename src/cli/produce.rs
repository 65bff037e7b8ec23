//! `chinook produce`: typed events and commands, or JSON lines, onto the topics.

use std::{collections::HashMap, path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};
use prost::Message as _;

use super::{ConnectionArgs, Failure, Outcome};
use crate::{
    codec::{CodecError, pb::customer::v1::CustomerStatus},
    events::{self, CommandKind, EventKind, Facts},
    exit,
    kafka::{
        producer::{self, OutRecord, ProduceOptions},
        records::RecordJson,
        topics::{COMMANDS, EVENTS},
    },
    ui::Ui,
};

/// What to publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum What {
    CustomerCreated,
    CustomerUpdated,
    CustomerDeleted,
    StatusChanged,
    ContactUpdated,
    CreateCustomer,
    UpdateCustomer,
    DeleteCustomer,
}

impl What {
    fn kind(self) -> Result<EventKind, CommandKind> {
        match self {
            What::CustomerCreated => Ok(EventKind::CustomerCreated),
            What::CustomerUpdated => Ok(EventKind::CustomerUpdated),
            What::CustomerDeleted => Ok(EventKind::CustomerDeleted),
            What::StatusChanged => Ok(EventKind::StatusChanged),
            What::ContactUpdated => Ok(EventKind::ContactUpdated),
            What::CreateCustomer => Err(CommandKind::CreateCustomer),
            What::UpdateCustomer => Err(CommandKind::UpdateCustomer),
            What::DeleteCustomer => Err(CommandKind::DeleteCustomer),
        }
    }
}

/// How ids are chosen for `--count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Ids {
    /// --id, --id+1, --id+2, …: one record per customer.
    Spread,
    /// --id every time: one customer's history.
    Fixed,
}

/// Customer statuses as flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Status {
    Active,
    Inactive,
    Suspended,
    Closed,
}

impl From<Status> for CustomerStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Active => CustomerStatus::Active,
            Status::Inactive => CustomerStatus::Inactive,
            Status::Suspended => CustomerStatus::Suspended,
            Status::Closed => CustomerStatus::Closed,
        }
    }
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  chinook produce customer-created --id 1
  chinook produce status-changed --id 1 --status suspended --reason 'payment overdue'
  chinook produce customer-created --count 10000 --id 1000        # ids 1000..10999
  chinook produce customer-updated --count 5 --id 7 --ids fixed   # versions n+1..n+5 of customer 7
  chinook produce create-customer --id 2                          # a command, to customer_commands
  chinook consume --format jsonl --until-end > saved.jsonl && chinook produce --input saved.jsonl

Each event is keyed by its customer id (one customer's events stay in order on one partition) and
carries the headers event-type, aggregate-type, event-version, correlation-id (when set) and
content-type. Versions: created is 1; any other event gets the customer's last version on the topic
plus one (chinook reads the last 100,000 records of each partition to find it), or --event-version.")]
pub struct ProduceArgs {
    /// The event or command to publish (omit with --input).
    #[arg(value_enum, required_unless_present = "input")]
    pub what: Option<What>,
    /// Publish the records of a JSON-lines file (`-` for stdin), as `consume --format jsonl` writes them.
    #[arg(long, value_name = "FILE", conflicts_with = "what")]
    pub input: Option<PathBuf>,
    /// Customer id (the record key).
    #[arg(long, default_value_t = 1)]
    pub id: i64,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    #[arg(long)]
    pub phone: Option<String>,
    #[arg(long)]
    pub city: Option<String>,
    /// ISO country code, e.g. BR.
    #[arg(long)]
    pub country: Option<String>,
    /// The customer's (new) status.
    #[arg(long, value_enum)]
    pub status: Option<Status>,
    /// The status before, for status-changed.
    #[arg(long, value_enum)]
    pub old_status: Option<Status>,
    #[arg(long)]
    pub reason: Option<String>,
    /// Who did it (created_by, updated_by, …).
    #[arg(long)]
    pub by: Option<String>,
    #[arg(long)]
    pub correlation_id: Option<String>,
    #[arg(long)]
    pub causation_id: Option<String>,
    /// Event version (default: created = 1, otherwise the customer's last version + 1).
    #[arg(long = "event-version", value_name = "N")]
    pub event_version: Option<i64>,
    /// Append only if the customer's last version on the topic is N (0: no events yet), atomically
    /// with respect to other --expect-version writers; otherwise nothing is appended and the exit
    /// code is 1. With --count, all records go to one customer (--ids fixed) in one transaction.
    #[arg(long, value_name = "N", conflicts_with_all = ["input", "event_version", "dry_run"])]
    pub expect_version: Option<i64>,
    /// How many records.
    #[arg(long, short = 'n', default_value_t = 1)]
    pub count: usize,
    /// With --count: a new customer per record (spread) or the same one (fixed).
    #[arg(long, value_enum, default_value_t = Ids::Spread)]
    pub ids: Ids,
    /// At most this many records per second (e.g. 100 or 100/s).
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Print the records that would be sent (as JSON lines) and send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Send to this topic instead of customer_events / customer_commands.
    #[arg(long)]
    pub topic: Option<String>,
    /// With --input: first read the topics, and leave out every record whose id (event_id,
    /// command_id: field 1 of the value) is already there. A run killed part-way, run again
    /// with --resume, leaves each record on the topic once.
    #[arg(long, requires = "input")]
    pub resume: bool,
    /// With --input: the message type of every value (default: the lab plan's type per topic).
    #[arg(long = "type", value_name = "FULL.NAME", requires = "input")]
    pub type_name: Option<String>,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// How long librdkafka waits to fill a batch.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u32,
    /// Largest batch in bytes.
    #[arg(long, default_value_t = 1_000_000)]
    pub batch_size: u32,
    /// How long one send may keep trying (e.g. 30s).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub timeout: Duration,
    /// Re-sends of a record after a retriable failure.
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// Turn the idempotent producer off (duplicates become possible on retry).
    #[arg(long)]
    pub no_idempotence: bool,
    #[command(flatten)]
    pub registry: super::RegistryArgs,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    s.trim_end_matches("/s")
        .parse::<f64>()
        .ok()
        .filter(|r| *r > 0.0)
        .ok_or_else(|| format!("{s:?}: give records per second, e.g. 100 or 100/s"))
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
enum InputError {
    #[error("line {line} of {file} is not a record: {reason}")]
    #[diagnostic(
        code(chinook::produce::input),
        help(
            "each line must be a JSON object as `chinook consume --format jsonl` writes it: topic, key, headers, value (or value_bytes)"
        )
    )]
    Bad { file: String, line: usize, reason: String },
    #[error("cannot read {file}: {reason}")]
    #[diagnostic(code(chinook::produce::read))]
    Read { file: String, reason: String },
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{failed} of {sent} records were not acknowledged")]
#[diagnostic(
    code(chinook::produce::failed),
    help("the reasons are listed above; records acknowledged before are stored")
)]
struct NotAcked {
    failed: usize,
    sent: usize,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("--expect-version guards one customer's events: {0}")]
#[diagnostic(
    code(chinook::produce::expect_version),
    help("e.g. chinook produce customer-updated --id 7 --expect-version 3 (add --count 2 --ids fixed for two events)")
)]
struct ExpectVersionUsage(&'static str);

pub async fn run(args: ProduceArgs, ui: Ui) -> Outcome {
    let ctx = args.conn.context()?;
    let registry = args.registry.client(ctx.managed.as_ref());
    let conn = ctx.conn;
    if let Some(expected) = args.expect_version {
        return append_expecting(&args, &conn, expected, ui).await;
    }
    let decoders = crate::kafka::consumer::Decoders::lab(args.type_name.as_deref())?;
    let (records, count): (Records<'_>, usize) = match &args.input {
        Some(path) => {
            let mut records = read_input(path, &args, &decoders)?;
            if args.resume {
                let skipped = skip_stored(&mut records, &conn).await?;
                ui.note(format!("--resume: {skipped} record(s) already on the topic, {} to send", records.len()));
            }
            let count = records.len();
            (Box::new(records.into_iter()), count)
        }
        None => (build(&args, &conn).await?, args.count),
    };
    let records: Records<'_> = match registry {
        Some(client) => {
            let (topic, type_name) = framed_target(&args);
            let header = client.register_builtin(&topic, &type_name).await?;
            ui.note(format!(
                "values framed for the registry at {}: schema id {}, message {type_name} (subject {})",
                client.url(),
                header.schema_id,
                crate::registry::value_subject(&topic)
            ));
            Box::new(records.map(move |mut r| {
                r.value = crate::registry::client::frame(&header, &r.value);
                r
            }))
        }
        None => records,
    };
    if args.dry_run {
        print_dry_run(records, &decoders);
        ui.note(format!("dry run: {count} record(s) not sent"));
        return Ok(exit::OK);
    }
    let options = ProduceOptions {
        idempotent: !args.no_idempotence,
        compression: args.compression.clone(),
        linger_ms: args.linger_ms,
        batch_size: args.batch_size,
        delivery_timeout: args.timeout,
        retries: args.retries,
        rate: args.rate,
        stop: Some(super::stop_on(&[
            tokio::signal::unix::SignalKind::interrupt(),
            tokio::signal::unix::SignalKind::terminate(),
        ])?),
    };
    let bar = (count > 1 && !ui.quiet && console::Term::stderr().is_term()).then(|| progress_bar(count));
    let report = producer::produce(&conn, &options, records, |done| {
        if let Some(b) = &bar {
            b.set_position(done);
        }
    })
    .await?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    ui.emit(&report, || {
        let mut lines = Vec::new();
        for f in report.failures.iter().take(20) {
            lines.push(format!(
                "{} record {}: {} (after {} attempt(s))",
                console::style("✘").red(),
                f.index,
                f.error,
                f.attempts
            ));
        }
        if report.failures.len() > 20 {
            lines.push(format!("… and {} more failures", report.failures.len() - 20));
        }
        let mark = if report.failed == 0 { console::style("✔").green() } else { console::style("✘").red() };
        let rate = if report.sent > 1 { format!(" · {:.0} msg/s", report.per_second) } else { String::new() };
        lines.push(format!(
            "{mark} sent {} · acked {} · failed {} · retries {}{rate}",
            report.sent, report.acked, report.failed, report.retries
        ));
        lines.join("\n")
    });
    if report.failed > 0 {
        return Err(Failure::new(exit::FAILED, NotAcked { failed: report.failed, sent: report.sent }));
    }
    if report.interrupted {
        ui.note(format!(
            "interrupted: {} of {count} record(s) were sent, and every one of them acknowledged; the rest were not sent",
            report.sent
        ));
        return Ok(exit::INTERRUPTED);
    }
    Ok(exit::OK)
}

/// `produce --expect-version`: the events, in one transaction, only if the
/// customer is still at version `expected`.
async fn append_expecting(args: &ProduceArgs, conn: &crate::kafka::Connection, expected: i64, ui: Ui) -> Outcome {
    let usage = |why| Err(Failure::new(exit::USAGE, ExpectVersionUsage(why)));
    let Some(Ok(kind)) = args.what.map(What::kind) else { return usage("commands have no version") };
    if args.count > 1 && args.ids == Ids::Spread {
        return usage("with --count, add --ids fixed so every event is about the same customer");
    }
    let topic = args.topic.clone().unwrap_or_else(|| EVENTS.to_string());
    let facts = facts(args, args.id);
    let built = crate::sourcing::append::append_expecting(conn, &topic, &args.id.to_string(), expected, |first| {
        (0..args.count as i64).map(|i| OutRecord::event(&topic, &events::event(kind, &facts, first + i))).collect()
    })
    .await;
    match built {
        Ok(appended) => {
            ui.emit(&appended, || {
                let (from, to) = appended.versions;
                let versions = if from == to { format!("version {from}") } else { format!("versions {from}–{to}") };
                format!(
                    "{} customer {} was at version {expected}: appended {versions}",
                    console::style("✔").green(),
                    args.id
                )
            });
            Ok(exit::OK)
        }
        Err(crate::sourcing::append::AppendError::Kafka(e)) => Err(e.into()),
        Err(conflict) => Err(Failure::new(exit::FAILED, conflict)),
    }
}

/// The records to send, built (or read) one at a time as the producer pulls them.
type Records<'a> = Box<dyn Iterator<Item = OutRecord> + Send + 'a>;

/// The progress bar of a send of `count` records, with the rate in whole records per second.
fn progress_bar(count: usize) -> indicatif::ProgressBar {
    let style = indicatif::ProgressStyle::with_template("{bar:40.cyan/blue} {pos}/{len} acked · {rate} · eta {eta}")
        .expect("a valid template")
        .with_key("rate", |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{}/s", indicatif::HumanCount(s.per_sec().round() as u64));
        });
    indicatif::ProgressBar::new(count as u64).with_style(style)
}

/// Prints each record as the JSON line `consume --format jsonl` would write for it.
fn print_dry_run(records: Records<'_>, decoders: &crate::kafka::consumer::Decoders) {
    for r in records {
        let value = decoders.get(&r.topic).and_then(|t| {
            let mut text = Vec::new();
            t.json_line(&r.value, 0, &mut text).ok()?;
            serde_json::value::RawValue::from_string(String::from_utf8(text).ok()?).ok()
        });
        let json = RecordJson {
            topic: r.topic.clone(),
            partition: r.partition,
            offset: None,
            key: r.key.as_deref().map(crate::kafka::records::Bytes::from_slice),
            headers: r.headers.iter().map(|(k, v)| (k.clone(), crate::kafka::records::Bytes::from_slice(v))).collect(),
            timestamp: r.timestamp,
            value: value.clone(),
            // A topic without a schema: the bytes themselves, so the line replays losslessly.
            value_bytes: value.is_none().then(|| crate::kafka::records::Bytes::from_slice(&r.value)),
            error: None,
        };
        println!("{}", serde_json::to_string(&json).expect("records serialize"));
    }
}

fn facts(args: &ProduceArgs, id: i64) -> Facts {
    Facts {
        id,
        name: args.name.clone(),
        email: args.email.clone(),
        phone: args.phone.clone(),
        city: args.city.clone(),
        country: args.country.clone(),
        status: args.status.map(Into::into),
        old_status: args.old_status.map(Into::into),
        reason: args.reason.clone(),
        by: args.by.clone(),
        source: None,
        correlation_id: args.correlation_id.clone(),
        causation_id: args.causation_id.clone(),
        changed_fields: Vec::new(),
    }
}

/// The customer ids of `--count` records, in order.
fn ids(args: &ProduceArgs) -> impl Iterator<Item = i64> + Send + '_ {
    (0..args.count as i64).map(|i| if args.ids == Ids::Spread { args.id + i } else { args.id })
}

/// The topic the records go to and the message type their values are, for
/// the Confluent header.
fn framed_target(args: &ProduceArgs) -> (String, String) {
    let commands = args.what.is_some_and(|w| w.kind().is_err());
    let topic = args.topic.clone().unwrap_or_else(|| (if commands { COMMANDS } else { EVENTS }).to_string());
    let planned = crate::labs::topic_plan().into_iter().find(|p| p.name == topic).and_then(|p| p.value_type);
    let type_name =
        args.type_name.clone().or(planned).unwrap_or_else(|| {
            (if commands { crate::codec::COMMAND_TYPE } else { crate::codec::EVENT_TYPE }).to_string()
        });
    (topic, type_name)
}

/// The events or commands for WHAT, built lazily. Versions of events other than
/// created come from the topic's history, read once before the first record.
async fn build<'a>(args: &'a ProduceArgs, conn: &crate::kafka::Connection) -> Result<Records<'a>, Failure> {
    let what = args.what.expect("clap requires WHAT without --input");
    match what.kind() {
        Ok(kind) => {
            let topic = args.topic.clone().unwrap_or_else(|| EVENTS.to_string());
            let needs_history = args.event_version.is_none() && kind != EventKind::CustomerCreated && !args.dry_run;
            let mut last =
                if needs_history { crate::sourcing::log::last_versions(conn, &topic).await? } else { HashMap::new() };
            Ok(Box::new(ids(args).map(move |id| {
                let version = match (args.event_version, kind) {
                    (Some(v), _) => v,
                    (None, EventKind::CustomerCreated) => 1,
                    (None, _) => {
                        let v = last.entry(id.to_string()).or_insert(0);
                        *v += 1;
                        *v
                    }
                };
                OutRecord::event(&topic, &events::event(kind, &facts(args, id), version))
            })))
        }
        Err(kind) => {
            let topic = args.topic.clone().unwrap_or_else(|| COMMANDS.to_string());
            Ok(Box::new(ids(args).map(move |id| {
                let c = events::command(kind, &facts(args, id));
                OutRecord {
                    topic: topic.clone(),
                    partition: None,
                    key: Some(id.to_string().into_bytes()),
                    headers: events::command_headers(&c),
                    timestamp: c.timestamp.as_ref().map(events::millis),
                    value: c.encode_to_vec(),
                }
            })))
        }
    }
}

/// Removes from `records` those whose id the topic already holds; returns how many.
async fn skip_stored(records: &mut Vec<OutRecord>, conn: &crate::kafka::Connection) -> Result<usize, Failure> {
    let mut topics: Vec<&str> = records.iter().map(|r| r.topic.as_str()).collect();
    topics.sort();
    topics.dedup();
    let mut stored = std::collections::HashSet::new();
    for topic in topics.into_iter().map(str::to_string).collect::<Vec<_>>() {
        let on_topic = match crate::sourcing::log::read(conn, &topic, None).await {
            Err(crate::kafka::KafkaError::NoTopic { .. }) => Vec::new(),
            other => other?,
        };
        for s in on_topic {
            if let Some(id) = crate::kafka::records::record_id(&s.value) {
                stored.insert((topic.clone(), id));
            }
        }
    }
    let before = records.len();
    records.retain(|r| {
        crate::kafka::records::record_id(&r.value).is_none_or(|id| !stored.contains(&(r.topic.clone(), id)))
    });
    Ok(before - records.len())
}

fn read_input(
    path: &PathBuf,
    args: &ProduceArgs,
    decoders: &crate::kafka::consumer::Decoders,
) -> Result<Vec<OutRecord>, Failure> {
    let name = path.display().to_string();
    let text = if name == "-" { std::io::read_to_string(std::io::stdin()) } else { std::fs::read_to_string(path) }
        .map_err(|e| Failure::new(exit::BAD_INPUT, InputError::Read { file: name.clone(), reason: e.to_string() }))?;
    let bad = |line: usize, reason: String| {
        Failure::new(exit::BAD_INPUT, InputError::Bad { file: name.clone(), line, reason })
    };
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let r: RecordJson = serde_json::from_str(line).map_err(|e| bad(i + 1, e.to_string()))?;
        let topic = args.topic.clone().unwrap_or(r.topic.clone());
        let value = match (&r.value, &r.value_bytes) {
            (Some(v), _) => {
                let t = decoders.get(&r.topic).ok_or_else(|| {
                    bad(i + 1, format!("topic {} has no schema, so its value must be value_bytes", r.topic))
                })?;
                let text = v.get();
                let msg = t
                    .from_json(text, 0..text.len(), &format!("{name}:{}", i + 1))
                    .map_err(|e: CodecError| Failure::from(e))?;
                crate::codec::Transcoder::encode(&msg)
            }
            (None, Some(b)) => b.to_vec().map_err(|e| bad(i + 1, e))?,
            (None, None) => Vec::new(),
        };
        let key = r.key.as_ref().map(|k| k.to_vec()).transpose().map_err(|e| bad(i + 1, e))?;
        let headers = r
            .headers
            .iter()
            .map(|(k, v)| v.to_vec().map(|v| (k.clone(), v)))
            .collect::<Result<_, _>>()
            .map_err(|e| bad(i + 1, e))?;
        records.push(OutRecord { topic, partition: r.partition, key, value, headers, timestamp: r.timestamp });
    }
    Ok(records)
}
