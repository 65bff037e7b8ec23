//! The lab runner: lab manifests (`labs/<NN>-<slug>/lab.toml`, embedded at
//! build time), the student's progress in `.chinook/progress.json`, and
//! `verify`, which runs each victory condition's check against the live broker.
//! Content is data; only a genuinely new kind of check adds code (`checks`).

pub mod checks;
pub mod journal;
pub mod lint;
pub mod programs;

use std::{collections::BTreeMap, path::Path};

use miette::Diagnostic;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use checks::CheckSpec;
pub use programs::{Programs, Role};

use crate::{kafka::topics::TopicPlan, verdict::Verdict};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/labs.rs"));
}

#[derive(Debug, Error, Diagnostic)]
pub enum LabError {
    #[error("there is no lab {number}")]
    #[diagnostic(code(chinook::labs::unknown), help("`chinook lab list` shows the labs"))]
    Unknown { number: u32 },
    #[error("lab manifest {dir}/lab.toml is invalid: {reason}")]
    #[diagnostic(code(chinook::labs::manifest))]
    Manifest { dir: String, reason: String },
    #[error("lab {lab} has no step {step}")]
    #[diagnostic(code(chinook::labs::step), help("steps are numbered from 1; `chinook lab {lab}` lists them"))]
    NoStep { lab: u32, step: usize },
    #[error("{path} is invalid: {reason}")]
    #[diagnostic(
        code(chinook::labs::config),
        help("it holds `[programs]` with `producer = \"…\"` and `consumer = \"…\"`; `chinook lab init` writes one")
    )]
    Config { path: String, reason: String },
    #[error("{what}: {reason}")]
    #[diagnostic(code(chinook::labs::io))]
    Io { what: String, reason: String },
}

/// One step of a walk-through.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub title: String,
    /// The chinook command that does it.
    pub run: String,
    /// The check that shows it worked.
    pub check: CheckSpec,
    pub explain: String,
    pub hint: String,
    /// A deliberate failure: the walk-through offers a journal entry after it.
    #[serde(default)]
    pub journal: bool,
}

/// One victory condition.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub id: String,
    pub statement: String,
    pub check: CheckSpec,
    pub hint: String,
}

/// A lab, as its manifest describes it.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Lab {
    pub number: u32,
    pub slug: String,
    pub title: String,
    pub goal: String,
    /// The topics the lab works with (`chinook topics create` makes them).
    #[serde(rename = "topic", default)]
    pub topics: Vec<TopicPlan>,
    /// What each of the student's programs must do, by role.
    #[serde(default)]
    pub contract: BTreeMap<Role, String>,
    /// chinook's own commands that keep the contract: the model solution.
    #[serde(default)]
    pub reference: BTreeMap<Role, String>,
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
    #[serde(rename = "condition")]
    pub conditions: Vec<Condition>,
    /// The student-facing text.
    #[serde(skip)]
    pub readme: String,
    #[serde(skip)]
    pub dir: String,
}

impl Lab {
    /// The planned topic `name` of this lab.
    pub fn topic(&self, name: &str) -> Option<&TopicPlan> {
        self.topics.iter().find(|t| t.name == name)
    }

    /// The programs a condition or step of this lab runs.
    pub fn roles(&self) -> std::collections::BTreeSet<Role> {
        self.conditions
            .iter()
            .map(|c| &c.check)
            .chain(self.steps.iter().map(|s| &s.check))
            .filter_map(CheckSpec::needs)
            .collect()
    }
}

/// Parses one lab manifest.
pub fn parse(dir: &str, manifest: &str, readme: &str) -> Result<Lab, LabError> {
    let mut lab: Lab =
        toml::from_str(manifest).map_err(|e| LabError::Manifest { dir: dir.to_string(), reason: e.to_string() })?;
    lab.readme = readme.to_string();
    lab.dir = dir.to_string();
    Ok(lab)
}

/// Every lab shipped in this binary, in order.
pub fn all() -> Result<Vec<Lab>, LabError> {
    embedded::EMBEDDED.iter().map(|(dir, manifest, readme)| parse(dir, manifest, readme)).collect()
}

pub fn find(number: u32) -> Result<Lab, LabError> {
    all()?.into_iter().find(|l| l.number == number).ok_or(LabError::Unknown { number })
}

/// Every topic the labs declare, first declaration first: what `chinook
/// topics create` makes and what the embedded broker binds schemas to.
pub fn topic_plan() -> Vec<TopicPlan> {
    let labs = all().expect("the embedded lab manifests parse (tests/labs.rs lints them)");
    let mut plan: Vec<TopicPlan> = Vec::new();
    for t in labs.into_iter().flat_map(|l| l.topics) {
        if !plan.iter().any(|p| p.name == t.name) {
            plan.push(t);
        }
    }
    plan
}

/// Where a student is in each lab.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Progress {
    /// Lab number → steps completed and whether verify passed.
    pub labs: BTreeMap<u32, LabProgress>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct LabProgress {
    /// Steps done, counted from the first.
    pub steps_done: usize,
    pub verified: bool,
}

impl Progress {
    fn path(root: &Path) -> std::path::PathBuf {
        root.join(".chinook").join("progress.json")
    }

    pub fn load(root: &Path) -> Result<Self, LabError> {
        match std::fs::read(Self::path(root)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| LabError::Io {
                what: Self::path(root).display().to_string(),
                reason: format!("unreadable ({e}); delete it to start over"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(LabError::Io { what: Self::path(root).display().to_string(), reason: e.to_string() }),
        }
    }

    pub fn save(&self, root: &Path) -> Result<(), LabError> {
        let path = Self::path(root);
        let io = |e: std::io::Error| LabError::Io { what: path.display().to_string(), reason: e.to_string() };
        std::fs::create_dir_all(path.parent().expect("the path has a parent")).map_err(io)?;
        std::fs::write(&path, serde_json::to_vec_pretty(self).expect("progress serializes")).map_err(io)
    }

    /// "not started", "in progress (2/6)" or "done".
    pub fn status(&self, lab: &Lab) -> String {
        match self.labs.get(&lab.number) {
            Some(p) if p.verified => "done".into(),
            Some(p) if p.steps_done > 0 => {
                format!("in progress ({}/{})", p.steps_done.min(lab.steps.len()), lab.steps.len())
            }
            _ => "not started".into(),
        }
    }
}

/// How a condition came out.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    /// The program it judges is not configured: nothing was run.
    NotAttempted,
}

/// The result of one victory condition: its verdict (`what` is the
/// condition's statement), the hint, how long the check took, and the last
/// lines the student's programs wrote when it failed.
#[derive(Clone, Debug, Serialize)]
pub struct ConditionResult {
    pub id: String,
    pub status: Status,
    #[serde(flatten)]
    pub verdict: Verdict,
    pub hint: String,
    pub elapsed_ms: u64,
    /// Where the programs' output is kept.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
    /// The last lines of that output (failed conditions only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub output_tail: String,
}

/// `verify` for one lab.
#[derive(Clone, Debug, Serialize)]
pub struct Verification {
    pub lab: u32,
    pub title: String,
    /// Whose programs were judged: "student" or "reference".
    pub programs: programs::Source,
    pub passed: bool,
    pub conditions: Vec<ConditionResult>,
    pub elapsed_ms: u64,
}

/// Runs `c`'s check and times it.
async fn judge(c: &Condition, env: &checks::Env) -> ConditionResult {
    let started = std::time::Instant::now();
    let judged = checks::run(&c.check, &c.id, env).await;
    let status = match (&judged.verdict, judged.attempted) {
        (_, false) => Status::NotAttempted,
        (v, true) if v.passed => Status::Passed,
        _ => Status::Failed,
    };
    let hint = match (status, c.check.needs()) {
        (Status::NotAttempted, Some(role)) => format!("{} {}", programs::how_to_configure(role), c.hint),
        _ => c.hint.clone(),
    };
    ConditionResult {
        id: c.id.clone(),
        status,
        verdict: Verdict { what: c.statement.clone(), ..judged.verdict },
        hint,
        elapsed_ms: started.elapsed().as_millis() as u64,
        output_tail: if status == Status::Failed { judged.output_tail } else { String::new() },
        logs: judged.logs,
    }
}

/// Runs every victory condition of `lab` against the broker in `env`.
pub async fn verify(lab: &Lab, env: &checks::Env) -> Verification {
    let started = std::time::Instant::now();
    // Checks run side by side: each works on scratch topics and groups of its
    // own, and the outage is staged on a private door.
    let conditions = futures::future::join_all(lab.conditions.iter().map(|c| judge(c, env))).await;
    Verification {
        lab: lab.number,
        title: lab.title.clone(),
        programs: env.programs.source,
        passed: conditions.iter().all(|r| r.status == Status::Passed),
        conditions,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}
