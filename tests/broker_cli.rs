//! `chinook broker …` and `chinook topics …` as a student runs them: the real
//! binary, a background broker process, state files in a scratch directory.

mod common;

use std::{net::TcpListener, time::Duration};

use common::*;
use serde_json::Value;

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[test]
fn start_status_topics_stop_lifecycle() {
    let lab = Workdir::new();
    let port = lab.port.clone();
    let out = lab.run(&["broker", "start", "--port", &port, "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let started: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(started["state"]["bootstrap"], lab.brokers());
    assert_eq!(started["fresh"], true);
    assert!(lab.dir.path().join(".chinook/broker/state.json").exists());
    assert!(lab.dir.path().join(".chinook/broker/schemas/customer_events.proto").exists());

    // A second start finds it running and says so.
    let again = lab.run(&["broker", "start", "--port", &port, "--format", "json"]);
    assert_eq!(serde_json::from_slice::<Value>(&again.stdout).unwrap()["fresh"], false);

    // Commands find the managed broker of this directory without --brokers.
    let out = lab.run(&["topics", "create", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = lab.run(&["topics", "create", "--format", "json"]);
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(created.as_array().unwrap().iter().all(|t| t["outcome"] == "exists"), "idempotent: {created}");

    let out = lab.run(&["broker", "status", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["reachable"], true);
    assert_eq!(status["managed"], true);
    let partitions: Vec<(String, usize)> = status["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t["partitions"].as_array().unwrap().len()))
        .collect();
    assert_eq!(
        partitions,
        [
            ("customer_commands".into(), 1),
            ("customer_event_counts".into(), 1),
            ("customer_events".into(), 3),
            ("customer_events.dlq".into(), 1),
            ("customer_events_framed".into(), 3),
            ("customer_saga".into(), 3)
        ]
    );

    let logs = lab.ok(&["broker", "logs", "-n", "20"]);
    assert!(text(&logs.stdout).contains("broker listening on"), "{}", text(&logs.stdout));

    let out = lab.run(&["topics", "describe", "customer_events", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = lab.run(&["broker", "stop"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(TcpListener::bind(lab.brokers()).is_ok(), "the port is free after stop");
    assert!(!lab.dir.path().join(".chinook/broker/state.json").exists());

    let out = lab.run(&["broker", "status", "--brokers", &lab.brokers()]);
    assert_eq!(out.status.code(), Some(4), "status fails when nothing answers: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("chinook broker start"));
}

/// SETUP tells students to `export CHINOOK_BROKERS=localhost:PORT`; the state
/// file says 127.0.0.1:PORT. Both name the broker chinook manages here.
#[test]
fn localhost_names_the_managed_broker() {
    let lab = Workdir::new();
    lab.start(&[]);
    let localhost = format!("localhost:{}", lab.port);
    let out = lab.run_as(&localhost, &["broker", "status", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["managed"], true, "{status}");
    assert!(status["engine"].as_str().unwrap().starts_with("embedded"), "{status}");
    // A scenario that needs the managed broker (it takes it down) finds it by that name too.
    let out = lab.run_as(&localhost, &["break", "broker-down", "--count", "300", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["figures"]["lost"], 0, "{report}");
    // Another port is another broker: not the managed one.
    let elsewhere = format!("localhost:{}", free_port());
    let out = lab.run_as(&elsewhere, &["broker", "status", "--format", "json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_ne!(status["managed"], true, "{status}");
}

#[test]
fn outage_and_latency_through_the_control_endpoint() {
    let lab = Workdir::new();
    assert!(lab.run(&["broker", "start", "--port", &lab.port.clone()]).status.success());
    let out = lab.run(&["broker", "outage", "--for", "30s"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let refused = std::net::TcpStream::connect(lab.brokers());
    assert_eq!(refused.map(|_| ()).unwrap_err().kind(), std::io::ErrorKind::ConnectionRefused);
    let out = lab.run(&["broker", "outage", "--end"]);
    assert!(out.status.success());
    let out = lab.run(&["broker", "latency", "250ms"]);
    assert!(out.status.success());
    let status: Value = serde_json::from_slice(&lab.run(&["broker", "status", "--format", "json"]).stdout).unwrap();
    assert_eq!(status["reachable"], true, "back up after --end: {status}");
    assert_eq!(status["front_door"]["latency_ms"], 250);
    assert_eq!(status["front_door"]["outage_left_ms"], 0);
}

#[test]
fn a_taken_port_names_its_owner() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let lab = Workdir::new();
    let out = lab.run(&["broker", "start", "--port", &port.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("port {port} is already in use by")), "{err}");
    assert!(err.contains(&format!("pid {}", std::process::id())), "names this test process: {err}");
    assert!(err.contains("--port"), "{err}");
}

#[test]
fn an_unreachable_broker_is_one_clear_error() {
    let port = free_port();
    let lab = Workdir::new();
    let brokers = format!("127.0.0.1:{port}");
    let out = lab.run(&["topics", "list", "--brokers", &brokers]);
    assert_eq!(out.status.code(), Some(4));
    let err = text(&out.stderr);
    assert!(err.contains(&brokers) && err.contains("chinook broker start"), "{err}");
    assert!(err.lines().count() < 12, "one diagnostic, not a wall of logs:\n{err}");
}

#[test]
fn a_stale_state_file_is_cleared() {
    let lab = Workdir::new();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let dir = lab.dir.path().join(".chinook/broker");
    std::fs::create_dir_all(&dir).unwrap();
    let state = serde_json::json!({
        "pid": gone.id(), "engine": "embedded", "bootstrap": "127.0.0.1:1", "internal": "127.0.0.1:2",
        "control": "127.0.0.1:3", "started_unix_ms": 0, "log": "x", "schema_enforcement": true
    });
    std::fs::write(dir.join("state.json"), state.to_string()).unwrap();
    let out = lab.run(&["broker", "start", "--port", &lab.port.clone()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&format!("stale state file: broker pid {} is gone", gone.id())));
}

/// A stand-in `bufstream` on PATH records how chinook runs it, then fails:
/// chinook must pass its generated config and schema dir, and report the
/// death with the log tail.
#[test]
fn bufstream_engine_runs_serve_with_our_config_and_reports_a_death() {
    let lab = Workdir::new();
    let bin = lab.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("bufstream");
    std::fs::write(&script, "#!/bin/sh\necho \"$@\" > args.txt\necho 'bufstream: boom (stand-in)'\nexit 3\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = chinook()
        .current_dir(lab.dir.path())
        .env("PATH", path)
        .args(["broker", "start", "--engine", "bufstream", "--port", &lab.port.clone()])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("exited during start-up") && err.contains("boom (stand-in)"), "{err}");
    let args = std::fs::read_to_string(lab.dir.path().join("args.txt")).unwrap();
    let dir = lab.dir.path().join(".chinook/broker");
    assert_eq!(args.trim(), format!("serve --config {0}/bufstream.yaml --schema {0}/proto", dir.display()));
    assert!(dir.join("proto/events/v1/customer_events.proto").exists(), "the schemas Bufstream reads are written out");
    let config = std::fs::read_to_string(lab.dir.path().join(".chinook/broker/bufstream.yaml")).unwrap();
    assert!(config.contains(&format!("advertise_address: 127.0.0.1:{}", lab.port)), "{config}");
}
