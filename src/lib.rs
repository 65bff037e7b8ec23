//! chinook — the Stream Day toolkit of the Chinook workshop.
//!
//! The binary (`src/main.rs`) is a thin shell over this library so that
//! integration tests and benchmarks reach the same code a student runs.
//! Layers: [`cli`] parses and dispatches, the domain modules ([`codec`],
//! [`kafka`], [`broker`]) do the work and never print, [`ui`] renders.

pub mod broker;
pub mod cli;
pub mod codec;
pub mod events;
pub mod exit;
pub mod faults;
pub mod kafka;
pub mod labs;
pub mod ui;
