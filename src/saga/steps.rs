//! The onboarding saga as a pure state machine: what the orchestrator
//! answers to each message, given what it knows of the saga so far. No I/O
//! here, so every path (completion, failure at each step, compensation in
//! reverse, a redelivered command) is tested on its own.

use std::collections::HashMap;

use prost_types::Timestamp;

use crate::{
    codec::pb::{
        customer::v1::Customer,
        events::v1::{
            CustomerCommand, CustomerCreated, CustomerDeleted, CustomerEvent, CustomerEventType, SagaCompleted,
            SagaFailed, SagaMessage, SagaStarted, SagaStep, StepCompensated, StepCompleted, StepFailed,
            customer_command::Action, customer_event::Payload, saga_message::Body,
        },
    },
    events,
};

/// The steps, in the order they run.
pub const STEPS: [SagaStep; 3] = [SagaStep::CreateCustomer, SagaStep::WelcomeEmail, SagaStep::BillingSetup];

fn next(step: SagaStep) -> Option<SagaStep> {
    STEPS.iter().position(|s| *s == step).and_then(|i| STEPS.get(i + 1)).copied()
}

fn previous(step: SagaStep) -> Option<SagaStep> {
    STEPS.iter().position(|s| *s == step).and_then(|i| i.checked_sub(1)).map(|i| STEPS[i])
}

/// A step's short name, as `--fail-at` takes it: create-customer, welcome-email, billing-setup.
pub fn step_name(step: SagaStep) -> &'static str {
    match step {
        SagaStep::CreateCustomer => "create-customer",
        SagaStep::WelcomeEmail => "welcome-email",
        SagaStep::BillingSetup => "billing-setup",
        SagaStep::Unspecified => "-",
    }
}

/// What the orchestrator knows about one saga, folded from its messages.
#[derive(Clone, Debug, Default)]
pub struct State {
    pub customer: Customer,
    pub failed: Option<(SagaStep, String)>,
    pub compensated: Vec<SagaStep>,
}

/// What a message makes the orchestrator write, all in one transaction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reaction {
    pub saga: Vec<SagaMessage>,
    pub events: Vec<CustomerEvent>,
}

/// The orchestrator's memory: every saga it has seen, by correlation id.
#[derive(Clone, Debug, Default)]
pub struct Orchestration {
    pub sagas: HashMap<String, State>,
    /// The step that fails on purpose (`--fail-at`).
    pub fail_at: Option<SagaStep>,
}

impl Orchestration {
    /// Remembers what a saga message says (the orchestrator's own outputs
    /// come back this way, and a restart replays them).
    pub fn learn(&mut self, m: &SagaMessage) {
        let state = self.sagas.entry(m.correlation_id.clone()).or_default();
        let step = SagaStep::try_from(m.step).unwrap_or_default();
        match &m.body {
            Some(Body::Started(s)) => state.customer = s.customer.clone().unwrap_or_default(),
            Some(Body::Failed(f)) => state.failed = Some((step, f.reason.clone())),
            Some(Body::Compensated(_)) if !state.compensated.contains(&step) => state.compensated.push(step),
            _ => {}
        }
    }

    /// The answer to a command: a new saga for a CreateCustomer whose
    /// correlation id has none yet; nothing for a redelivered one.
    pub fn on_command(&self, c: &CustomerCommand) -> Reaction {
        let Some(Action::CreateCustomer(create)) = &c.action else { return Reaction::default() };
        let correlation = if c.correlation_id.is_empty() { c.command_id.clone() } else { c.correlation_id.clone() };
        if self.sagas.contains_key(&correlation) {
            return Reaction::default();
        }
        let started =
            Body::Started(SagaStarted { customer: create.customer.clone(), command_id: c.command_id.clone() });
        Reaction { saga: vec![message(&correlation, &c.command_id, SagaStep::Unspecified, started)], events: vec![] }
    }

    /// The answer to one of the saga's own messages.
    pub fn on_saga(&self, m: &SagaMessage) -> Reaction {
        let Some(state) = self.sagas.get(&m.correlation_id) else { return Reaction::default() };
        let step = SagaStep::try_from(m.step).unwrap_or_default();
        match &m.body {
            Some(Body::Started(_)) => self.run(STEPS[0], m, state),
            Some(Body::Completed(_)) => match next(step) {
                Some(n) => self.run(n, m, state),
                None => reply(
                    m,
                    SagaStep::Unspecified,
                    Body::SagaCompleted(SagaCompleted { customer_id: state.customer.id }),
                ),
            },
            Some(Body::Failed(_)) | Some(Body::Compensated(_)) => match previous(step) {
                Some(p) => compensate(p, m, state),
                None => {
                    let (failed_step, reason) = state.failed.clone().unwrap_or((step, String::new()));
                    let compensated = state.compensated.iter().map(|s| *s as i32).collect();
                    reply(
                        m,
                        SagaStep::Unspecified,
                        Body::SagaFailed(SagaFailed { failed_step: failed_step as i32, reason, compensated }),
                    )
                }
            },
            Some(Body::SagaCompleted(_)) | Some(Body::SagaFailed(_)) | None => Reaction::default(),
        }
    }

    /// Does `step` (or fails it on purpose), answering `cause`.
    fn run(&self, step: SagaStep, cause: &SagaMessage, state: &State) -> Reaction {
        if self.fail_at == Some(step) {
            let reason = format!("{} failed on purpose (--fail-at)", step_name(step));
            return reply(cause, step, Body::Failed(StepFailed { reason }));
        }
        let c = &state.customer;
        let detail = match step {
            SagaStep::CreateCustomer => format!("customer {} created", c.id),
            SagaStep::WelcomeEmail => format!("welcome email sent to {}", c.email),
            _ => format!("billing account B-{} opened", c.id),
        };
        let mut r = reply(cause, step, Body::Completed(StepCompleted { detail }));
        if step == SagaStep::CreateCustomer {
            let payload = Payload::CustomerCreated(CustomerCreated {
                customer: Some(c.clone()),
                created_by: "chinook-saga".into(),
                source: "saga".into(),
            });
            r.events.push(event(cause, c.id, 1, CustomerEventType::Created, payload));
        }
        r
    }
}

/// Undoes `step`, answering `cause`.
fn compensate(step: SagaStep, cause: &SagaMessage, state: &State) -> Reaction {
    let c = &state.customer;
    let detail = match step {
        SagaStep::CreateCustomer => format!("customer {} deleted", c.id),
        SagaStep::WelcomeEmail => format!("apology email sent to {}", c.email),
        _ => format!("billing account B-{} closed", c.id),
    };
    let mut r = reply(cause, step, Body::Compensated(StepCompensated { detail }));
    if step == SagaStep::CreateCustomer {
        let payload = Payload::CustomerDeleted(CustomerDeleted {
            customer_id: c.id,
            deleted_by: "chinook-saga".into(),
            reason: "onboarding saga compensated".into(),
        });
        r.events.push(event(cause, c.id, 2, CustomerEventType::Deleted, payload));
    }
    r
}

fn now() -> Option<Timestamp> {
    Some(events::now())
}

fn message(correlation: &str, causation: &str, step: SagaStep, body: Body) -> SagaMessage {
    SagaMessage {
        message_id: events::new_id("saga"),
        correlation_id: correlation.to_string(),
        causation_id: causation.to_string(),
        timestamp: now(),
        step: step as i32,
        body: Some(body),
    }
}

fn reply(cause: &SagaMessage, step: SagaStep, body: Body) -> Reaction {
    Reaction { saga: vec![message(&cause.correlation_id, &cause.message_id, step, body)], events: vec![] }
}

fn event(cause: &SagaMessage, id: i64, version: i64, kind: CustomerEventType, payload: Payload) -> CustomerEvent {
    CustomerEvent {
        event_id: events::new_id("evt"),
        event_type: kind as i32,
        timestamp: now(),
        version,
        correlation_id: cause.correlation_id.clone(),
        causation_id: cause.message_id.clone(),
        aggregate_id: id.to_string(),
        aggregate_type: "customer".into(),
        payload: Some(payload),
        metadata: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{CommandKind, Facts};

    /// Runs a saga to its end the way the orchestrator does: every output is
    /// learnt and answered in turn. Returns the saga messages in order.
    fn drive(o: &mut Orchestration, command: &CustomerCommand) -> (Vec<SagaMessage>, Vec<CustomerEvent>) {
        let mut pending = o.on_command(command).saga;
        let (mut all, mut events) = (Vec::new(), Vec::new());
        while let Some(m) = pending.first().cloned() {
            pending.remove(0);
            o.learn(&m);
            let r = o.on_saga(&m);
            pending.extend(r.saga);
            events.extend(r.events);
            all.push(m);
        }
        (all, events)
    }

    fn kinds(messages: &[SagaMessage]) -> Vec<String> {
        messages
            .iter()
            .map(|m| {
                let kind = match &m.body {
                    Some(Body::Started(_)) => "started",
                    Some(Body::Completed(_)) => "completed",
                    Some(Body::Failed(_)) => "failed",
                    Some(Body::Compensated(_)) => "compensated",
                    Some(Body::SagaCompleted(_)) => "saga-completed",
                    Some(Body::SagaFailed(_)) => "saga-failed",
                    None => "?",
                };
                format!("{kind} {}", step_name(SagaStep::try_from(m.step).unwrap()))
            })
            .collect()
    }

    fn create(id: i64) -> CustomerCommand {
        events::command(
            CommandKind::CreateCustomer,
            &Facts { id, correlation_id: Some(format!("onboard-{id}")), ..Default::default() },
        )
    }

    #[test]
    fn a_saga_runs_its_steps_in_order_with_ids_chained() {
        let mut o = Orchestration::default();
        let command = create(7);
        let (messages, events) = drive(&mut o, &command);
        assert_eq!(
            kinds(&messages),
            [
                "started -",
                "completed create-customer",
                "completed welcome-email",
                "completed billing-setup",
                "saga-completed -"
            ]
        );
        assert!(messages.iter().all(|m| m.correlation_id == "onboard-7"));
        assert_eq!(messages[0].causation_id, command.command_id);
        for pair in messages.windows(2) {
            assert_eq!(pair[1].causation_id, pair[0].message_id);
        }
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].causation_id.as_str(), events[0].correlation_id.as_str()),
            (messages[0].message_id.as_str(), "onboard-7")
        );
        // Redelivered: the saga exists, nothing new starts.
        assert_eq!(o.on_command(&command), Reaction::default());
    }

    #[test]
    fn a_failing_step_is_compensated_in_reverse_order() {
        for (fail_at, expected) in [
            (
                SagaStep::BillingSetup,
                vec!["failed billing-setup", "compensated welcome-email", "compensated create-customer"],
            ),
            (SagaStep::WelcomeEmail, vec!["failed welcome-email", "compensated create-customer"]),
            (SagaStep::CreateCustomer, vec!["failed create-customer"]),
        ] {
            let mut o = Orchestration { fail_at: Some(fail_at), ..Default::default() };
            let (messages, events) = drive(&mut o, &create(3));
            let k = kinds(&messages);
            let done = STEPS.iter().position(|s| *s == fail_at).unwrap();
            assert_eq!(k[1 + done..k.len() - 1], expected[..], "fail at {fail_at:?}");
            let Some(Body::SagaFailed(f)) = &messages.last().unwrap().body else { panic!("ends failed") };
            assert_eq!(f.failed_step, fail_at as i32);
            assert_eq!(f.compensated.len(), done);
            let deleted = events.iter().any(|e| matches!(e.payload, Some(Payload::CustomerDeleted(_))));
            assert_eq!(deleted, done > 0, "the customer is deleted only if it was created");
        }
    }
}
