//! Breaking-change detection between two sets of `.proto` files, with the rule
//! ids and categories of `buf breaking` (WIRE, WIRE_JSON, FILE). This module
//! owns the public surface: the categories, the directions (modes), a finding
//! ([`Violation`]) and [`check`], which runs every rule of a category over an
//! old and a new set. The rules themselves live in [`elements`] (files,
//! messages, enums, services) and [`fields`]; [`load`] compiles the input and
//! [`source`] turns descriptor paths into line and column.

pub mod elements;
pub mod examples;
pub mod fields;
pub mod load;
pub mod rules;
pub mod source;

use serde::Serialize;

pub use load::{ProtoSet, SchemaError};
pub use rules::Category;

/// Which way the data flows between the two versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// NEW can read what OLD wrote (`buf breaking NEW --against OLD`).
    Backward,
    /// OLD can read what NEW writes: the same rules with the roles swapped.
    Forward,
    /// Both directions.
    Full,
}

impl Mode {
    /// The directions to run, in order.
    pub fn directions(self) -> &'static [Direction] {
        match self {
            Mode::Backward => &[Direction::Backward],
            Mode::Forward => &[Direction::Forward],
            Mode::Full => &[Direction::Backward, Direction::Forward],
        }
    }
}

/// One run of the rules: which version is checked against which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// NEW checked against OLD; findings point into NEW's files.
    Backward,
    /// OLD checked against NEW; findings point into OLD's files.
    Forward,
}

/// One breaking change: the rule it breaks and where, in the checked set's files.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Violation {
    /// The file, relative to the directory given (or the file's own name).
    pub file: String,
    /// 1-based; 1 (with column 1) when the element is gone and nothing near it is left to point at.
    pub line: u32,
    /// 1-based.
    pub column: u32,
    /// buf's rule id, e.g. `FIELD_SAME_TYPE`.
    pub rule: &'static str,
    pub message: String,
}

/// Every violation of `category`'s rules when `current` replaces `previous`,
/// sorted by file, line, column and rule.
pub fn check(current: &ProtoSet, previous: &ProtoSet, category: Category) -> Vec<Violation> {
    let mut sink = source::Sink::new(category);
    elements::check(&mut sink, current, previous);
    fields::check(&mut sink, current, previous);
    let mut out = sink.into_violations();
    out.sort();
    out.dedup();
    out
}

/// [`check`] for one direction of a mode: backward checks NEW against OLD,
/// forward OLD against NEW.
pub fn check_direction(old: &ProtoSet, new: &ProtoSet, category: Category, direction: Direction) -> Vec<Violation> {
    match direction {
        Direction::Backward => check(new, old, category),
        Direction::Forward => check(old, new, category),
    }
}
