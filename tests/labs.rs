//! The lab runner: manifests, `verify` against real brokers (each victory
//! condition broken, then repaired), the journal, and the walk-through in a
//! real pseudo-terminal.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// Every lab manifest loads and lints clean; the labs' topics are the plan.
#[test]
fn every_lab_manifest_is_valid() {
    let labs = chinook::labs::all().unwrap();
    assert!(!labs.is_empty());
    for lab in &labs {
        assert_eq!(chinook::labs::lint::manifest(lab), Vec::<String>::new(), "lab {}", lab.number);
        assert!(lab.conditions.len() >= 3, "lab {}: a lab has victory conditions to judge", lab.number);
    }
    let lab1 = chinook::labs::find(1).unwrap();
    assert!(lab1.readme.contains("Victory conditions"));
    assert_eq!(lab1.conditions.len(), 5, "Lab 1 judges the workshop's five victory conditions");
    let plan: Vec<String> = chinook::labs::topic_plan().into_iter().map(|t| t.name).collect();
    assert_eq!(
        plan,
        ["customer_events", "customer_commands", "customer_events.dlq", "customer_saga", "customer_event_counts"]
    );
    assert!(lab1.steps.iter().filter(|s| s.journal).count() >= 2, "the deliberate failures offer the journal");
}

/// A manifest that names an unknown check kind does not parse; one whose
/// checks name an undeclared topic, or run a program without a contract or a
/// reference, is caught by the lint.
#[test]
fn the_lint_catches_what_a_lab_author_gets_wrong() {
    let base = std::fs::read_to_string(root().join("labs/01-setup-basics/lab.toml")).unwrap();
    let unknown = base.replacen("kind = \"group-parallel\"", "kind = \"group-paralel\"", 1);
    let err = chinook::labs::parse("01-x", &unknown, "text").unwrap_err().to_string();
    assert!(err.contains("group-paralel"), "{err}");
    let undeclared = base.replacen("topic = \"customer_events\", members", "topic = \"orders\", members", 1);
    let lab = chinook::labs::parse("01-x", &undeclared, "text").unwrap();
    let problems = chinook::labs::lint::manifest(&lab);
    assert!(problems.iter().any(|p| p.contains("checks topic orders")), "{problems:?}");
    let start = base.find("\n[reference]\n").unwrap();
    let end = base[start..].find("[[step]]").unwrap() + start;
    let no_reference = format!("{}{}", &base[..start], &base[end..]);
    let lab = chinook::labs::parse("01-x", &no_reference, "").unwrap();
    let problems = chinook::labs::lint::manifest(&lab);
    assert!(problems.iter().any(|p| p.contains("no model solution for it")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("README.md is empty")), "{problems:?}");
}

/// Runs `lab 1 verify --format json`: the exit code and the report.
fn verify(s: &Workdir, extra: &[&str]) -> (i32, Value) {
    verify_lab(s, "1", extra)
}

/// Runs `lab N verify --format json`: the exit code and the report.
fn verify_lab(s: &Workdir, lab: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["lab", lab, "verify", "--format", "json"];
    args.extend_from_slice(extra);
    let out = s.run(&args);
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), v)
}

fn condition<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["conditions"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap()
}

fn status(v: &Value, id: &str) -> String {
    condition(v, id)["status"].as_str().unwrap().to_string()
}

/// The ids of the conditions that did not pass.
fn not_passed(v: &Value) -> Vec<String> {
    v["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "passed")
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

fn assert_fails(v: &Value, id: &str, observed_part: &str) {
    let c = condition(v, id);
    assert_eq!(c["status"], "failed", "{id} should fail: {c}");
    assert!(c["observed"].as_str().unwrap().contains(observed_part), "{id}: {c}");
    assert!(!c["hint"].as_str().unwrap().is_empty());
}

/// With nothing configured, only the set-up is judged: every condition that
/// needs a program is not attempted and verify exits 1. The reference
/// solution passes all five, is labelled as such and does not earn the lab.
#[test]
fn nothing_configured_attempts_nothing_and_the_reference_passes() {
    let s = Workdir::new();
    let (code, v) = verify(&s, &["--reference"]);
    assert_eq!(code, 1);
    assert_fails(&v, "broker", "no Kafka broker answers");
    s.start(&[]);
    s.ok(&["topics", "create"]);
    let (code, v) = verify(&s, &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(status(&v, "broker"), "passed");
    for id in ["schema", "parallel", "retries", "routing"] {
        assert_eq!(status(&v, id), "not_attempted", "{v}");
        assert!(condition(&v, id)["hint"].as_str().unwrap().contains("chinook lab init"), "{v}");
    }
    let (code, v) = verify(&s, &["--reference"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["programs"], "reference");
    assert!(v["conditions"].as_array().unwrap().iter().all(|c| c["elapsed_ms"].is_u64()));
    let listed = String::from_utf8(s.ok(&["lab", "list"]).stdout).unwrap();
    assert!(!listed.contains("done"), "the reference does not earn the lab: {listed}");
    // The lint, live: the same two facts for every lab.
    s.ok(&["lab", "lint", "--live"]);
}

#[test]
fn condition_2_fails_with_missing_or_wrong_topics_and_without_enforcement() {
    let s = Workdir::new();
    s.start(&[]);
    let (_, v) = verify(&s, &["--reference"]);
    assert_fails(&v, "schema", "customer_events (missing)");
    s.ok(&["topics", "create", "customer_events", "--partitions", "1"]);
    s.ok(&["topics", "create", "customer_commands", "--partitions", "1"]);
    s.ok(&["topics", "create", "customer_events.dlq", "--partitions", "1"]);
    let (_, v) = verify(&s, &["--reference"]);
    assert_fails(&v, "schema", "customer_events (1)");
    // Repair the topics, but run the broker without enforcement.
    s.ok(&["broker", "stop"]);
    s.start(&["--no-schemas"]);
    s.ok(&["topics", "create"]);
    let (code, v) = verify(&s, &["--reference"]);
    assert_eq!(code, 1);
    assert_fails(&v, "schema", "ACCEPTED: no schema enforcement");
    // The check wrote to scratch topics, never to the student's.
    let topic: Value =
        serde_json::from_slice(&s.ok(&["topics", "describe", "customer_events", "--format", "json"]).stdout).unwrap();
    let records: i64 = topic["partitions"].as_array().unwrap().iter().map(|p| p["high"].as_i64().unwrap()).sum();
    assert_eq!(records, 0, "customer_events untouched: {topic}");
}

/// The Python student programs in tests/students (confluent-kafka, nothing
/// of chinook's), run as `sh -c` commands with `bug` switched on.
fn student(role: &str, bug: &str) -> String {
    let python = root().join("target/student-venv/bin/python");
    assert!(python.exists(), "{} is missing: run `bash .ci/students.sh` first", python.display());
    format!("STUDENT_BUG={bug} {} {}", python.display(), root().join(format!("tests/students/{role}.py")).display())
}

/// Verifies lab `lab` against the Python student programs, each `(role, bug)`
/// (an empty bug: correct), on a fresh broker with the lab's topics.
fn verify_programs(lab: &str, programs: &[(&str, &str)]) -> (Workdir, Value) {
    let s = Workdir::new();
    s.start(&[]);
    s.ok(&["topics", "create"]);
    let flags: Vec<(String, String)> =
        programs.iter().map(|(role, bug)| (format!("--{role}"), student(role, bug))).collect();
    let args: Vec<&str> = flags.iter().flat_map(|(flag, command)| [flag.as_str(), command.as_str()]).collect();
    let (_, v) = verify_lab(&s, lab, &args);
    assert_eq!(v["programs"], "student");
    (s, v)
}

/// Lab 1 with the producer's and the consumer's bugs.
fn verify_students(producer_bug: &str, consumer_bug: &str) -> (Workdir, Value) {
    verify_programs("1", &[("producer", producer_bug), ("consumer", consumer_bug)])
}

#[test]
fn correct_student_programs_pass_every_condition_and_earn_the_lab() {
    let (s, v) = verify_students("", "");
    assert_eq!(not_passed(&v), Vec::<String>::new(), "{v:#}");
    let listed = String::from_utf8(s.ok(&["lab", "list"]).stdout).unwrap();
    assert!(listed.contains("done"), "{listed}");
}

#[test]
fn a_producer_without_retries_fails_only_the_outage() {
    let (s, v) = verify_students("no-retries", "");
    assert_eq!(not_passed(&v), ["retries"], "{v:#}");
    let c = condition(&v, "retries");
    assert!(c["hint"].as_str().unwrap().contains("idempotence"), "{c}");
    // Its output is kept, and its last lines come with the verdict.
    assert!(!c["output_tail"].as_str().unwrap().is_empty(), "{c}");
    let log = c["logs"][0].as_str().unwrap();
    assert!(std::path::Path::new(log).starts_with(s.dir.path().join(".chinook/runs")), "{log}");
    assert!(std::fs::metadata(log).unwrap().len() > 0);
}

#[test]
fn a_producer_that_does_not_key_by_aggregate_id_fails_only_the_schema_condition() {
    let (_s, v) = verify_students("no-key", "");
    assert_eq!(not_passed(&v), ["schema"], "{v:#}");
    assert_fails(&v, "schema", "key is not the aggregate id");
}

#[test]
fn a_consumer_that_never_commits_fails_the_conditions_judged_by_commits() {
    let (_s, v) = verify_students("", "never-commit");
    assert_eq!(not_passed(&v), ["parallel", "routing"], "{v:#}");
    assert_fails(&v, "parallel", "0 of 3 partitions committed");
}

#[test]
fn a_consumer_that_crashes_on_an_unknown_type_fails_only_routing() {
    let (_s, v) = verify_students("", "crash-on-unknown");
    assert_eq!(not_passed(&v), ["routing"], "{v:#}");
    assert_fails(&v, "routing", "crashed");
}

#[test]
fn a_consumer_that_never_dead_letters_fails_only_routing() {
    let (_s, v) = verify_students("", "no-dlq");
    assert_eq!(not_passed(&v), ["routing"], "{v:#}");
    assert_fails(&v, "routing", "NOT the poison event");
}

/// Lab 2 with the projector's and the orchestrator's bugs.
fn verify_lab2(projector_bug: &str, orchestrator_bug: &str) -> (Workdir, Value) {
    verify_programs("2", &[("projector", projector_bug), ("orchestrator", orchestrator_bug)])
}

#[test]
fn lab2_correct_student_programs_pass_every_condition() {
    let (s, v) = verify_lab2("", "");
    assert_eq!(not_passed(&v), Vec::<String>::new(), "{v:#}");
    let listed = String::from_utf8(s.ok(&["lab", "list"]).stdout).unwrap();
    assert!(listed.lines().any(|l| l.contains("Event sourcing") && l.contains("done")), "{listed}");
}

/// Two mistakes in two programs, each judged by its own condition only: a
/// projector that keeps deleted customers, an orchestrator that sets the
/// correlation id as causation id.
#[test]
fn lab2_a_projector_ignoring_deletes_and_an_orchestrator_without_causation_fail_their_conditions() {
    let (_s, v) = verify_lab2("ignore-deletes", "no-causation");
    assert_eq!(not_passed(&v), ["projection", "ids"], "{v:#}");
    assert_fails(&v, "projection", "extra [7]");
    assert_fails(&v, "ids", "is not the id of the message it answers");
}

#[test]
fn lab2_an_orchestrator_that_does_not_compensate_fails_only_compensation() {
    let (_s, v) = verify_lab2("", "no-compensation");
    assert_eq!(not_passed(&v), ["compensation"], "{v:#}");
    assert_fails(&v, "compensation", "0 deleted");
}

#[test]
fn lab2_an_orchestrator_that_restarts_redelivered_sagas_fails_only_exactly_once() {
    let (_s, v) = verify_lab2("", "no-dedupe");
    assert_eq!(not_passed(&v), ["exactly-once"], "{v:#}");
    assert_fails(&v, "exactly-once", "happened twice");
}

/// Lab 4 with the aggregator's and the consumer's bugs.
fn verify_lab4(aggregator_bug: &str, consumer_bug: &str) -> (Workdir, Value) {
    verify_programs("4", &[("aggregator", aggregator_bug), ("consumer", consumer_bug)])
}

#[test]
fn lab4_correct_student_programs_pass_every_condition() {
    let (s, v) = verify_lab4("", "");
    assert_eq!(not_passed(&v), Vec::<String>::new(), "{v:#}");
    assert!(condition(&v, "windows")["observed"].as_str().unwrap().contains("9 of 9 right"), "{v:#}");
    let listed = String::from_utf8(s.ok(&["lab", "list"]).stdout).unwrap();
    assert!(listed.lines().any(|l| l.contains("Stream processing") && l.contains("done")), "{listed}");
}

/// An aggregator that ignores the grace period loses the records that were
/// late but within it; a consumer whose error counter never moves fails the
/// metrics condition. Each fails its own condition only.
#[test]
fn lab4_an_aggregator_without_grace_and_a_consumer_without_an_error_metric_fail_their_conditions() {
    let (_s, v) = verify_lab4("no-grace", "no-error-metric");
    assert_eq!(not_passed(&v), ["windows", "metrics"], "{v:#}");
    assert_fails(
        &v,
        "windows",
        "CUSTOMER_EVENT_TYPE_CONTACT_UPDATED [2026-01-01T00:00:00.000Z, 2026-01-01T00:00:10.000Z) missing",
    );
    assert_fails(&v, "metrics", "*processing_errors_total 0 → 0 → 0");
}

/// An aggregator that publishes every change as final, and a consumer that
/// never commits (its lag never drains; its metrics still move).
#[test]
fn lab4_an_aggregator_that_emits_early_and_a_consumer_that_never_commits_fail_their_conditions() {
    let (_s, v) = verify_lab4("emit-early", "never-commit");
    assert_eq!(not_passed(&v), ["windows", "lag"], "{v:#}");
    assert_fails(&v, "windows", "published more than once");
    assert_fails(&v, "lag", "nothing committed");
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
    // chinook.toml from flags (no prompt without a terminal), and the contract that names them.
    s.ok(&["lab", "init", "--producer", "./my-producer", "--consumer", "go run ./cmd/consumer"]);
    let toml = std::fs::read_to_string(s.dir.path().join("chinook.toml")).unwrap();
    assert!(toml.contains("producer = \"./my-producer\""), "{toml}");
    let contract: Value = serde_json::from_slice(&s.ok(&["lab", "1", "contract", "--format", "json"]).stdout).unwrap();
    assert_eq!(contract["configured"]["consumer"], "go run ./cmd/consumer");
    let names: Vec<&str> =
        contract["variables"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["CHINOOK_BROKERS", "CHINOOK_TOPIC", "CHINOOK_GROUP", "CHINOOK_COUNT", "CHINOOK_DLQ_TOPIC"]);
    let text = String::from_utf8(s.ok(&["lab", "1", "contract"]).stdout).unwrap();
    assert!(text.contains("SIGTERM") && text.contains("`./my-producer`"), "{text}");
    s.ok(&["lab", "lint"]);
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
    p.exp_string("answers: embedded").unwrap();
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

    // With the student's producer configured, [c] runs it and judges what it wrote.
    s.ok(&["lab", "init", "--producer", &student("producer", "")]);
    let mut p = walkthrough(s.dir.path(), &s.port);
    p.exp_string("resuming at step 3").unwrap();
    p.exp_string("Step 3/6").unwrap();
    p.exp_string("Publish events").unwrap();
    p.send("c").unwrap();
    p.flush().unwrap();
    p.exp_string("your producer #1: exit 0 by itself; 20 record(s), all as expected").unwrap();
    p.exp_string("Step 4/6").unwrap();
    p.send("q").unwrap();
    p.flush().unwrap();
    p.exp_eof().unwrap();
    let listed = String::from_utf8(s.run(&["lab", "list"]).stdout).unwrap();
    assert!(listed.contains("in progress (3/6)"), "{listed}");
}

/// Lab 3: chinook's own commands pass every condition; a schema check that
/// always says yes (`true`) passes the compatible change and misses both
/// breaking ones; a producer that publishes nothing fails the tuned and the
/// registry conditions.
#[test]
fn lab3_the_reference_passes_and_careless_programs_fail_their_conditions() {
    let s = Workdir::new();
    s.start(&[]);
    s.ok(&["topics", "create"]);
    let (code, v) = verify_lab(&s, "3", &["--reference"]);
    assert_eq!(code, 0, "{v:#}");
    assert!(condition(&v, "breaking")["observed"].as_str().unwrap().contains("int64 to string: exit 1 ✔"), "{v:#}");
    let (code, v) = verify_lab(&s, "3", &["--schema-check", "true", "--producer", "true", "--consumer", "true"]);
    assert_eq!(code, 1);
    assert_fails(&v, "breaking", "version changed from int64 to string: exit 0 ✘");
    assert_fails(&v, "tuned", "0 record(s) stored");
    assert_fails(&v, "registry", "0 framed record(s) stored");
}

/// Lab 3 with the Python producer and consumer and the buf-based schema
/// check (tests/students/schema_check.sh), each with its bug (empty: correct).
fn verify_lab3(producer_bug: &str, consumer_bug: &str, check_bug: &str) -> (Workdir, Value) {
    let s = Workdir::new();
    s.start(&[]);
    s.ok(&["topics", "create"]);
    let buf = root().join("target/clients/buf/node_modules/.bin/buf");
    assert!(buf.exists(), "{} is missing: run `bash .ci/buf.sh` first", buf.display());
    let check =
        format!("STUDENT_BUG={check_bug} BUF={} {}", buf.display(), root().join("tests/students/schema_check.sh").display());
    let (producer, consumer) = (student("producer", producer_bug), student("consumer", consumer_bug));
    let (_, v) = verify_lab(&s, "3", &["--producer", &producer, "--consumer", &consumer, "--schema-check", &check]);
    assert_eq!(v["programs"], "student");
    (s, v)
}

#[test]
fn lab3_correct_student_programs_pass_every_condition() {
    let (s, v) = verify_lab3("", "", "");
    assert_eq!(not_passed(&v), Vec::<String>::new(), "{v:#}");
    let listed = String::from_utf8(s.ok(&["lab", "list"]).stdout).unwrap();
    assert!(listed.lines().any(|l| l.contains("Serialization") && l.contains("done")), "{listed}");
}

/// A producer whose tuned run is its default one, a consumer that accepts
/// only the first schema id it sees, and a schema check run the wrong way
/// round: each fails its own condition, and only that one.
#[test]
fn lab3_an_untuned_producer_a_pinned_consumer_and_a_backwards_check_fail_their_conditions() {
    let (_, v) = verify_lab3("untuned", "pinned-schema", "backwards");
    assert_fails(&v, "tuned", "tuned: +0 % bytes");
    assert_fails(&v, "registry", "dead-lettered");
    assert_fails(&v, "breaking", "causation_id deleted without reserving it: exit 0 ✘");
}

/// A producer that ignores the registry sends bare values, which the framed
/// topic refuses: the registry condition fails on the producer.
#[test]
fn lab3_a_producer_that_ignores_the_registry_fails_the_registry_condition() {
    let (_, v) = verify_lab3("no-registry", "", "");
    assert_fails(&v, "registry", "0 framed record(s) stored");
    assert_eq!(status(&v, "tuned"), "passed", "{v:#}");
    assert_eq!(status(&v, "breaking"), "passed", "{v:#}");
}
