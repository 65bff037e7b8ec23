//! `chinook topics …`: the lab's topic plan on the broker.

use clap::Subcommand;

use super::{ConnectionArgs, Outcome};
use crate::{
    broker::Engine,
    exit,
    kafka::{admin, topics::TopicPlan},
    ui::{self, Ui},
};

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create the labs' topics (idempotent): customer_events (3), customer_commands (1), customer_events.dlq (1), customer_saga (3).
    #[command(
        after_help = "Examples:\n  chinook topics create\n  chinook topics create orders --partitions 6\n  chinook topics create --brokers localhost:19092\n  chinook topics create --bufstream     # also bind schemas with Bufstream topic configs"
    )]
    Create {
        /// Create just this topic (no schema) instead of the lab's plan.
        name: Option<String>,
        /// Partitions for NAME.
        #[arg(long, default_value_t = 1, requires = "name", value_parser = clap::value_parser!(i32).range(1..))]
        partitions: i32,
        #[command(flatten)]
        conn: ConnectionArgs,
        /// Set Bufstream's schema configs (buf.registry.value.schema.message, bufstream.validate.mode=reject).
        /// On by default when the managed broker here runs Bufstream.
        #[arg(long)]
        bufstream: bool,
    },
    /// Every topic with partition count and records.
    #[command(after_help = "Example:\n  chinook topics list --format json")]
    List(ConnectionArgs),
    /// One topic: partitions, leaders, low/high watermarks and configs.
    #[command(after_help = "Example:\n  chinook topics describe customer_events")]
    Describe {
        /// Topic name.
        name: String,
        #[command(flatten)]
        conn: ConnectionArgs,
    },
}

pub async fn run(cmd: TopicsCommand, ui: Ui) -> Outcome {
    match cmd {
        TopicsCommand::Create { name, partitions, conn, bufstream } => {
            let ctx = conn.context()?;
            let connection = ctx.conn;
            let bufstream = bufstream || ctx.managed.as_ref().is_some_and(|s| s.engine == Engine::Bufstream);
            // A topic of the student's own.
            let own = name.map(|n| TopicPlan::plain(n, partitions, "your own topic"));
            let plan: Vec<TopicPlan> = own.map_or_else(crate::labs::topic_plan, |t| vec![t]);
            let created = admin::create_topics(&connection, &plan, bufstream).await?;
            ui.emit(&created, || {
                let mut t = ui::table(["topic", "partitions", "", "schema"]);
                for (c, plan) in created.iter().zip(plan.iter()) {
                    t.add_row(vec![
                        c.name.clone(),
                        c.partitions.to_string(),
                        c.outcome.to_string(),
                        plan.value_type.as_deref().unwrap_or("any bytes").to_string(),
                    ]);
                }
                t.to_string()
            });
            let mismatches: Vec<_> =
                created.iter().filter_map(|c| c.mismatch.as_ref().map(|m| format!("{} {m}", c.name))).collect();
            for m in &mismatches {
                eprintln!("{} {m}", console::style("✘").red());
            }
            Ok(if mismatches.is_empty() { exit::OK } else { exit::FAILED })
        }
        TopicsCommand::List(conn) => {
            let topics = admin::list_topics(&conn.context()?.conn).await?;
            ui.emit(&topics, || {
                if topics.is_empty() {
                    return "no topics yet: `chinook topics create` makes the lab's".into();
                }
                let mut t = ui::table(["topic", "partitions", "records"]);
                for topic in &topics {
                    t.add_row(vec![
                        topic.name.clone(),
                        topic.partitions.len().to_string(),
                        topic.records().to_string(),
                    ]);
                }
                t.to_string()
            });
            Ok(exit::OK)
        }
        TopicsCommand::Describe { name, conn } => {
            let info = admin::describe_topic(&conn.context()?.conn, &name).await?;
            ui.emit(&info, || {
                let mut t = ui::table(["partition", "leader", "low", "high", "records"]);
                for p in &info.partitions {
                    t.add_row(vec![
                        p.id.to_string(),
                        p.leader.to_string(),
                        p.low.to_string(),
                        p.high.to_string(),
                        (p.high - p.low).to_string(),
                    ]);
                }
                let mut out = format!("{}\n{t}", info.name);
                if !info.configs.is_empty() {
                    let mut c = ui::table(["config", "value"]);
                    for (k, v) in &info.configs {
                        c.add_row(vec![k.clone(), v.clone()]);
                    }
                    out += &format!("\n{c}");
                }
                out
            });
            Ok(exit::OK)
        }
    }
}
