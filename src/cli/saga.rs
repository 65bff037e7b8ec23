//! `chinook saga …`: the reference orchestrator, and sagas read back from the topic.

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use super::{ConnectionArgs, Failure, Outcome};
use crate::{
    codec::pb::events::v1::SagaStep,
    exit,
    kafka::topics::{COMMANDS, EVENTS},
    saga::{
        SAGA_TOPIC,
        history::{self, Saga},
        orchestrator::{self, Options},
        steps::step_name,
    },
    ui::{self, Ui},
};

#[derive(Debug, Subcommand)]
pub enum SagaCommand {
    /// Run the onboarding orchestrator: CreateCustomer commands in, saga steps out, exactly once.
    #[command(after_help = "\
Examples:
  chinook saga run                                   # until Ctrl-C or SIGTERM
  chinook saga run --fail-at billing-setup           # billing fails: welcome email and customer are compensated
  chinook produce create-customer --id 42 --correlation-id onboard-42   # starts a saga

Each message is answered in one Kafka transaction holding the answer and the consumer offset:
kill the orchestrator at any moment and start it again, and no step happens twice.")]
    Run(RunArgs),
    /// One saga's messages in order, with causation ids and what is wrong, if anything.
    Status {
        /// The saga's correlation id.
        correlation_id: String,
        #[command(flatten)]
        topics: Topics,
    },
    /// Every saga on the topic: running, completed or compensated.
    List {
        #[command(flatten)]
        topics: Topics,
    },
}

#[derive(Debug, Args)]
pub struct Topics {
    /// The saga topic.
    #[arg(long, default_value = SAGA_TOPIC)]
    pub saga_topic: String,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

/// The steps, as flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Step {
    CreateCustomer,
    WelcomeEmail,
    BillingSetup,
}

impl From<Step> for SagaStep {
    fn from(s: Step) -> Self {
        match s {
            Step::CreateCustomer => SagaStep::CreateCustomer,
            Step::WelcomeEmail => SagaStep::WelcomeEmail,
            Step::BillingSetup => SagaStep::BillingSetup,
        }
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Make this step fail, so the orchestrator compensates the ones before it.
    #[arg(long, value_enum)]
    pub fail_at: Option<Step>,
    /// The consumer group (and the transactional id's suffix).
    #[arg(long, default_value = "chinook-saga")]
    pub group: String,
    /// Where CreateCustomer commands arrive.
    #[arg(long, default_value = COMMANDS)]
    pub commands_topic: String,
    /// Where customer events go.
    #[arg(long, default_value = EVENTS)]
    pub events_topic: String,
    /// Pause inside each transaction before committing (e.g. 500ms): time to kill it mid-step.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub step_delay: Duration,
    #[command(flatten)]
    pub topics: Topics,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("no saga with correlation id {0:?} on {1}")]
#[diagnostic(code(chinook::saga::unknown), help("`chinook saga list` shows the sagas there are"))]
struct Unknown(String, String);

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("saga {0} has {1} problem(s) in its messages")]
#[diagnostic(code(chinook::saga::problems), help("each is listed above"))]
struct Problems(String, usize);

pub async fn run(cmd: SagaCommand, ui: Ui) -> Outcome {
    match cmd {
        SagaCommand::Run(args) => orchestrate(args, ui).await,
        SagaCommand::Status { correlation_id, topics } => {
            let conn = topics.conn.context()?.conn;
            let sagas = history::read(&conn, &topics.saga_topic).await?;
            let Some(saga) = sagas.into_iter().find(|s| s.correlation_id == correlation_id) else {
                return Err(Failure::new(exit::FAILED, Unknown(correlation_id, topics.saga_topic)));
            };
            ui.emit(&saga, || status(&saga));
            if saga.problems.is_empty() {
                Ok(exit::OK)
            } else {
                Err(Failure::new(exit::FAILED, Problems(saga.correlation_id.clone(), saga.problems.len())))
            }
        }
        SagaCommand::List { topics } => {
            let conn = topics.conn.context()?.conn;
            let sagas = history::read(&conn, &topics.saga_topic).await?;
            ui.emit(&sagas, || list(&sagas));
            Ok(exit::OK)
        }
    }
}

async fn orchestrate(args: RunArgs, ui: Ui) -> Outcome {
    let conn = args.topics.conn.context()?.conn;
    let options = Options {
        commands_topic: args.commands_topic,
        saga_topic: args.topics.saga_topic,
        events_topic: args.events_topic,
        group: args.group,
        fail_at: args.fail_at.map(Into::into),
        step_delay: args.step_delay,
    };
    use tokio::signal::unix::SignalKind;
    let stop = super::stop_on(&[SignalKind::interrupt(), SignalKind::terminate()])?;
    ui.note(format!(
        "orchestrating: {} → {} (+ {}), group {}{}; Ctrl-C stops",
        options.commands_topic,
        options.saga_topic,
        options.events_topic,
        options.group,
        options.fail_at.map_or(String::new(), |s| format!(", failing at {}", step_name(s)))
    ));
    let verbose = ui.verbose;
    let summary = orchestrator::run(&conn, &options, stop, move |r| {
        if verbose {
            for m in &r.saga {
                let step = step_name(SagaStep::try_from(m.step).unwrap_or_default());
                eprintln!("{} {step} (saga {})", m.body.as_ref().map_or("?", body_name), m.correlation_id);
            }
        }
    })
    .await?;
    ui.emit(&summary, || {
        format!(
            "answered {} message(s), wrote {} record(s); {} saga(s) known",
            summary.answered, summary.written, summary.sagas
        )
    });
    Ok(exit::OK)
}

fn body_name(b: &crate::codec::pb::events::v1::saga_message::Body) -> &'static str {
    use crate::codec::pb::events::v1::saga_message::Body;
    match b {
        Body::Started(_) => "started",
        Body::Completed(_) => "completed",
        Body::Failed(_) => "failed",
        Body::Compensated(_) => "compensated",
        Body::SagaCompleted(_) => "saga completed",
        Body::SagaFailed(_) => "saga failed",
    }
}

fn status(s: &Saga) -> String {
    let start = s.messages.first().map_or(0, |l| l.at);
    let mut table = ui::table(["+ms", "message", "step", "detail", "id", "caused by"]);
    for l in &s.messages {
        table.add_row([
            (l.at - start).to_string(),
            l.kind.to_string(),
            l.step.to_string(),
            l.detail.clone(),
            l.message_id.clone(),
            l.causation_id.clone(),
        ]);
    }
    let mut lines = vec![
        format!("saga {} · customer {} · {:?}", s.correlation_id, s.customer_id.unwrap_or_default(), s.outcome)
            .to_lowercase(),
        table.to_string(),
    ];
    lines.extend(s.problems.iter().map(|p| format!("{} {p}", console::style("⚠").yellow())));
    lines.join("\n")
}

fn list(sagas: &[Saga]) -> String {
    if sagas.is_empty() {
        return "no sagas yet: start one with `chinook produce create-customer --id 42` while `chinook saga run` runs"
            .into();
    }
    let mut table = ui::table(["correlation id", "customer", "state", "last message", "messages", "problems"]);
    for s in sagas {
        let last = s.messages.last().map_or(String::new(), |l| format!("{} {}", l.kind, l.step));
        table.add_row([
            s.correlation_id.clone(),
            s.customer_id.map_or(String::new(), |c| c.to_string()),
            format!("{:?}", s.outcome).to_lowercase(),
            last,
            s.messages.len().to_string(),
            s.problems.len().to_string(),
        ]);
    }
    table.to_string()
}
