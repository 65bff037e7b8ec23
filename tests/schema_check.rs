//! `chinook schema check` against the real `buf breaking` (npm @bufbuild/buf,
//! installed by `.ci/buf.sh`): on every schema pair in tests/schema-pairs/ and
//! every category, both must give the same verdict and the same rule ids at the
//! same places. Also: the modes, the exit codes and the compile diagnostic.

mod common;
use common::*;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use chinook::schema::{Category, rules};
use serde_json::Value;

const CATEGORIES: [(&str, &str); 3] = [("WIRE", "wire"), ("WIRE_JSON", "wire-json"), ("FILE", "file")];

fn buf() -> PathBuf {
    let path = root().join("target/clients/buf/node_modules/.bin/buf");
    assert!(
        path.exists(),
        "{} is missing: run `bash .ci/buf.sh` to install the real buf these tests compare with",
        path.display()
    );
    path
}

fn pairs() -> Vec<PathBuf> {
    let dir = root().join("tests/schema-pairs");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    assert!(cases.len() >= 20, "the corpus has {} pairs", cases.len());
    cases
}

/// One finding, as both tools report it: rule, file, line, column.
type Finding = (String, String, u64, u64);

/// `buf breaking` run in `checked` against `against`: (breaking?, findings).
fn run_buf(checked: &Path, against: &Path, category: &str) -> (bool, Vec<Finding>) {
    let config = format!(r#"{{"version":"v2","breaking":{{"use":["{category}"]}}}}"#);
    let out = Command::new(buf())
        .current_dir(checked)
        .args(["breaking", ".", "--against"])
        .arg(against)
        .args(["--error-format", "json", "--config", &config])
        .output()
        .unwrap();
    let code = out.status.code();
    assert!(
        matches!(code, Some(0) | Some(100)),
        "buf failed in {} (exit {code:?}): {}",
        checked.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let findings = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("buf printed {l:?}: {e}"));
            let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
            let n = |k: &str| v[k].as_u64().unwrap_or(0);
            (s("type"), s("path"), n("start_line"), n("start_column"))
        })
        .collect();
    (code == Some(100), findings)
}

/// `chinook schema check` in one mode: (exit code, findings).
fn run_chinook(old: &Path, new: &Path, rules: &str, mode: &str) -> (i32, Vec<Finding>) {
    let out = chinook()
        .args(["schema", "check"])
        .arg(old)
        .arg(new)
        .args(["--rules", rules, "--mode", mode, "--format", "json"])
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    assert!(code <= 1, "chinook failed on {}: {}", new.display(), String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            for key in ["rule", "file", "line", "column", "message"] {
                assert!(!f[key].is_null(), "{key} missing in {f}");
            }
            (
                f["rule"].as_str().unwrap().to_string(),
                f["file"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
                f["column"].as_u64().unwrap(),
            )
        })
        .collect();
    (code, findings)
}

/// What is compared. buf names no file for FILE_NO_DELETE (chinook names the
/// deleted one); buf's FIELD_SAME_DEFAULT column is that of `default = …`, while
/// protox only locates the value: there the column is left out.
fn comparable(f: &Finding, from_buf: bool) -> Finding {
    let (rule, file, line, column) = f.clone();
    match rule.as_str() {
        "FILE_NO_DELETE" => (rule, String::new(), 0, 0),
        "FIELD_SAME_DEFAULT" => (rule, file, line, 0),
        _ => (rule, if from_buf || !file.is_empty() { file } else { String::new() }, line, column),
    }
}

fn sorted(findings: &[Finding], from_buf: bool) -> Vec<Finding> {
    let mut v: Vec<Finding> = findings.iter().map(|f| comparable(f, from_buf)).collect();
    v.sort();
    v
}

/// Backward (NEW against OLD) and forward (OLD against NEW) on every pair and
/// category: chinook and buf agree on the verdict and on every finding.
#[test]
fn every_pair_gives_buf_s_verdict_and_rule_ids_in_both_directions() {
    let mut differences = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut breaking_pairs = 0;
    for case in pairs() {
        let (old, new) = (case.join("old"), case.join("new"));
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        for (buf_category, ours) in CATEGORIES {
            for (mode, checked, against) in [("backward", &new, &old), ("forward", &old, &new)] {
                let (breaking, theirs) = run_buf(checked, against, buf_category);
                let (code, mine) = run_chinook(&old, &new, ours, mode);
                seen.extend(mine.iter().map(|f| f.0.clone()));
                if breaking {
                    breaking_pairs += 1;
                }
                if breaking != (code == 1) {
                    differences
                        .push(format!("{name} {buf_category} {mode}: buf breaking={breaking}, chinook exit {code}"));
                }
                let (a, b) = (sorted(&theirs, true), sorted(&mine, false));
                if a != b {
                    differences.push(format!("{name} {buf_category} {mode}:\n  buf:     {a:?}\n  chinook: {b:?}"));
                }
            }
        }
    }
    assert!(differences.is_empty(), "chinook and buf disagree:\n{}", differences.join("\n"));
    assert!(breaking_pairs > 50, "the corpus is mostly breaking changes ({breaking_pairs} breaking runs)");
    // Every WIRE and WIRE_JSON rule is exercised by some pair.
    for category in [Category::Wire, Category::WireJson] {
        for rule in rules::checked(category) {
            assert!(seen.contains(rule), "no pair in tests/schema-pairs/ triggers {rule}");
        }
    }
}

fn pair(name: &str) -> (PathBuf, PathBuf) {
    let case = root().join("tests/schema-pairs").join(name);
    (case.join("old"), case.join("new"))
}

#[test]
fn a_new_field_is_compatible_backward_but_not_forward() {
    let (old, new) = pair("compatible-new-field");
    chinook()
        .args(["schema", "check"])
        .arg(&old)
        .arg(&new)
        .assert()
        .code(0)
        .stdout(predicates::str::contains("no breaking change (WIRE rules, backward"));
    // An old reader is fine with an unknown field, but OLD "deletes" field 3 when
    // checked against NEW without reserving it: forward reports it.
    let out = chinook().args(["schema", "check", "--mode", "full"]).arg(&old).arg(&new).assert().code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("[forward] shop/v1/order.proto:4:1  FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED"), "{text}");
    assert!(text.contains("1 breaking change (WIRE rules, full"), "{text}");
}

#[test]
fn a_breaking_change_exits_1_and_names_rule_file_and_line() {
    let (old, new) = pair("field-type-change");
    let out = chinook().args(["schema", "check"]).arg(&old).arg(&new).assert().code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.contains("shop/v1/order.proto:6:3  FIELD_WIRE_COMPATIBLE_TYPE  Field \"2\" with name \"qty\" on message \"Order\" changed type from \"int32\" to \"string\"."),
        "{text}"
    );
    // A single file works too.
    chinook()
        .args(["schema", "check"])
        .arg(old.join("shop/v1/order.proto"))
        .arg(new.join("shop/v1/order.proto"))
        .assert()
        .code(1)
        .stdout(predicates::str::contains("order.proto:6:3  FIELD_WIRE_COMPATIBLE_TYPE"));
}

#[test]
fn a_schema_that_does_not_compile_exits_3_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.proto"), "syntax = \"proto3\";\n\nmessage Broken {\n  string id = ;\n}\n")
        .unwrap();
    let (old, _) = pair("field-deleted");
    let out = chinook().args(["schema", "check"]).arg(&old).arg(dir.path()).assert().code(3);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("NEW does not compile: broken.proto:4:"), "{err}");
}

#[test]
fn bad_paths_exit_3_and_bad_flags_exit_2() {
    let (old, _) = pair("field-deleted");
    chinook()
        .args(["schema", "check"])
        .arg(&old)
        .arg("tests/schema-pairs/no-such-dir")
        .assert()
        .code(3)
        .stderr(predicates::str::contains("no-such-dir"));
    let empty = tempfile::tempdir().unwrap();
    chinook()
        .args(["schema", "check"])
        .arg(&old)
        .arg(empty.path())
        .assert()
        .code(3)
        .stderr(predicates::str::contains("holds no .proto file"));
    chinook().args(["schema", "check", "--rules", "package"]).arg(&old).arg(&old).assert().code(2);
    chinook().args(["schema", "check"]).arg(&old).assert().code(2);
}
