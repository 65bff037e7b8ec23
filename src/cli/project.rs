//! `chinook project customers`: customers rebuilt by replaying `customer_events`.

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::{ConnectionArgs, Failure, Outcome};
use crate::{
    exit,
    kafka::{offsets::parse_time, topics::EVENTS},
    sourcing::{self, Applied, Filter, projection::CustomerRow},
    ui::{self, Ui},
};

/// What to rebuild.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Projection {
    /// One row per customer that exists, at its last version.
    Customers,
}

#[derive(Debug, Args)]
// --version here is the customer's version, not chinook's.
#[command(
    disable_version_flag = true,
    after_help = "\
Examples:
  chinook project customers                          # every customer, rebuilt from the events
  chinook project customers --id 7 -v                # one customer, each event applied shown
  chinook project customers --id 7 --version 2       # customer 7 as it was at version 2
  chinook project customers --at 2026-11-23T09:00:00Z --format json

Anomalies are reported, not applied: a version gap (applied, with a warning), a duplicate event id,
an event for a customer never created, a version that does not go up, a change after a delete.
Exit code 0 when the history is clean, 1 when it has an anomaly."
)]
pub struct ProjectArgs {
    /// The read model to rebuild.
    #[arg(value_enum)]
    pub what: Projection,
    /// Only this customer.
    #[arg(long)]
    pub id: Option<i64>,
    /// As things stood at this time (RFC 3339, or an age such as -10m).
    #[arg(long, value_parser = parse_time, conflicts_with = "at_version")]
    pub at: Option<i64>,
    /// The customer as of this version (with --id).
    #[arg(long = "version", id = "at_version", value_name = "V", requires = "id")]
    pub at_version: Option<i64>,
    /// Print the customers as rows of Chinook's Customer table, one JSON object per line (the
    /// inverse of `chinook import`), and nothing else.
    #[arg(long)]
    pub rows: bool,
    /// Read this topic instead of customer_events.
    #[arg(long, default_value = EVENTS)]
    pub topic: String,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

#[derive(Serialize)]
struct Report {
    topic: String,
    applied: usize,
    customers: Vec<CustomerRow>,
    deleted: Vec<i64>,
    anomalies: Vec<sourcing::Anomaly>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("the history of {topic} has {count} anomal{}", if *count == 1 { "y" } else { "ies" })]
#[diagnostic(
    code(chinook::project::anomalies),
    help(
        "each is listed above with its position (topic/partition@offset); the state shown skips what could not be applied"
    )
)]
struct Anomalies {
    topic: String,
    count: usize,
}

pub async fn run(args: ProjectArgs, ui: Ui) -> Outcome {
    let conn = args.conn.context()?.conn;
    let filter = Filter { id: args.id, at: args.at, version: args.at_version };
    let verbose = ui.verbose && ui.format == ui::Format::Human;
    let projection = sourcing::project(&conn, &args.topic, &filter, |at, e, outcome| {
        if verbose {
            let kind = crate::events::route(e).ok().flatten().map_or("?", |t| t.as_str_name());
            let mark = match outcome {
                Applied::Applied => console::style("✔").green(),
                Applied::Skipped(_) => console::style("✘").red(),
            };
            eprintln!("{mark} {at} customer {} v{} {kind}", e.aggregate_id, e.version);
        }
    })
    .await?;
    if args.rows {
        for a in projection.live() {
            let row = crate::import::mapping::row(&a.customer);
            println!("{}", serde_json::to_string(&row).expect("rows serialize"));
        }
    }
    let report = Report {
        topic: args.topic.clone(),
        applied: projection.applied,
        customers: projection.live().map(CustomerRow::from).collect(),
        deleted: projection.customers.values().filter(|a| a.deleted).map(|a| a.customer.id).collect(),
        anomalies: projection.anomalies.clone(),
    };
    if !args.rows {
        ui.emit(&report, || human(&report));
    } else {
        report.anomalies.iter().for_each(|a| ui.note(a.describe()));
    }
    if report.anomalies.is_empty() {
        Ok(exit::OK)
    } else {
        Err(Failure::new(exit::FAILED, Anomalies { topic: args.topic, count: report.anomalies.len() }))
    }
}

fn human(r: &Report) -> String {
    let mut table = ui::table(["id", "v", "name", "email", "city", "country", "status"]);
    for c in &r.customers {
        table.add_row([
            c.id.to_string(),
            c.version.to_string(),
            c.name.clone(),
            c.email.clone(),
            c.city.clone(),
            c.country_code.clone(),
            c.status.trim_start_matches("CUSTOMER_STATUS_").to_string(),
        ]);
    }
    let mut lines = vec![table.to_string()];
    lines.push(format!(
        "{} customer(s) from {} event(s) on {}{}",
        r.customers.len(),
        r.applied,
        r.topic,
        if r.deleted.is_empty() { String::new() } else { format!(" · {} deleted", r.deleted.len()) }
    ));
    for a in &r.anomalies {
        lines.push(format!("{} {}", console::style("⚠").yellow(), a.describe()));
    }
    lines.join("\n")
}
