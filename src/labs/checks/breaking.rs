//! `breaking-caught`: the student's schema check (what their CI runs) is
//! given the deployed schema and a changed one, for a compatible change and
//! for breaking ones, and must exit 0 for the first and non-zero for the
//! others.

use std::time::Duration;

use super::{Checked, Env, Judged, Role};
use crate::schema::examples::{Change, FILE};

/// How long one schema check may take (a first `go run` compiles).
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Writes the workshop schemas under `dir`, with `FILE` replaced by `edited`.
fn write_tree(dir: &std::path::Path, edited: Option<&str>) -> std::io::Result<()> {
    for (path, text) in crate::codec::PROTO_SOURCES {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().expect("a path under dir"))?;
        let text = if path == FILE { edited.unwrap_or(text) } else { text };
        std::fs::write(file, text)?;
    }
    Ok(())
}

pub async fn check(env: &Env, id: &str) -> Checked {
    let expected = Change::ALL
        .iter()
        .map(|c| format!("{}: {}", c.describe(), if c.breaking() { "exit non-zero" } else { "exit 0" }))
        .collect::<Vec<_>>()
        .join("; ");
    let work = env.runs.join(id).join("schemas");
    let old = work.join("old");
    write_tree(&old, None)?;
    let mut findings = Vec::new();
    let mut passed = true;
    let mut programs = Vec::new();
    for (n, change) in Change::ALL.into_iter().enumerate() {
        let new = work.join(format!("new-{n}"));
        write_tree(&new, Some(&change.apply()))?;
        let mut program = env.start(
            id,
            Role::SchemaCheck,
            n + 1,
            &[("CHINOOK_OLD_PROTO", old.display().to_string()), ("CHINOOK_NEW_PROTO", new.display().to_string())],
        )?;
        let status = program.wait(RUN_LIMIT).await;
        program.terminate(Duration::from_secs(5)).await;
        let right = match status {
            Some(s) if change.breaking() => !s.success(),
            Some(s) => s.success(),
            None => false,
        };
        passed &= right;
        let said = match status {
            None => "still running after 120 s".to_string(),
            Some(s) => match s.code() {
                Some(c) => format!("exit {c}"),
                None => format!("ended by {s}"),
            },
        };
        findings.push(format!("{}: {said} {}", change.describe(), if right { "✔" } else { "✘" }));
        programs.push(program);
    }
    Ok(Judged::new(passed, expected, findings.join("; ")).with_output(&programs))
}
