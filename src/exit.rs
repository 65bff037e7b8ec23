//! Process exit codes, shared by every command and documented in README.md.

/// Everything worked; every check passed.
pub const OK: i32 = 0;
/// An operation or a check failed (a record not acknowledged, a check not met).
pub const FAILED: i32 = 1;
/// The command line was wrong (unknown flag, bad value); clap uses it too.
pub const USAGE: i32 = 2;
/// The input data was invalid (undecodable protobuf, bad JSON, bad framing).
pub const BAD_INPUT: i32 = 3;
/// No broker answered at the given address, or the managed broker is not running.
pub const UNAVAILABLE: i32 = 4;
/// Stopped by Ctrl-C (128 + SIGINT), after finishing what was in hand and reporting it.
pub const INTERRUPTED: i32 = 130;
