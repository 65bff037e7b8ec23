//! The lab runner: lab manifests (`labs/<NN>-<slug>/lab.toml`, embedded at
//! build time), the student's progress in `.chinook/progress.json`, and
//! `verify`, which runs each victory condition's check against the live broker.
//! Content is data; only a genuinely new kind of check adds code (`checks`).

pub mod checks;
pub mod journal;

use std::{collections::BTreeMap, path::Path};

use miette::Diagnostic;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::verdict::Verdict;

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
    #[error("{what}: {reason}")]
    #[diagnostic(code(chinook::labs::io))]
    Io { what: String, reason: String },
}

/// One step of a walk-through.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Step {
    pub title: String,
    /// The chinook command that does it.
    pub run: String,
    /// The check that shows it worked.
    pub check: String,
    pub explain: String,
    pub hint: String,
}

/// One victory condition.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Condition {
    pub id: String,
    pub statement: String,
    pub check: String,
    pub hint: String,
}

/// A lab, as its manifest describes it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Lab {
    pub number: u32,
    pub slug: String,
    pub title: String,
    pub goal: String,
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

/// Every lab shipped in this binary, in order.
pub fn all() -> Result<Vec<Lab>, LabError> {
    embedded::EMBEDDED
        .iter()
        .map(|(dir, manifest, readme)| {
            let mut lab: Lab = toml::from_str(manifest)
                .map_err(|e| LabError::Manifest { dir: dir.to_string(), reason: e.to_string() })?;
            lab.readme = readme.to_string();
            lab.dir = dir.to_string();
            Ok(lab)
        })
        .collect()
}

pub fn find(number: u32) -> Result<Lab, LabError> {
    all()?.into_iter().find(|l| l.number == number).ok_or(LabError::Unknown { number })
}

/// Problems with a lab's manifest (unknown checks, missing hints or text).
pub fn lint(lab: &Lab) -> Vec<String> {
    let mut problems = Vec::new();
    if lab.readme.trim().is_empty() {
        problems.push(format!("{}: README.md is empty", lab.dir));
    }
    if !lab.dir.starts_with(&format!("{:02}-", lab.number)) {
        problems.push(format!("{}: directory does not start with the lab number {:02}", lab.dir, lab.number));
    }
    let named = lab
        .steps
        .iter()
        .map(|s| (&s.title, &s.check, &s.hint))
        .chain(lab.conditions.iter().map(|c| (&c.statement, &c.check, &c.hint)));
    for (what, check, hint) in named {
        if !checks::NAMES.contains(&check.as_str()) {
            problems.push(format!("{}: `{what}` names unknown check `{check}`", lab.dir));
        }
        if hint.trim().is_empty() {
            problems.push(format!("{}: `{what}` has no hint", lab.dir));
        }
    }
    for s in &lab.steps {
        if !s.run.starts_with("chinook ") {
            problems.push(format!("{}: step `{}` does not run a chinook command", lab.dir, s.title));
        }
    }
    problems
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

/// The result of one victory condition: its verdict (`what` is the
/// condition's statement), the hint, and how long the check took.
#[derive(Clone, Debug, Serialize)]
pub struct ConditionResult {
    pub id: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    pub hint: String,
    pub elapsed_ms: u64,
}

/// `verify` for one lab.
#[derive(Clone, Debug, Serialize)]
pub struct Verification {
    pub lab: u32,
    pub title: String,
    pub passed: bool,
    pub conditions: Vec<ConditionResult>,
    pub elapsed_ms: u64,
}

/// A condition's check and how long it took (ms).
async fn timed(c: &Condition, env: &checks::Env) -> (Verdict, u64) {
    let started = std::time::Instant::now();
    let verdict = checks::run(&c.check, env).await;
    (verdict, started.elapsed().as_millis() as u64)
}

/// Runs every victory condition of `lab` against the broker in `env`.
pub async fn verify(lab: &Lab, env: &checks::Env) -> Verification {
    let started = std::time::Instant::now();
    // Checks run side by side: each works on scratch topics, and outages are staged on private doors.
    let verdicts = futures::future::join_all(lab.conditions.iter().map(|c| timed(c, env))).await;
    let results: Vec<ConditionResult> = lab
        .conditions
        .iter()
        .zip(verdicts)
        .map(|(c, (verdict, elapsed_ms))| ConditionResult {
            id: c.id.clone(),
            verdict: Verdict { what: c.statement.clone(), ..verdict },
            hint: c.hint.clone(),
            elapsed_ms,
        })
        .collect();
    Verification {
        lab: lab.number,
        title: lab.title.clone(),
        passed: results.iter().all(|r| r.verdict.passed),
        conditions: results,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}
