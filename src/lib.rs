//! chinook — the Stream Day toolkit of the Chinook workshop.
//!
//! The binary (`src/main.rs`) is a thin shell over this library so that
//! integration tests and benchmarks reach the same code a student runs.
//! Layers: [`cli`] parses and dispatches, the domain modules ([`codec`],
//! [`kafka`], [`broker`]) do the work and never print, [`ui`] renders.

// Diagnostics carry their source excerpt and labels by value; they are built
// only on the error path, so their size is not worth boxing everywhere.
#![allow(clippy::result_large_err)]
// clap's argument enums hold each subcommand's flags inline, as clap intends.
#![allow(clippy::large_enum_variant)]

pub mod bench;
pub mod broker;
pub mod cli;
pub mod codec;
pub mod correlation;
pub mod events;
pub mod exit;
pub mod faults;
pub mod import;
pub mod kafka;
pub mod labs;
pub mod monitor;
pub mod registry;
pub mod saga;
pub mod schema;
pub mod sourcing;
pub mod streams;
pub mod ui;
pub mod verdict;
