//! `chinook import`: the Chinook database's customers onto `customer_events`.

use std::time::Duration;

use clap::Args;

use super::{ConnectionArgs, Failure, Outcome};
use crate::{
    exit,
    import::{self, Source, Summary},
    kafka::{
        producer::{self, OutRecord, ProduceOptions},
        topics::EVENTS,
    },
    sourcing::{self, Filter},
    ui::Ui,
};

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  chinook import --db ../shared/chinook-db/Chinook_Sqlite.sqlite
  chinook import --db postgres://postgres@localhost/chinook --watch --interval 2s

The first run publishes one customer-created per row (source \"import\"). Each later run rebuilds the
customers from the topic, compares them with the table and publishes what changed: contact-updated
when only contact fields differ, customer-updated otherwise, customer-deleted for a row that is gone.
A run with nothing to publish publishes nothing. docs/import.md maps each column to its field.")]
pub struct ImportArgs {
    /// The Chinook database: its SQLite file, or a postgres:// URL.
    #[arg(long, env = "CHINOOK_DB", value_name = "PATH|URL")]
    pub db: String,
    /// Keep polling the table and publish changes as they appear (Ctrl-C stops).
    #[arg(long)]
    pub watch: bool,
    /// Time between polls with --watch.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s", requires = "watch")]
    pub interval: Duration,
    /// Show the changes and publish nothing.
    #[arg(long, conflicts_with = "watch")]
    pub dry_run: bool,
    /// Publish to this topic instead of customer_events.
    #[arg(long, default_value = EVENTS)]
    pub topic: String,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{failed} of {sent} change events were not acknowledged")]
#[diagnostic(
    code(chinook::import::failed),
    help("run the import again: it compares the table with what the topic holds and publishes only what is missing")
)]
struct NotAcked {
    failed: usize,
    sent: usize,
}

impl From<import::SourceError> for Failure {
    fn from(e: import::SourceError) -> Self {
        Failure::new(e.exit_code(), e)
    }
}

pub async fn run(args: ImportArgs, ui: Ui) -> Outcome {
    let conn = args.conn.context()?.conn;
    let source = Source::parse(&args.db);
    // Listening from the start: a Ctrl-C that comes during a poll is kept
    // and ends the watch after that poll.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| crate::kafka::KafkaError::request("listening for Ctrl-C", e))?;
    loop {
        let summary = once(&args, &source, &conn, &ui).await?;
        ui.emit(&summary, || {
            format!(
                "{} {}: created {} · updated {} · contact updated {} · deleted {} · unchanged {}",
                if args.dry_run { "would publish" } else { "published" },
                source.display(),
                summary.created,
                summary.updated,
                summary.contact_updated,
                summary.deleted,
                summary.unchanged
            )
        });
        if !args.watch {
            return Ok(exit::OK);
        }
        tokio::select! {
            _ = tokio::time::sleep(args.interval) => {}
            _ = interrupt.recv() => return Ok(exit::OK),
        }
    }
}

/// One poll: read the table, rebuild the topic's customers, publish the difference.
async fn once(
    args: &ImportArgs,
    source: &Source,
    conn: &crate::kafka::Connection,
    ui: &Ui,
) -> Result<Summary, Failure> {
    let rows = import::source::read(source).await?;
    let projection = sourcing::project(conn, &args.topic, &Filter::default(), |_, _, _| {}).await?;
    let plan = import::plan(&rows, &projection, &crate::events::new_id("import"));
    if ui.verbose {
        for e in &plan.events {
            let kind = crate::events::route(e).ok().flatten().map_or("?", |t| t.as_str_name());
            eprintln!("customer {} v{} {kind}", e.aggregate_id, e.version);
        }
    }
    if args.dry_run || plan.events.is_empty() {
        return Ok(plan.summary);
    }
    let records = plan.events.iter().map(|e| OutRecord::event(&args.topic, e));
    let report = producer::produce(conn, &ProduceOptions::default(), records, |_| {}).await?;
    if report.failed > 0 {
        for f in report.failures.iter().take(5) {
            ui.note(format!("✘ change {}: {}", f.index, f.error));
        }
        return Err(Failure::new(exit::FAILED, NotAcked { failed: report.failed, sent: report.sent }));
    }
    Ok(plan.summary)
}
