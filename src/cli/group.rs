//! `chinook group …`: consumer groups, their members, offsets and lag.

use clap::Subcommand;

use super::{ConnectionArgs, Outcome};
use crate::{
    exit,
    kafka::{
        consumer::StartAt,
        groups::{self, ResetTo},
    },
    ui::{self, Ui},
};

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Every consumer group, its state and member count.
    List(ConnectionArgs),
    /// Members, assignment, committed offset, high watermark and lag per partition.
    #[command(after_help = "Example:\n  chinook group describe chinook --format json")]
    Describe {
        group: String,
        #[command(flatten)]
        conn: ConnectionArgs,
    },
    /// Move a group's committed offsets (a dry run unless --execute; refused while it has members).
    #[command(
        after_help = "Examples:\n  chinook group reset chinook --to start                # shows the plan\n  chinook group reset chinook --to start --execute\n  chinook group reset billing --to @-1h --topic customer_events --execute"
    )]
    Reset {
        group: String,
        /// start, end, an offset number, -N or @<RFC 3339 | -10m>.
        #[arg(long, allow_hyphen_values = true)]
        to: String,
        /// Only this topic (default: every topic the group committed on).
        #[arg(long)]
        topic: Option<String>,
        /// Apply the plan.
        #[arg(long)]
        execute: bool,
        #[command(flatten)]
        conn: ConnectionArgs,
    },
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("--to {0:?} is not a position")]
#[diagnostic(
    code(chinook::group::to),
    help("use start, end, an offset number (e.g. 42), -N, or @<RFC 3339 time | -10m>")
)]
struct BadTo(String);

pub async fn run(cmd: GroupCommand, ui: Ui) -> Outcome {
    match cmd {
        GroupCommand::List(conn) => {
            let list = groups::list(&conn.context()?.conn).await?;
            ui.emit(&list, || {
                if list.is_empty() {
                    return "no consumer groups yet".into();
                }
                let mut t = ui::table(["group", "state", "members"]);
                for g in &list {
                    t.add_row(vec![g.group.clone(), g.state.clone(), g.members.to_string()]);
                }
                t.to_string()
            });
            Ok(exit::OK)
        }
        GroupCommand::Describe { group, conn } => {
            let d = groups::describe(&conn.context()?.conn, &group).await?;
            ui.emit(&d, || {
                let mut t = ui::table(["topic", "partition", "member", "committed", "high", "lag"]);
                for p in &d.partitions {
                    t.add_row(vec![
                        p.topic.clone(),
                        p.partition.to_string(),
                        p.member.clone().unwrap_or_else(|| "-".into()),
                        p.committed.map_or("no commit".into(), |c| c.to_string()),
                        p.high.to_string(),
                        p.lag.to_string(),
                    ]);
                }
                format!(
                    "group {} · {} · {} member(s) · total lag {}\n{t}",
                    d.group,
                    d.state,
                    d.members.len(),
                    d.total_lag
                )
            });
            Ok(exit::OK)
        }
        GroupCommand::Reset { group, to, topic, execute, conn } => {
            let target = match to.parse::<i64>() {
                Ok(n) if n >= 0 => ResetTo::Offset(n),
                _ => {
                    ResetTo::At(to.parse::<StartAt>().map_err(|_| super::Failure::new(exit::USAGE, BadTo(to.clone())))?)
                }
            };
            let plan = groups::reset(&conn.context()?.conn, &group, topic.as_deref(), target, execute).await?;
            ui.emit(&plan, || {
                let mut t = ui::table(["topic", "partition", "from", "to"]);
                for r in &plan {
                    t.add_row(vec![
                        r.topic.clone(),
                        r.partition.to_string(),
                        r.from.map_or("-".into(), |f| f.to_string()),
                        r.to.to_string(),
                    ]);
                }
                let head = if execute {
                    format!("group {group}: offsets moved")
                } else {
                    format!("group {group}: dry run, nothing changed (add --execute to apply)")
                };
                format!("{head}\n{t}")
            });
            Ok(exit::OK)
        }
    }
}
