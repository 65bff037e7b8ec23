//! Saga orchestration for customer onboarding (Lab 2): the steps as a pure
//! state machine ([`steps`]), the transactional orchestrator that runs them
//! ([`orchestrator`]), and the saga topic read back as sagas with their
//! problems ([`history`]).

pub mod history;
pub mod orchestrator;
pub mod steps;

/// The topic the saga's messages travel on.
pub const SAGA_TOPIC: &str = "customer_saga";
