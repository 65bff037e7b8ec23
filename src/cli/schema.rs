//! `chinook schema`: checks on `.proto` files. `check` names the breaking
//! changes between two versions with `buf breaking`'s rule ids.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::Outcome;
use crate::{
    exit,
    schema::{self, Category, Direction, Mode, ProtoSet, SchemaError, Violation},
    ui::Ui,
};

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// The breaking changes from OLD to NEW, named by buf's rule ids, with file:line:column.
    #[command(after_help = "\
Examples:
  chinook schema check proto-v1/ proto/                    # WIRE rules: can NEW read what OLD wrote?
  chinook schema check old.proto new.proto --rules wire-json
  chinook schema check proto-v1/ proto/ --mode full --format json

Rules: wire (binary compatibility), wire-json (also proto3 JSON), file (also generated code).
Modes: backward (default; NEW reads OLD's data, as `buf breaking NEW --against OLD`),
forward (OLD reads NEW's data), full (both).
Exit codes: 0 no breaking change · 1 breaking changes found · 2 usage · 3 a schema does not compile.
See docs/schema-check.md.")]
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The previous version: a directory of .proto files (the import root) or one .proto file.
    pub old: PathBuf,
    /// The new version, the same way.
    pub new: PathBuf,
    /// Which of buf's rule categories to apply.
    #[arg(long, value_enum, default_value_t = Category::Wire)]
    pub rules: Category,
    /// Which readers must keep working: backward (NEW reads OLD's data), forward, or full.
    #[arg(long, value_enum, default_value_t = Mode::Backward)]
    pub mode: Mode,
}

impl From<SchemaError> for super::Failure {
    fn from(e: SchemaError) -> Self {
        super::Failure::new(e.exit_code(), e)
    }
}

/// One finding as printed: the violation and the direction it was found in.
#[derive(Debug, Serialize)]
struct Finding {
    rule: &'static str,
    file: String,
    line: u32,
    column: u32,
    message: String,
    direction: Direction,
}

fn position(v: &Finding) -> String {
    format!("{}:{}:{}", v.file, v.line, v.column)
}

fn human(findings: &[Finding], args: &CheckArgs) -> String {
    let mut out = String::new();
    let width = findings.iter().map(|f| position(f).len()).max().unwrap_or(0);
    for f in findings {
        let dir = if args.mode == Mode::Full { format!("[{:?}] ", f.direction).to_lowercase() } else { String::new() };
        out.push_str(&format!("{dir}{:<width$}  {}  {}\n", position(f), f.rule, f.message));
    }
    let verdict = match findings.len() {
        0 => "no breaking change".to_string(),
        1 => "1 breaking change".to_string(),
        n => format!("{n} breaking changes"),
    };
    let mode = match args.mode {
        Mode::Backward => "backward: NEW reads OLD's data",
        Mode::Forward => "forward: OLD reads NEW's data",
        Mode::Full => "full: both directions",
    };
    out.push_str(&format!("{verdict} ({} rules, {mode})", args.rules.buf_name()));
    out
}

pub fn run(cmd: SchemaCommand, ui: Ui) -> Outcome {
    match cmd {
        SchemaCommand::Check(args) => {
            let old = ProtoSet::load(&args.old, "OLD")?;
            let new = ProtoSet::load(&args.new, "NEW")?;
            let mut findings = Vec::new();
            for &direction in args.mode.directions() {
                let found: Vec<Violation> = schema::check_direction(&old, &new, args.rules, direction);
                findings.extend(found.into_iter().map(|v| Finding {
                    rule: v.rule,
                    file: v.file,
                    line: v.line,
                    column: v.column,
                    message: v.message,
                    direction,
                }));
            }
            ui.emit(&findings, || human(&findings, &args));
            Ok(if findings.is_empty() { exit::OK } else { exit::FAILED })
        }
    }
}
