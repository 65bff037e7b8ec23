//! `chinook lab …`, `chinook verify` and `chinook journal`: the guided
//! walk-through, the victory-condition checks and the student's journal.

use std::io::IsTerminal;

use clap::{Args, Subcommand};

use super::{ConnectionArgs, Failure, Outcome};
use crate::{
    exit,
    labs::{
        self, Lab, LabError, Progress, Role, Status, Verification, checks, journal,
        programs::{Config, Programs, Source},
    },
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
  chinook lab init --producer \"go run ./cmd/producer\" --consumer \"go run ./cmd/consumer\"
  chinook lab 1                  # the guided walk-through (on a terminal)
  chinook lab 1 contract         # what your programs must do, and how chinook runs them
  chinook lab 1 verify           # run your programs and judge them against the broker
  chinook lab 1 verify --reference --format json
  chinook lab 1 hint 3
  chinook lab 1 reset
  chinook lab lint --live        # every lab: manifests, reference passes, nothing configured attempts nothing")]
pub struct LabArgs {
    /// A lab number, `list`, `init` (write chinook.toml) or `lint`.
    pub target: String,
    #[command(subcommand)]
    pub action: Option<LabAction>,
    /// With `init`: the commands that run your programs.
    #[command(flatten)]
    pub programs: ProgramFlags,
    /// With `lint`: also run every lab against the broker (reference and nothing configured).
    #[arg(long)]
    pub live: bool,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

/// The commands that run the student's programs (each else under [programs] in chinook.toml).
#[derive(Debug, Args, Default)]
pub struct ProgramFlags {
    /// The command that runs your producer (labs 1).
    #[arg(long)]
    pub producer: Option<String>,
    /// The command that runs your consumer (labs 1 and 4).
    #[arg(long)]
    pub consumer: Option<String>,
    /// The command that runs your projector (lab 2).
    #[arg(long)]
    pub projector: Option<String>,
    /// The command that runs your saga orchestrator (lab 2).
    #[arg(long)]
    pub orchestrator: Option<String>,
    /// The command that runs your windowed aggregator (lab 4).
    #[arg(long)]
    pub aggregator: Option<String>,
    /// The command your CI runs to catch breaking schema changes (lab 3).
    #[arg(long)]
    pub schema_check: Option<String>,
}

impl ProgramFlags {
    fn by_role(&self) -> [(Role, Option<String>); 6] {
        [
            (Role::Producer, self.producer.clone()),
            (Role::Consumer, self.consumer.clone()),
            (Role::Projector, self.projector.clone()),
            (Role::Orchestrator, self.orchestrator.clone()),
            (Role::Aggregator, self.aggregator.clone()),
            (Role::SchemaCheck, self.schema_check.clone()),
        ]
    }
}

#[derive(Debug, Subcommand)]
pub enum LabAction {
    /// Run your programs and judge the lab's victory conditions: expected vs observed, exit 0 only if all pass.
    Verify(VerifyArgs),
    /// What your programs must do, and how chinook runs them.
    Contract,
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
    #[command(flatten)]
    pub programs: ProgramFlags,
    /// Judge chinook's own commands (the lab's model solution) instead of your programs.
    #[arg(long, conflicts_with_all = ["producer", "consumer", "projector", "orchestrator", "aggregator"])]
    pub reference: bool,
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
#[error("{failed} of {total} victory conditions are not met{}", if *.not_attempted > 0 { format!(" ({} not attempted)", .not_attempted) } else { String::new() })]
#[diagnostic(code(chinook::labs::verify), help("each condition not met has its hint above"))]
struct NotMet {
    failed: usize,
    total: usize,
    not_attempted: usize,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{0}")]
#[diagnostic(code(chinook::labs::usage), help("give a lab number (`chinook lab 1`) or `list`"))]
struct BadTarget(String);

fn root() -> std::path::PathBuf {
    std::env::current_dir().unwrap_or_default()
}

pub async fn lab(args: LabArgs, ui: Ui) -> Outcome {
    match args.target.as_str() {
        "list" => return list(ui),
        "init" => return init(&args, ui),
        "lint" => return lint(&args, ui).await,
        _ => {}
    }
    let number: u32 = args.target.parse().map_err(|_| {
        Failure::new(exit::USAGE, BadTarget(format!("`{}` is not a lab, `list`, `init` or `lint`", args.target)))
    })?;
    let lab = labs::find(number)?;
    match args.action {
        None => walk(&lab, ui).await,
        Some(LabAction::Verify(v)) => verify(&[lab], v, ui).await,
        Some(LabAction::Contract) => contract(&lab, ui),
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

fn list(ui: Ui) -> Outcome {
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
    Ok(exit::OK)
}

/// `chinook lab init`: writes the commands of the student's programs to
/// chinook.toml (asking for them on a terminal when no flag gives them).
fn init(args: &LabArgs, ui: Ui) -> Outcome {
    let mut config = Config::load(&root())?;
    let flags = args.programs.by_role();
    let interactive = std::io::stdin().is_terminal() && flags.iter().all(|(_, f)| f.is_none());
    for (role, flag) in &flags {
        let role = *role;
        let answer = match flag {
            Some(c) => Some(c.clone()),
            None if interactive => Some(
                dialoguer::Input::<String>::new()
                    .with_prompt(format!("Command that runs your {} (empty: none yet)", role.name()))
                    .with_initial_text(config.programs.get(&role).cloned().unwrap_or_default())
                    .allow_empty(true)
                    .interact_text()
                    .unwrap_or_default(),
            ),
            None => None,
        };
        match answer.map(|a| a.trim().to_string()) {
            Some(a) if a.is_empty() => {
                config.programs.remove(&role);
            }
            Some(a) => {
                config.programs.insert(role, a);
            }
            None => {}
        }
    }
    config.save(&root())?;
    ui.emit(&config, || {
        let mut out = format!("wrote {}", labs::programs::CONFIG_FILE);
        for role in Role::ALL {
            out += &format!(
                "\n  {:<9} {}",
                role.name(),
                config.programs.get(&role).map_or("(not configured)", String::as_str)
            );
        }
        out + "\nNext: `chinook lab 1 contract`, then `chinook lab 1 verify`."
    });
    Ok(exit::OK)
}

/// `chinook lab N contract`.
fn contract(lab: &Lab, ui: Ui) -> Outcome {
    let configured = Programs::student(&root(), &[])?;
    let variables = labs::programs::variables(lab);
    let json = serde_json::json!({
        "lab": lab.number,
        "variables": variables.iter().map(|(k, v)| serde_json::json!({"name": k, "holds": v})).collect::<Vec<_>>(),
        "roles": lab.contract,
        "configured": configured.commands,
        "reference": lab.reference,
    });
    ui.emit(&json, || {
        let mut out = format!(
            "Lab {} — how chinook runs your programs\n\nEach check runs the command you configured through `sh -c` in this directory, with:\n",
            lab.number
        );
        let mut t = ui::table(["variable", "holds"]);
        for (k, v) in &variables {
            t.add_row(vec![k, v]);
        }
        out += &t.to_string();
        out += "\nChecks use scratch topics shaped like the lab's (same partitions, same schema), never your own data; a program's output is kept under .chinook/runs/.\n";
        for (role, text) in &lab.contract {
            out += &format!(
                "\n{} — {}\n{}\n",
                console::style(format!("Your {}", role.name())).bold(),
                configured.get(*role).map_or("not configured".to_string(), |c| format!("`{c}`")),
                text.trim()
            );
        }
        out + format!("\nConfigure with `chinook lab init`; `chinook lab {} verify --reference` shows the model solution passing.", lab.number).as_str()
    });
    Ok(exit::OK)
}

/// `chinook lab lint [--live]`.
async fn lint(args: &LabArgs, ui: Ui) -> Outcome {
    let all = labs::all()?;
    let mut problems: Vec<String> = all.iter().flat_map(labs::lint::manifest).collect();
    if args.live {
        let ctx = args.conn.context()?;
        for lab in &all {
            let mut env = checks::Env {
                conn: ctx.conn.clone(),
                managed: ctx.managed.clone(),
                paths: ctx.paths.clone(),
                lab: lab.clone(),
                programs: Programs::none(),
                runs: runs_dir(lab, "lint"),
            };
            problems.extend(labs::lint::live(lab, &mut env).await);
        }
    }
    ui.emit(&problems, || {
        if problems.is_empty() {
            format!(
                "{} {} lab(s) clean{}",
                console::style("✔").green(),
                all.len(),
                if args.live { " (live)" } else { "" }
            )
        } else {
            problems.iter().map(|p| format!("{} {p}", console::style("✘").red())).collect::<Vec<_>>().join("\n")
        }
    });
    Ok(if problems.is_empty() { exit::OK } else { exit::FAILED })
}

/// Where one run keeps its programs' output: `.chinook/runs/lab<N>-<what>-<time>`.
fn runs_dir(lab: &Lab, what: &str) -> std::path::PathBuf {
    let at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace(':', "");
    root().join(".chinook").join("runs").join(format!("lab{}-{what}-{at}", lab.number))
}

/// The check environment for `lab` with `programs`.
fn env(conn: &ConnectionArgs, lab: &Lab, programs: Programs, what: &str) -> Result<checks::Env, Failure> {
    let ctx = conn.context()?;
    Ok(checks::Env {
        conn: ctx.conn,
        managed: ctx.managed,
        paths: ctx.paths,
        lab: lab.clone(),
        programs,
        runs: runs_dir(lab, what),
    })
}

/// `chinook verify` (every lab) and `chinook lab N verify`.
pub async fn verify(labs: &[Lab], args: VerifyArgs, ui: Ui) -> Outcome {
    let mut results = Vec::new();
    for lab in labs {
        let programs = if args.reference {
            Programs::reference(lab)
        } else {
            Programs::student(&root(), &args.programs.by_role())?
        };
        let env = env(&args.conn, lab, programs, "verify")?;
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
        // Only the student's own programs earn the lab.
        if v.passed && v.programs == Source::Student {
            let mut progress = Progress::load(&root())?;
            progress.labs.entry(lab.number).or_default().verified = true;
            progress.save(&root())?;
        }
        results.push((v, env.programs));
    }
    let verifications: Vec<&Verification> = results.iter().map(|(v, _)| v).collect();
    let json = if verifications.len() == 1 {
        serde_json::to_value(verifications[0])
    } else {
        serde_json::to_value(&verifications)
    }
    .expect("results serialize");
    ui.emit(&json, || results.iter().map(|(v, p)| human(v, p)).collect::<Vec<_>>().join("\n\n"));
    let all = || verifications.iter().flat_map(|v| &v.conditions);
    let (failed, total) = (all().filter(|c| c.status != Status::Passed).count(), all().count());
    let not_attempted = all().filter(|c| c.status == Status::NotAttempted).count();
    if failed == 0 {
        return Ok(exit::OK);
    }
    if ui.format == ui::Format::Human {
        return Err(Failure::new(exit::FAILED, NotMet { failed, total, not_attempted }));
    }
    Ok(exit::FAILED)
}

fn human(v: &Verification, programs: &Programs) -> String {
    let whose = match v.programs {
        Source::Reference => "the reference solution (chinook's own commands), not yours".to_string(),
        Source::Student if programs.commands.is_empty() => "your programs: none configured".to_string(),
        Source::Student => format!(
            "your programs: {}",
            programs.commands.iter().map(|(r, c)| format!("{} `{c}`", r.name())).collect::<Vec<_>>().join(", ")
        ),
    };
    let mut t = ui::table(["", "#", "victory condition", "expected", "observed", "time"]);
    for (i, c) in v.conditions.iter().enumerate() {
        let mark = match c.status {
            Status::Passed => console::style("✔").green(),
            Status::Failed => console::style("✘").red(),
            Status::NotAttempted => console::style("–").yellow(),
        };
        t.add_row(vec![
            mark.to_string(),
            (i + 1).to_string(),
            c.verdict.what.clone(),
            c.verdict.expected.clone(),
            c.verdict.observed.clone(),
            format!("{:.1} s", c.elapsed_ms as f64 / 1000.0),
        ]);
    }
    let mut out = format!("Lab {} — {} ({} ms)\njudging {whose}\n{t}", v.lab, v.title, v.elapsed_ms);
    for (i, c) in v.conditions.iter().enumerate().filter(|(_, c)| c.status != Status::Passed) {
        out += &format!("\n{} {}. {}: {}", console::style("hint").yellow(), i + 1, c.verdict.what, c.hint);
        if !c.output_tail.is_empty() {
            out += &format!("\n{}", textwrap_indent(&c.output_tail));
        }
    }
    if v.passed {
        out += &format!("\n{} every victory condition is met", console::style("✔").green());
    }
    out
}

/// `text` indented under a hint.
fn textwrap_indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
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
    // [r] runs chinook's command, then checks with chinook's own programs; [c] checks yours.
    let reference = env(&ConnectionArgs::default(), lab, Programs::reference(lab), "walk")?;
    let own = env(&ConnectionArgs::default(), lab, Programs::student(&root(), &[])?, "walk")?;
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
                if check_step(index, step, &reference).await {
                    index += 1;
                    offer_journal(lab, index, step, ui);
                }
            }
            'c' => {
                if check_step(index, step, &own).await {
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

async fn check_step(index: usize, step: &labs::Step, env: &checks::Env) -> bool {
    if let Some(role) = step.check.needs()
        && env.programs.get(role).is_none()
    {
        println!("{} {}", console::style("–").yellow(), labs::programs::how_to_configure(role));
        return false;
    }
    let judged = checks::run(&step.check, &format!("step-{}", index + 1), env).await;
    let outcome = &judged.verdict;
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
        if !judged.output_tail.is_empty() {
            println!("{}", textwrap_indent(&judged.output_tail));
        }
    }
    outcome.passed
}

/// After a deliberate failure, offers to write down what was learnt.
fn offer_journal(lab: &Lab, step_number: usize, step: &labs::Step, ui: Ui) {
    if !step.journal {
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
