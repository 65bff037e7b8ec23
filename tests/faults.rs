//! `chinook break …` against real brokers: each scenario's reported figures.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

async fn lab_topics() {
    chinook::kafka::admin::create_topics(&connection(broker()), &chinook::labs::topic_plan(), false).await.unwrap();
}

fn run_break(args: &[&str]) -> Value {
    let out = chinook()
        .arg("break")
        .args(args)
        .args(["--format", "json", "--brokers", &broker().bootstrap])
        .timeout(Duration::from_secs(180))
        .output()
        .unwrap();
    assert!(out.status.success(), "break {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn figure(report: &Value, name: &str) -> i64 {
    report["figures"][name].as_i64().unwrap_or_else(|| panic!("no figure {name} in {report}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_values_are_rejected_except_the_empty_one() {
    lab_topics().await;
    let stored = || -> i64 {
        let out = chinook()
            .args(["topics", "describe", "customer_events", "--format", "json"])
            .args(["--brokers", &broker().bootstrap])
            .output()
            .unwrap();
        let t: Value = serde_json::from_slice(&out.stdout).unwrap();
        t["partitions"].as_array().unwrap().iter().map(|p| p["high"].as_i64().unwrap()).sum()
    };
    let before = stored();
    let r = run_break(&["malformed"]);
    assert_eq!(stored(), before, "the scenario writes to its stand-in topic, never to customer_events");
    assert_eq!(figure(&r, "sent"), 7);
    assert_eq!(figure(&r, "rejected"), 6);
    assert_eq!(figure(&r, "accepted"), 1);
    let empty =
        r["checks"].as_array().unwrap().iter().find(|c| c["what"].as_str().unwrap().starts_with("empty")).unwrap();
    assert_eq!(empty["observed"], "accepted", "an empty value is a valid protobuf message");
    assert!(r["checks"].as_array().unwrap().iter().all(|c| c["passed"] == true), "{r}");
}

/// Exit 0 means the scenario showed what it teaches. On a broker that enforces
/// nothing, `break malformed` cannot: its rows are ✘ and it exits 1.
#[test]
fn a_scenario_that_does_not_see_its_lesson_exits_1() {
    let s = Workdir::new();
    s.start(&["--no-schemas"]);
    s.ok(&["topics", "create"]);
    let out = s.run(&["break", "malformed", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed = r["checks"].as_array().unwrap().iter().filter(|c| c["passed"] == false).count();
    assert_eq!(failed, 6, "every value the broker should have rejected was accepted: {r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_enforcement_malformed_values_land_and_go_to_the_dlq() {
    let r = run_break(&["malformed", "--bypass-schema"]);
    assert_eq!(figure(&r, "accepted"), 7);
    assert_eq!(figure(&r, "dead_lettered"), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_event_is_dead_lettered_and_the_rest_processed() {
    let r = run_break(&["poison", "--count", "10", "--attempts", "3"]);
    assert_eq!(figure(&r, "handled"), 9);
    assert_eq!(figure(&r, "dead_lettered"), 1);
    assert_eq!(figure(&r, "handler_retries"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn random_keys_reorder_and_customer_keys_do_not() {
    let r = run_break(&["out-of-order", "--count", "30"]);
    assert!(figure(&r, "regressions_random_keys") > 0, "{r}");
    assert_eq!(figure(&r, "regressions_keyed"), 0);
}

#[test]
fn a_renumbered_schema_decodes_wrong_values_and_the_check_catches_it() {
    let out = chinook().args(["break", "schema-break", "--format", "json"]).output().unwrap();
    assert!(out.status.success());
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(figure(&r, "breaking_changes"), 2);
    let name = r["checks"].as_array().unwrap().iter().find(|c| c["what"].as_str().unwrap().contains("name")).unwrap();
    assert_eq!(name["observed"], "astrid@example.com", "the v1 reader shows the email as the name");
}

/// The Lab 4 sample stream counted without and with a grace period: without,
/// every out-of-order event is dropped; with 5 s, only the two later than that.
#[tokio::test(flavor = "multi_thread")]
async fn late_events_are_dropped_without_grace_and_kept_with_it() {
    let r = run_break(&["late-events", "--window", "10s", "--grace", "5s"]);
    assert_eq!(figure(&r, "sent"), 13);
    assert_eq!(figure(&r, "out_of_order"), 4);
    assert_eq!(figure(&r, "dropped_without_grace"), 4);
    assert_eq!(figure(&r, "dropped_with_grace"), 2);
    assert!(r["checks"].as_array().unwrap().iter().all(|c| c["passed"] == true), "{r}");
}

/// One event over message.max.bytes among nine: refused by the producer on
/// its only attempt, the nine others stored.
#[test]
fn an_oversized_event_is_refused_and_the_others_are_stored() {
    let r = run_break(&["oversized", "--count", "10"]);
    assert_eq!(figure(&r, "acked"), 9);
    assert_eq!(figure(&r, "failed"), 1);
    assert!(figure(&r, "oversized_bytes") > figure(&r, "limit_bytes"));
    assert!(r["checks"].as_array().unwrap().iter().all(|c| c["passed"] == true), "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_consumer_falls_behind() {
    let r = run_break(&["slow-consumer", "--rate", "100", "--for", "2s", "--handler-delay", "40ms"]);
    let (published, handled, lag) = (figure(&r, "published"), figure(&r, "handled"), figure(&r, "final_lag"));
    assert_eq!(published, 200);
    assert_eq!(lag, published - handled, "lag is exactly what was not handled");
    assert!(lag > 0);
}

#[test]
fn broker_down_five_times_loses_and_doubles_nothing() {
    let m = Workdir::new();
    m.start(&[]);
    for run in 0..5 {
        let out = chinook()
            .current_dir(m.dir.path())
            .args(["break", "broker-down", "--count", "10000", "--for", "2s", "--rate", "5000", "--format", "json"])
            .timeout(Duration::from_secs(180))
            .output()
            .unwrap();
        assert!(out.status.success(), "run {run}: {}", String::from_utf8_lossy(&out.stderr));
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(figure(&r, "acked"), 10_000, "run {run}: {r}");
        assert_eq!(figure(&r, "read_back"), 10_000, "run {run}");
        assert_eq!(figure(&r, "lost"), 0, "run {run}");
        assert_eq!(figure(&r, "duplicates"), 0, "run {run}");
        assert!(figure(&r, "went_down_after") < 10_000, "the outage came mid-publish (run {run}): {r}");
    }
}

/// `--hard`: the broker process is killed with SIGKILL mid-publish and started
/// again. Memory storage loses what it had acknowledged, and the report says
/// so in those words; the producer names what it never got acknowledged; the
/// restarted broker serves the same address.
#[test]
fn a_killed_broker_loses_acknowledged_events_and_the_report_says_so() {
    let m = Workdir::new();
    m.start(&[]);
    let pid_before: Value = serde_json::from_slice(&m.ok(&["broker", "status", "--format", "json"]).stdout).unwrap();
    let out = m.run(&[
        "break",
        "broker-down",
        "--hard",
        "--yes",
        "--count",
        "3000",
        "--after",
        "1000",
        "--for",
        "1s",
        "--rate",
        "3000",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(figure(&r, "lost") > 0, "{r}");
    assert!(figure(&r, "went_down_after") >= 1000, "{r}");
    assert_eq!(figure(&r, "duplicates"), 0, "{r}");
    let checks = r["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["passed"] == true), "{r:#}");
    assert!(checks[0]["observed"].as_str().unwrap().contains("DATA LOST"), "{r:#}");
    assert!(r["look_for"].as_str().unwrap().contains("SIGKILL"));
    // Every event is either acknowledged or named as not acknowledged.
    assert_eq!(figure(&r, "acked") + figure(&r, "failed"), 3000, "{r}");
    let after: Value = serde_json::from_slice(&m.ok(&["broker", "status", "--format", "json"]).stdout).unwrap();
    assert_eq!(after["reachable"], true);
    assert_ne!(after["pid"], pid_before["pid"], "a new broker process");
}

#[test]
fn broker_down_without_a_managed_broker_says_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = chinook().current_dir(dir.path()).args(["break", "broker-down"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(err.contains("needs a broker started by chinook") && err.contains("chinook broker start"), "{err}");
}

#[test]
fn late_responses_duplicate_a_plain_producer_but_not_an_idempotent_one() {
    let m = Workdir::new();
    m.start(&[]);
    let out = chinook()
        .current_dir(m.dir.path())
        .args(["break", "duplicates", "--count", "20", "--delay", "2s", "--format", "json"])
        .timeout(Duration::from_secs(180))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(figure(&r, "plain_duplicates") > 0, "the plain producer's retries were stored again: {r}");
    assert_eq!(figure(&r, "idempotent_stored"), 20);
    assert_eq!(figure(&r, "idempotent_duplicates"), 0);
}

/// Ctrl-C in the middle of a scenario: its scratch topics are removed.
#[test]
fn an_interrupted_scenario_removes_its_scratch_topics() {
    let b = broker();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("chinook"))
        .args(["break", "slow-consumer", "--for", "60s", "--rate", "10", "--brokers", &b.bootstrap])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let scratch = |b: &TestBroker| -> Vec<String> {
        let out = chinook().args(["topics", "list", "--format", "json", "--brokers", &b.bootstrap]).output().unwrap();
        let topics: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mine = format!("-{pid:x}-");
        topics
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["name"].as_str())
            .filter(|n| n.starts_with("chinook.break.slow") && n.contains(&mine))
            .map(String::from)
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while scratch(b).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the scenario never created its topic");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: signalling the child process this test started.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
    assert_eq!(wait_or_kill(&mut child, Duration::from_secs(120)).code(), Some(130));
    assert_eq!(scratch(b), Vec::<String>::new());
}
