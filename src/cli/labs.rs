//! `chinook lab …`, `chinook verify` and `chinook journal`: the guided
//! walk-through, the victory-condition checks and the student's journal.

use std::io::IsTerminal;

use clap::{Args, Subcommand};

use super::{ConnectionArgs, Failure, Outcome};
use crate::{
    exit,
    labs::{self, Lab, LabError, Progress, Verification, checks, journal},
    ui::{self, Ui},
};

impl From<LabError> for Failure {
    fn from(e: LabError) -> Self {
        let code = match e {
            LabError::Unknown { .. } | LabError::NoStep { .. } => exit::USAGE,
            _ => exit::FAILED,
        };
        Failure::new(code, e)
    }
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  chinook lab list
  chinook lab 1                  # the guided walk-through (on a terminal)
  chinook lab 1 verify           # check the victory conditions against the broker
  chinook lab 1 verify --group my-consumers --format json
  chinook lab 1 hint 3
  chinook lab 1 reset")]
pub struct LabArgs {
    /// A lab number, or `list`.
    pub target: String,
    #[command(subcommand)]
    pub action: Option<LabAction>,
}

#[derive(Debug, Subcommand)]
pub enum LabAction {
    /// Check the lab's victory conditions: expected vs observed, exit 0 only if all pass.
    Verify(VerifyArgs),
    /// The hint of a step (default: the step you are on).
    Hint { step: Option<usize> },
    /// Forget your progress in this lab.
    Reset {
        /// Do not ask.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Your own consumer group: condition 3 also checks it committed up to the end.
    #[arg(long)]
    pub group: Option<String>,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  chinook journal add \"the broker restart lost my events: memory storage\"\n  chinook journal"
)]
pub struct JournalArgs {
    #[command(subcommand)]
    pub action: Option<JournalAction>,
}

#[derive(Debug, Subcommand)]
pub enum JournalAction {
    /// Append a dated entry to JOURNAL.md (the lab and step you are on are added).
    Add {
        text: String,
        #[arg(long)]
        lab: Option<u32>,
        #[arg(long)]
        step: Option<usize>,
    },
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{failed} of {total} victory conditions are not met")]
#[diagnostic(code(chinook::labs::verify), help("each ✘ above has the hint that fixes it"))]
struct NotMet {
    failed: usize,
    total: usize,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{0}")]
#[diagnostic(code(chinook::labs::usage), help("give a lab number (`chinook lab 1`) or `list`"))]
struct BadTarget(String);

fn root() -> std::path::PathBuf {
    std::env::current_dir().unwrap_or_default()
}

pub async fn lab(args: LabArgs, ui: Ui) -> Outcome {
    if args.target == "list" {
        let progress = Progress::load(&root())?;
        let labs = labs::all()?;
        let rows: Vec<_> = labs
            .iter()
            .map(|l| serde_json::json!({"lab": l.number, "title": l.title, "status": progress.status(l)}))
            .collect();
        ui.emit(&rows, || {
            let mut t = ui::table(["lab", "title", "status"]);
            for l in &labs {
                t.add_row(vec![l.number.to_string(), l.title.clone(), progress.status(l)]);
            }
            t.to_string()
        });
        return Ok(exit::OK);
    }
    let number: u32 = args
        .target
        .parse()
        .map_err(|_| Failure::new(exit::USAGE, BadTarget(format!("`{}` is not a lab", args.target))))?;
    let lab = labs::find(number)?;
    match args.action {
        None => walk(&lab, ui).await,
        Some(LabAction::Verify(v)) => verify(&[lab], v, ui).await,
        Some(LabAction::Hint { step }) => {
            let progress = Progress::load(&root())?;
            let current = progress.labs.get(&number).map_or(0, |p| p.steps_done).min(lab.steps.len().saturating_sub(1));
            let index = step.map_or(current, |s| s.saturating_sub(1));
            let s = lab.steps.get(index).ok_or(LabError::NoStep { lab: number, step: index + 1 })?;
            println!("Step {} — {}\n{}", index + 1, s.title, s.hint);
            Ok(exit::OK)
        }
        Some(LabAction::Reset { yes }) => {
            if !yes {
                if !std::io::stdin().is_terminal() {
                    return Err(Failure::new(
                        exit::USAGE,
                        BadTarget("not on a terminal: pass --yes to reset without asking".into()),
                    ));
                }
                let sure = dialoguer::Confirm::new()
                    .with_prompt(format!("Forget your progress in lab {number}?"))
                    .default(false)
                    .interact()
                    .unwrap_or(false);
                if !sure {
                    ui.note("nothing changed");
                    return Ok(exit::OK);
                }
            }
            let mut progress = Progress::load(&root())?;
            progress.labs.remove(&number);
            progress.save(&root())?;
            ui.success(format!("lab {number} progress reset"));
            Ok(exit::OK)
        }
    }
}

fn env(conn: &ConnectionArgs, group: Option<String>) -> Result<checks::Env, Failure> {
    let ctx = conn.context()?;
    Ok(checks::Env { conn: ctx.conn, managed: ctx.managed, paths: ctx.paths, group })
}

/// `chinook verify` (every lab) and `chinook lab N verify`.
pub async fn verify(labs: &[Lab], args: VerifyArgs, ui: Ui) -> Outcome {
    let env = env(&args.conn, args.group)?;
    let mut results = Vec::new();
    for lab in labs {
        let spinner = (!ui.quiet && console::Term::stderr().is_term()).then(|| {
            let s = indicatif::ProgressBar::new_spinner();
            s.set_message(format!("checking lab {} against {}…", lab.number, env.conn.brokers));
            s.enable_steady_tick(std::time::Duration::from_millis(100));
            s
        });
        let v = labs::verify(lab, &env).await;
        if let Some(s) = spinner {
            s.finish_and_clear();
        }
        if v.passed {
            let mut progress = Progress::load(&root())?;
            progress.labs.entry(lab.number).or_default().verified = true;
            progress.save(&root())?;
        }
        results.push(v);
    }
    let json = if results.len() == 1 { serde_json::to_value(&results[0]) } else { serde_json::to_value(&results) }
        .expect("results serialize");
    ui.emit(&json, || results.iter().map(human).collect::<Vec<_>>().join("\n\n"));
    let (failed, total) = results
        .iter()
        .flat_map(|v| &v.conditions)
        .fold((0, 0), |(f, t), c| (f + usize::from(!c.verdict.passed), t + 1));
    if failed == 0 {
        return Ok(exit::OK);
    }
    if ui.format == ui::Format::Human {
        return Err(Failure::new(exit::FAILED, NotMet { failed, total }));
    }
    Ok(exit::FAILED)
}

fn human(v: &Verification) -> String {
    let t = ui::verdict_table("victory condition", v.conditions.iter().map(|c| &c.verdict));
    let mut out = format!("Lab {} — {} ({} ms)\n{t}", v.lab, v.title, v.elapsed_ms);
    for (i, c) in v.conditions.iter().enumerate().filter(|(_, c)| !c.verdict.passed) {
        out += &format!("\n{} {}. {}: {}", console::style("hint").yellow(), i + 1, c.verdict.what, c.hint);
    }
    if v.passed {
        out += &format!("\n{} every victory condition is met", console::style("✔").green());
    }
    out
}

/// The walk-through: interactive on a terminal, the steps as text otherwise.
async fn walk(lab: &Lab, ui: Ui) -> Outcome {
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let mut progress = Progress::load(&root())?;
    println!("{}\n{}\n", console::style(format!("Lab {} — {}", lab.number, lab.title)).bold(), lab.goal);
    if !interactive {
        for (i, s) in lab.steps.iter().enumerate() {
            println!("{}. {}\n   $ {}\n   {}\n", i + 1, s.title, s.run, s.explain);
        }
        println!("Check your work with `chinook lab {} verify`.", lab.number);
        return Ok(exit::OK);
    }
    let bar = indicatif::ProgressBar::new(lab.steps.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30.green/white} {pos}/{len} steps").expect("a valid template"),
    );
    let start = progress.labs.get(&lab.number).map_or(0, |p| p.steps_done);
    if start > 0 && start < lab.steps.len() {
        println!("Welcome back: resuming at step {}.\n", start + 1);
    }
    let env = env(&ConnectionArgs::default(), None)?;
    let mut index = start;
    while index < lab.steps.len() {
        let step = &lab.steps[index];
        bar.set_position(index as u64);
        bar.tick();
        println!(
            "\n{}\n{}\n  $ {}",
            console::style(format!("Step {}/{} — {}", index + 1, lab.steps.len(), step.title)).bold().cyan(),
            step.explain,
            step.run
        );
        match key("[r]un it · [c]heck my own · [h]int · [s]kip · [q]uit") {
            'r' => {
                run_step(&step.run);
                if check_step(step, &env).await {
                    index += 1;
                    offer_journal(lab, index, step, ui);
                }
            }
            'c' => {
                if check_step(step, &env).await {
                    index += 1;
                    offer_journal(lab, index, step, ui);
                }
            }
            'h' => println!("{} {}", console::style("hint:").yellow(), step.hint),
            's' => index += 1,
            'q' => {
                progress.labs.entry(lab.number).or_default().steps_done = index;
                progress.save(&root())?;
                bar.finish_and_clear();
                println!("Progress saved: `chinook lab {}` resumes at step {}.", lab.number, index + 1);
                return Ok(exit::OK);
            }
            _ => println!("type r, c, h, s or q"),
        }
        progress.labs.entry(lab.number).or_default().steps_done = index;
        progress.save(&root())?;
    }
    bar.finish_and_clear();
    println!("\nAll steps done. Now: `chinook lab {} verify`.", lab.number);
    Ok(exit::OK)
}

/// Asks with `prompt` and takes one key, without Enter (as rustlings does);
/// Ctrl-C or a closed terminal count as `q`, so progress is saved.
fn key(prompt: &str) -> char {
    let term = console::Term::stdout();
    let _ = term.write_str(&format!("{} ", console::style(prompt).bold()));
    let key = term.read_char().unwrap_or('q').to_ascii_lowercase();
    let _ = term.write_line(&key.to_string());
    key
}

/// Runs a step's command line with this chinook binary.
fn run_step(line: &str) {
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "chinook".into());
    let line = line.split(' ').map(|w| if w == "chinook" { exe.as_str() } else { w }).collect::<Vec<_>>().join(" ");
    match std::process::Command::new("sh").args(["-c", &line]).status() {
        Ok(s) if s.success() => {}
        Ok(s) => println!("{} the command ended with {s}", console::style("✘").red()),
        Err(e) => println!("{} could not run it: {e}", console::style("✘").red()),
    }
}

async fn check_step(step: &labs::Step, env: &checks::Env) -> bool {
    let outcome = checks::run(&step.check, env).await;
    if outcome.passed {
        println!("{} {}", console::style("✔").green(), outcome.observed);
    } else {
        println!(
            "{} expected {}\n  observed {}\n{} {}",
            console::style("✘").red(),
            outcome.expected,
            outcome.observed,
            console::style("hint:").yellow(),
            step.hint
        );
    }
    outcome.passed
}

/// After a deliberate failure, offers to write down what was learnt.
fn offer_journal(lab: &Lab, step_number: usize, step: &labs::Step, ui: Ui) {
    if !step.title.starts_with("Break it") {
        return;
    }
    let text: String = dialoguer::Input::new()
        .with_prompt("What broke, and how does the fix show? (journal entry, empty to skip)")
        .allow_empty(true)
        .interact_text()
        .unwrap_or_default();
    if !text.trim().is_empty() && journal::add(&root(), Some(lab.number), Some(step_number), &text).is_ok() {
        ui.success("added to JOURNAL.md");
    }
}

pub fn journal_cmd(args: JournalArgs, ui: Ui) -> Outcome {
    match args.action {
        Some(JournalAction::Add { text, lab, step }) => {
            let progress = Progress::load(&root())?;
            let current = progress.labs.iter().rev().find(|(_, p)| !p.verified).map(|(n, p)| (*n, p.steps_done + 1));
            let lab = lab.or(current.map(|c| c.0));
            let step = step.or(current.filter(|c| Some(c.0) == lab).map(|c| c.1));
            journal::add(&root(), lab, step, &text)?;
            ui.success("added to JOURNAL.md");
        }
        None => {
            let entries = journal::entries(&root())?;
            println!(
                "{}",
                if entries.is_empty() { "no entries yet: `chinook journal add \"…\"`".to_string() } else { entries }
            );
        }
    }
    Ok(exit::OK)
}
