//! `chinook bench`: measurements for Lab 3, made on this machine.

use clap::{Args, Subcommand};

use super::Outcome;
use crate::{
    bench::serialization::{self, BenchError, Row},
    exit,
    ui::{self, Ui},
};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The same events as protobuf and as JSON: size, encode and decode speed.
    #[command(after_help = "\
Examples:
  chinook bench serialization                    # 20,000 events of every kind
  chinook bench serialization --events 1000 --format json

Speeds depend on the build: measure a release build (`cargo install --path .`) for figures to compare.")]
    Serialization(SerializationArgs),
}

#[derive(Debug, Args)]
pub struct SerializationArgs {
    /// How many events to serialize each way (every event kind in turn).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub events: u32,
}

impl From<BenchError> for super::Failure {
    fn from(e: BenchError) -> Self {
        let code = match &e {
            BenchError::Codec(c) => c.exit_code(),
            BenchError::Mismatch { .. } => exit::FAILED,
        };
        super::Failure::new(code, e)
    }
}

fn table(rows: &[Row]) -> String {
    let mut t = ui::table(["format", "bytes/event", "total bytes", "size vs protobuf", "encode/s", "decode/s"]);
    for r in rows {
        t.add_row([
            r.format.to_string(),
            format!("{:.1}", r.bytes_per_event),
            r.bytes.to_string(),
            format!("×{:.2}", r.size_ratio),
            format!("{:.0}", r.encode_per_sec),
            format!("{:.0}", r.decode_per_sec),
        ]);
    }
    t.to_string()
}

pub fn run(cmd: BenchCommand, ui: Ui) -> Outcome {
    match cmd {
        BenchCommand::Serialization(args) => {
            let events = serialization::sample(args.events as usize);
            let rows = serialization::measure(&events)?;
            ui.emit(&rows, || {
                format!(
                    "{}\n{} events, every one decoded back and compared; speeds are this build's ({})",
                    table(&rows),
                    args.events,
                    if cfg!(debug_assertions) { "a debug build: slower than release" } else { "release" }
                )
            });
            Ok(exit::OK)
        }
    }
}
