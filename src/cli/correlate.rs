//! `chinook correlate <correlation-id>`: one operation's messages as a causal tree.

use clap::Args;

use super::{ConnectionArgs, Failure, Outcome};
use crate::{
    correlation::{self, Topics},
    exit,
    kafka::topics::{COMMANDS, EVENTS},
    saga::SAGA_TOPIC,
    ui::Ui,
};

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  chinook correlate onboard-42                 # a saga: command, saga messages, customer events
  chinook correlate onboard-42 --format json   # nodes, children, orphans, cycles

Each line is a message, under the message its causation id names, with the time since that cause.
Exit 1 when a causation id names no message (an orphan), a chain loops (a cycle), or nothing carries
the correlation id.")]
pub struct CorrelateArgs {
    /// The correlation id every message of the operation carries.
    pub correlation_id: String,
    #[arg(long, default_value = EVENTS)]
    pub events_topic: String,
    #[arg(long, default_value = COMMANDS)]
    pub commands_topic: String,
    #[arg(long, default_value = SAGA_TOPIC)]
    pub saga_topic: String,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
enum Broken {
    #[error("no message carries correlation id {0:?}")]
    #[diagnostic(
        code(chinook::correlate::unknown),
        help("`chinook saga list` shows saga correlation ids; events show theirs in `chinook consume`")
    )]
    Unknown(String),
    #[error("operation {id}: {orphans} orphan(s), {cycles} causation cycle(s)")]
    #[diagnostic(
        code(chinook::correlate::broken),
        help(
            "each orphan's causation id names no message with this correlation id; a cycle is a chain of causes that loops"
        )
    )]
    Broken { id: String, orphans: usize, cycles: usize },
}

pub async fn run(args: CorrelateArgs, ui: Ui) -> Outcome {
    let conn = args.conn.context()?.conn;
    let topics = Topics { events: args.events_topic, commands: args.commands_topic, saga: args.saga_topic };
    let tree = correlation::read(&conn, &topics, &args.correlation_id).await?;
    if tree.nodes.is_empty() {
        return Err(Failure::new(exit::FAILED, Broken::Unknown(args.correlation_id)));
    }
    ui.emit(&tree, || {
        let mut lines = tree.lines();
        for cycle in &tree.cycles {
            lines.push(format!("⚠ causation cycle: {}", cycle.join(" → ")));
        }
        lines.push(format!("{} message(s) in operation {}", tree.nodes.len(), tree.correlation_id));
        lines.join("\n")
    });
    if tree.orphans.is_empty() && tree.cycles.is_empty() {
        Ok(exit::OK)
    } else {
        let (orphans, cycles) = (tree.orphans.len(), tree.cycles.len());
        Err(Failure::new(exit::FAILED, Broken::Broken { id: tree.correlation_id, orphans, cycles }))
    }
}
