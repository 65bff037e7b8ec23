//! Everything a person or a script sees: output format and colour choices,
//! JSON emission, tables, notes on stderr and error reports. Domain code never
//! prints; commands hand their results to this module.

use std::io::{IsTerminal, Write};

use clap::ValueEnum;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

/// How a reporting command writes its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Tables and words for people (pretty JSON for decoded messages on a terminal).
    #[default]
    Human,
    /// One pretty JSON document.
    Json,
    /// One compact JSON object per line.
    Jsonl,
}

/// When to colour output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum ColorChoice {
    /// Colour on a terminal, unless NO_COLOR is set.
    #[default]
    Auto,
    Always,
    Never,
}

/// The output settings of one run.
#[derive(Clone, Copy, Debug)]
pub struct Ui {
    pub format: Format,
    pub quiet: bool,
    pub verbose: bool,
    pub color: bool,
}

impl Ui {
    pub fn new(format: Format, color: ColorChoice, quiet: bool, verbose: bool) -> Self {
        let color = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
            }
        };
        console::set_colors_enabled(color);
        console::set_colors_enabled_stderr(color);
        Self { format, quiet, verbose, color }
    }

    /// Is standard output a terminal?
    pub fn stdout_is_tty() -> bool {
        std::io::stdout().is_terminal()
    }

    /// A remark for people, on stderr; silent with `-q`.
    pub fn note(&self, text: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", console::style(text.as_ref()).dim());
        }
    }

    /// A success line for people, on stderr; silent with `-q`.
    pub fn success(&self, text: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{} {}", console::style("✔").green(), text.as_ref());
        }
    }

    /// Writes `value` as JSON (pretty for `json`, one line for `jsonl`) to stdout.
    pub fn json<T: Serialize>(&self, value: &T) {
        let text = if self.format == Format::Jsonl {
            serde_json::to_string(value)
        } else {
            serde_json::to_string_pretty(value)
        };
        println!("{}", text.expect("report types always serialize"));
    }

    /// Writes a result: JSON for scripts, or the `human` rendering.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        match self.format {
            Format::Human => {
                let text = human();
                if !text.is_empty() {
                    println!("{text}");
                }
            }
            _ => self.json(value),
        }
    }

    /// Writes bytes to stdout as they are.
    pub fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)?;
        out.flush()
    }
}

/// A table in the house style.
/// `values` as a one-line chart of block characters, scaled from zero to
/// their largest (all zero: the lowest block).
pub fn sparkline(values: &[i64]) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let top = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    values.iter().map(|&v| BLOCKS[((v.max(0) as f64 / top) * 7.0).round() as usize]).collect()
}

pub fn table<I: IntoIterator<Item = S>, S: Into<comfy_table::Cell>>(header: I) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(header);
    t
}

/// Expected vs observed as a table, one numbered row per verdict, ✔ or ✘;
/// `what` heads the column that says what each row is about.
pub fn verdict_table<'a>(what: &str, verdicts: impl IntoIterator<Item = &'a crate::verdict::Verdict>) -> Table {
    let mut t = table(["", "#", what, "expected", "observed"]);
    for (i, v) in verdicts.into_iter().enumerate() {
        let mark = if v.passed { console::style("✔").green() } else { console::style("✘").red() };
        t.add_row(vec![mark.to_string(), (i + 1).to_string(), v.what.clone(), v.expected.clone(), v.observed.clone()]);
    }
    t
}

/// Renders an error report on stderr the way miette does for a fatal error.
pub fn report(error: &miette::Report) {
    eprintln!("{error:?}");
}
