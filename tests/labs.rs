//! The lab runner: manifests, `verify` against real brokers (each victory
//! condition broken, then repaired), the journal, and the walk-through in a
//! real pseudo-terminal.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// Every lab manifest loads, names only known checks, has hints and text.
#[test]
fn every_lab_manifest_is_valid() {
    let labs = chinook::labs::all().unwrap();
    assert!(!labs.is_empty());
    for lab in &labs {
        assert_eq!(chinook::labs::lint(lab), Vec::<String>::new(), "lab {}", lab.number);
        assert_eq!(lab.conditions.len(), 5, "Stream Day labs have five victory conditions");
    }
    let lab1 = chinook::labs::find(1).unwrap();
    assert!(lab1.readme.contains("Victory conditions"));
}

/// Runs `lab 1 verify --format json`: the exit code and the report.
fn verify(s: &Workdir, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["lab", "1", "verify", "--format", "json"];
    args.extend_from_slice(extra);
    let out = s.run(&args);
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), v)
}

fn condition<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["conditions"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap()
}

fn assert_fails(v: &Value, id: &str, observed_part: &str) {
    let c = condition(v, id);
    assert_eq!(c["passed"], false, "{id} should fail: {c}");
    assert!(c["observed"].as_str().unwrap().contains(observed_part), "{id}: {c}");
    assert!(!c["hint"].as_str().unwrap().is_empty());
}

#[test]
fn conditions_1_and_5_fail_without_a_broker_and_pass_with_one() {
    let s = Workdir::new();
    let (code, v) = verify(&s, &[]);
    assert_eq!(code, 1);
    assert_fails(&v, "broker", "no Kafka broker answers");
    assert_fails(&v, "routing", "no Kafka broker answers");
    s.start(&[]);
    s.ok(&["topics", "create"]);
    let (code, v) = verify(&s, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["passed"], true);
    assert!(v["elapsed_ms"].as_u64().unwrap() > 0);
}

#[test]
fn condition_2_fails_with_missing_or_wrong_topics_and_without_enforcement() {
    let s = Workdir::new();
    s.start(&[]);
    let (_, v) = verify(&s, &[]);
    assert_fails(&v, "schema", "customer_events (missing)");
    s.ok(&["topics", "create", "customer_events", "--partitions", "1"]);
    s.ok(&["topics", "create", "customer_commands", "--partitions", "1"]);
    s.ok(&["topics", "create", "customer_events.dlq", "--partitions", "1"]);
    let (_, v) = verify(&s, &[]);
    assert_fails(&v, "schema", "customer_events (1)");
    // Repair the topics, but run the broker without enforcement.
    s.ok(&["broker", "stop"]);
    s.start(&["--no-schemas"]);
    s.ok(&["topics", "create"]);
    let (code, v) = verify(&s, &[]);
    assert_eq!(code, 1);
    assert_fails(&v, "schema", "ACCEPTED: no enforcement");
    // The check wrote to its stand-in topic, never to the student's.
    let topic: Value =
        serde_json::from_slice(&s.ok(&["topics", "describe", "customer_events", "--format", "json"]).stdout).unwrap();
    let records: i64 = topic["partitions"].as_array().unwrap().iter().map(|p| p["high"].as_i64().unwrap()).sum();
    assert_eq!(records, 0, "customer_events untouched: {topic}");
    // And with enforcement: condition 2 holds.
    s.ok(&["broker", "stop"]);
    s.start(&[]);
    s.ok(&["topics", "create"]);
    let (_, v) = verify(&s, &[]);
    assert_eq!(condition(&v, "schema")["passed"], true, "{v}");
}

#[test]
fn condition_3_checks_the_students_own_group() {
    let s = Workdir::new();
    s.start(&[]);
    s.ok(&["topics", "create"]);
    s.ok(&["produce", "customer-created", "--count", "30"]);
    let (_, v) = verify(&s, &["--group", "students-own"]);
    assert_fails(&v, "parallel", "group students-own has committed nothing");
    // A group that committed one partition of three is not done: the others count as lag.
    let described = |s: &Workdir| -> Value {
        serde_json::from_slice(&s.ok(&["group", "describe", "students-own", "--format", "json"]).stdout).unwrap()
    };
    let topic =
        serde_json::from_slice::<Value>(&s.ok(&["topics", "describe", "customer_events", "--format", "json"]).stdout)
            .unwrap();
    let high = topic["partitions"][0]["high"].as_i64().unwrap();
    commit_one(&s.brokers(), "students-own", "customer_events", 0, high);
    let (_, v) = verify(&s, &["--group", "students-own"]);
    assert_fails(&v, "parallel", "group students-own committed 1 of 3 partitions, lag");
    let d = described(&s);
    assert_eq!(d["partitions"].as_array().unwrap().len(), 3, "the partitions never committed are shown: {d}");
    assert_eq!(d["partitions"][1]["committed"], Value::Null);
    s.ok(&["consume", "--group", "students-own", "--offset", "start", "--until-end", "-q"]);
    let (_, v) = verify(&s, &["--group", "students-own"]);
    assert_eq!(condition(&v, "parallel")["passed"], true, "{v}");
}

#[test]
fn condition_4_stages_its_outage_on_a_private_door() {
    let s = Workdir::new();
    // An external broker (not managed from this directory) will do: the outage is the check's own.
    let b = broker();
    let (_, v) = verify(&s, &["--brokers", &b.bootstrap]);
    assert_eq!(condition(&v, "retries")["passed"], true, "{v}");
    assert!(condition(&v, "retries")["observed"].as_str().unwrap().contains("1000 acknowledged, 0 lost"), "{v}");
    s.start(&[]);
    s.ok(&["topics", "create"]);
    let (_, v) = verify(&s, &[]);
    assert_eq!(condition(&v, "retries")["passed"], true, "{v}");
}

#[test]
fn journal_entries_are_appended_with_lab_and_step() {
    let s = Workdir::new();
    s.ok(&["journal", "add", "the restart lost my events", "--lab", "1", "--step", "5"]);
    s.ok(&["journal", "add", "dedupe on event id fixed the doubles"]);
    let journal = std::fs::read_to_string(s.dir.path().join("JOURNAL.md")).unwrap();
    assert!(journal.contains("## Template"), "created from the workshop template");
    assert!(journal.contains("· Lab 1, step 5\n\nthe restart lost my events"), "{journal}");
    let shown = String::from_utf8(s.run(&["journal"]).stdout).unwrap();
    assert!(shown.contains("the restart lost my events") && shown.contains("dedupe on event id"), "{shown}");
}

#[test]
fn without_a_terminal_the_walkthrough_prints_the_steps_and_reset_asks_for_yes() {
    let s = Workdir::new();
    let out = s.run(&["lab", "1"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("1. Start a broker") && text.contains("$ chinook topics create"), "{text}");
    let out = s.run(&["lab", "1", "reset"]);
    assert_eq!(out.status.code(), Some(2), "no prompt without a terminal");
    s.ok(&["lab", "1", "reset", "--yes"]);
    s.ok(&["lab", "1", "hint", "2"]);
    assert_eq!(s.run(&["lab", "9"]).status.code(), Some(2));
}

fn walkthrough(dir: &Path, port: &str) -> rexpect::session::PtySession {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("chinook"));
    cmd.current_dir(dir).env("NO_COLOR", "1").env("CHINOOK_BROKERS", format!("127.0.0.1:{port}")).args(["lab", "1"]);
    rexpect::session::spawn_command(cmd, Some(60_000)).unwrap()
}

/// The interactive walk-through in a real pseudo-terminal (rexpect matches
/// bytes as Latin-1, so the expected texts here are ASCII): a hint, a check
/// that passes, quitting, and resuming where the student left off.
#[test]
fn the_walkthrough_runs_in_a_terminal_and_resumes() {
    let s = Workdir::new();
    s.start(&[]);
    let mut p = walkthrough(s.dir.path(), &s.port);
    p.exp_string("Step 1/6").unwrap();
    p.exp_string("Start a broker").unwrap();
    p.exp_string("[h]int").unwrap();
    // One key each, no Enter.
    p.send("h").unwrap();
    p.flush().unwrap();
    p.exp_string("Port taken?").unwrap();
    p.send("c").unwrap();
    p.flush().unwrap();
    p.exp_string("answers (embedded").unwrap();
    p.exp_string("Step 2/6").unwrap();
    p.exp_string("Create the topics").unwrap();
    p.send("r").unwrap();
    p.flush().unwrap();
    p.exp_string("customer_events (3), customer_commands (1), customer_events.dlq (1)").unwrap();
    p.exp_string("Step 3/6").unwrap();
    p.send("q").unwrap();
    p.flush().unwrap();
    p.exp_string("resumes at step 3").unwrap();
    p.exp_eof().unwrap();

    let mut p = walkthrough(s.dir.path(), &s.port);
    p.exp_string("resuming at step 3").unwrap();
    p.exp_string("Step 3/6").unwrap();
    p.exp_string("Publish an event").unwrap();
    p.send("q").unwrap();
    p.flush().unwrap();
    p.exp_eof().unwrap();
    let listed = String::from_utf8(s.run(&["lab", "list"]).stdout).unwrap();
    assert!(listed.contains("in progress (2/6)"), "{listed}");
}
