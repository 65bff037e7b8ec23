//! `chinook lab lint`, this project's `dev check`: every manifest is
//! complete and consistent, and — against a live broker — the reference
//! solution passes every condition while nothing configured attempts none
//! of those that judge a program.

use std::collections::BTreeSet;

use super::{Lab, Status, checks, programs::Programs};
use crate::codec::Schemas;

/// What is wrong with `lab`'s manifest, one line each.
pub fn manifest(lab: &Lab) -> Vec<String> {
    let mut problems = Vec::new();
    let mut say = |p: String| problems.push(format!("{}: {p}", lab.dir));
    if lab.readme.trim().is_empty() {
        say("README.md is empty".into());
    }
    if !lab.dir.starts_with(&format!("{:02}-", lab.number)) {
        say(format!("directory does not start with the lab number {:02}", lab.number));
    }
    let schemas = Schemas::builtin();
    for t in &lab.topics {
        if t.partitions < 1 {
            say(format!("topic {} has {} partitions", t.name, t.partitions));
        }
        if let Some(ty) = &t.value_type
            && schemas.message(ty).is_err()
        {
            say(format!("topic {} names schema {ty}, which is not in proto/", t.name));
        }
    }
    let checked = lab
        .steps
        .iter()
        .map(|s| (&s.title, &s.check, &s.hint))
        .chain(lab.conditions.iter().map(|c| (&c.statement, &c.check, &c.hint)));
    for (what, check, hint) in checked {
        if let Some(topic) = check.topic()
            && lab.topic(topic).is_none()
        {
            say(format!("`{what}` checks topic {topic}, which the lab does not declare ([[topic]])"));
        }
        if hint.trim().is_empty() {
            say(format!("`{what}` has no hint"));
        }
    }
    for role in lab.roles() {
        if lab.contract.get(&role).is_none_or(|c| c.trim().is_empty()) {
            say(format!("checks run the student's {} but [contract] does not say what it must do", role.name()));
        }
        if !lab.reference.contains_key(&role) {
            say(format!("checks run the student's {} but [reference] has no model solution for it", role.name()));
        }
    }
    let mut ids = BTreeSet::new();
    for c in &lab.conditions {
        if !ids.insert(&c.id) {
            say(format!("condition id {} is used twice", c.id));
        }
    }
    for s in &lab.steps {
        if !s.run.starts_with("chinook ") {
            say(format!("step `{}` does not run a chinook command", s.title));
        }
    }
    problems
}

/// Against the broker in `env`: the reference passes every condition, and
/// with nothing configured every condition that judges a program is not
/// attempted (so none of them can pass by itself).
pub async fn live(lab: &Lab, env: &mut checks::Env) -> Vec<String> {
    let mut problems = Vec::new();
    env.programs = Programs::reference(lab);
    for c in super::verify(lab, env).await.conditions.iter().filter(|c| c.status != Status::Passed) {
        problems
            .push(format!("{}: the reference solution fails `{}`: {}", lab.dir, c.verdict.what, c.verdict.observed));
    }
    env.programs = Programs::none();
    let unconfigured = super::verify(lab, env).await;
    for (c, r) in lab.conditions.iter().zip(&unconfigured.conditions) {
        if c.check.needs().is_some() && r.status != Status::NotAttempted {
            problems.push(format!("{}: with no program configured `{}` was {:?}", lab.dir, c.statement, r.status));
        }
    }
    problems
}
