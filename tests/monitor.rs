//! `chinook monitor`: a snapshot as JSON, and the Prometheus endpoint scraped
//! over HTTP and parsed by a parser nobody here wrote (prometheus-client's,
//! from PyPI) while a group's lag builds and then drains; Burrow-style
//! statuses as commits stop, fall behind, catch up and stall; batches the
//! broker refused; and the live dashboard in a real pseudo-terminal.

mod common;

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use chinook::kafka::producer::{self, OutRecord, ProduceOptions};
use common::*;

/// GET /metrics, retried until the server answers (it starts in the background).
fn scrape(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            assert!(head.to_lowercase().contains("content-type: text/plain; version=0.0.4"), "{head}");
            return body.to_string();
        }
        assert!(Instant::now() < deadline, "the metrics endpoint never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The samples, as prometheus-client's parser reads them: name{labels} → value.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let python = root().join("target/student-venv/bin/python");
    assert!(python.exists(), "run `bash .ci/students.sh` first");
    let script = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = {}\n\
        for family in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in family.samples:\n\
        \x20       labels = ','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))\n\
        \x20       out[f'{s.name}{{{labels}}}'] = s.value\n\
        print(json.dumps(out))";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the parser refused the metrics: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_metrics_show_lag_building_and_draining() {
    let b = broker();
    let topic = unique("monitored");
    create_topic(b, &topic, 3).await;
    let records: Vec<OutRecord> = (0..300)
        .map(|i| OutRecord { partition: Some(i % 3), ..OutRecord::event(&topic, &chinook::events::created(i as i64)) })
        .collect();
    producer::produce(&connection(b), &ProduceOptions::default(), records, |_| {}).await.unwrap();
    let group = unique("billing");
    commit_one(&b.bootstrap, &group, &topic, 0, 40);
    commit_one(&b.bootstrap, &group, &topic, 1, 100);

    let port = free_port();
    let mut monitor = Command::new(assert_cmd::cargo::cargo_bin("chinook"))
        .args(["monitor", "--prometheus", &format!("127.0.0.1:{port}"), "--brokers", &b.bootstrap])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let m = parse(&scrape(port));
    let lag = |p: i32| m[&format!("kafka_consumergroup_group_lag{{group={group},partition={p},topic={topic}}}")];
    assert_eq!((lag(0), lag(1)), (60.0, 0.0));
    assert_eq!(m[&format!("kafka_partition_latest_offset{{partition=0,topic={topic}}}")], 100.0);
    assert_eq!(m[&format!("kafka_partition_earliest_offset{{partition=2,topic={topic}}}")], 0.0);
    let max = m[&format!("kafka_consumergroup_group_max_lag{{group={group}}}")];
    let sum = m[&format!("kafka_consumergroup_group_sum_lag{{group={group}}}")];
    assert!(max >= 60.0 && sum >= 60.0, "max {max}, sum {sum}");
    assert_eq!(m["chinook_monitor_scrapes_total{}"], 1.0);

    // The group catches up: its lag drains to zero.
    for p in 0..3 {
        commit_one(&b.bootstrap, &group, &topic, p, 100);
    }
    let m = parse(&scrape(port));
    assert_eq!(m[&format!("kafka_consumergroup_group_sum_lag{{group={group}}}")], 0.0);
    assert_eq!(m["chinook_monitor_scrapes_total{}"], 2.0);

    unsafe { libc::kill(monitor.id() as i32, libc::SIGINT) };
    assert_eq!(wait_or_kill(&mut monitor, Duration::from_secs(30)).code(), Some(130));

    let once = chinook().args(["monitor", "--once", "--format", "json", "--brokers", &b.bootstrap]).output().unwrap();
    assert!(once.status.success());
    let snapshot: serde_json::Value = serde_json::from_slice(&once.stdout).unwrap();
    let g = snapshot["groups"].as_array().unwrap().iter().find(|g| g["group"] == group.as_str()).unwrap();
    assert_eq!(g["total_lag"], 0);
}

/// Starts `chinook monitor --prometheus` on a free port; returns it and the port.
fn serve_metrics(brokers: &str, window: &str) -> (std::process::Child, u16) {
    let port = free_port();
    let child = Command::new(assert_cmd::cargo::cargo_bin("chinook"))
        .args(["monitor", "--prometheus", &format!("127.0.0.1:{port}"), "--window", window, "--brokers", brokers])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, port)
}

/// The status a scrape gives `group`'s partition 0 of `topic`, and the group's:
/// the one of each family whose sample is 1 (labels sort by name in `parse`).
fn statuses(m: &BTreeMap<String, f64>, group: &str, topic: &str) -> (String, String) {
    let one = |key: &dyn Fn(&str) -> String| -> String {
        let on: Vec<&str> = ["OK", "WARN", "STALL", "STOP", "REWIND", "ERR"]
            .into_iter()
            .filter(|st| m.get(&key(st)) == Some(&1.0))
            .collect();
        assert_eq!(on.len(), 1, "exactly one status is 1: {on:?}");
        on[0].to_string()
    };
    (
        one(&|st| {
            format!("chinook_consumergroup_partition_status{{group={group},partition=0,status={st},topic={topic}}}")
        }),
        one(&|st| format!("chinook_consumergroup_status{{group={group},status={st}}}")),
    )
}

async fn publish(b: &TestBroker, topic: &str, from: i64, count: i64) {
    let records: Vec<OutRecord> =
        (from..from + count).map(|i| OutRecord::event(topic, &chinook::events::created(i))).collect();
    producer::produce(&connection(b), &ProduceOptions::default(), records, |_| {}).await.unwrap();
}

/// Commits that stop (nobody left: STOP), fall behind (WARN), catch up (OK),
/// and a live member stuck in its handler (STALL), each seen by scrapes.
#[tokio::test(flavor = "multi_thread")]
async fn statuses_follow_burrows_rules_from_scrape_to_scrape() {
    let b = broker();
    let topic = unique("judged");
    create_topic(b, &topic, 1).await;
    publish(b, &topic, 0, 100).await;
    let group = unique("reports");
    commit_one(&b.bootstrap, &group, &topic, 0, 40);
    let (mut monitor, port) = serve_metrics(&b.bootstrap, "3");

    let m = parse(&scrape(port));
    assert_eq!(statuses(&m, &group, &topic), ("OK".into(), "OK".into()), "one sample shows no trend");
    assert_eq!(m[&format!("kafka_consumergroup_group_offset{{group={group},partition=0,topic={topic}}}")], 40.0);
    // Nothing committed since, lag 60, no member: stopped.
    let m = parse(&scrape(port));
    assert_eq!(statuses(&m, &group, &topic), ("STOP".into(), "ERR".into()));
    // Committing again, but records arrive faster: falling behind.
    publish(b, &topic, 100, 50).await;
    commit_one(&b.bootstrap, &group, &topic, 0, 60);
    let m = parse(&scrape(port));
    assert_eq!(statuses(&m, &group, &topic), ("WARN".into(), "WARN".into()));
    // Caught up.
    commit_one(&b.bootstrap, &group, &topic, 0, 150);
    let m = parse(&scrape(port));
    assert_eq!(statuses(&m, &group, &topic), ("OK".into(), "OK".into()));

    // A member that is alive but stuck in its handler: its offset does not move.
    let stuck = unique("stuck");
    commit_one(&b.bootstrap, &stuck, &topic, 0, 10);
    let mut consumer = Command::new(assert_cmd::cargo::cargo_bin("chinook"))
        .args(["consume", "--topic", &topic, "--group", &stuck, "--handler-delay", "10m", "--follow"])
        .args(["--brokers", &b.bootstrap, "--format", "jsonl"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let conn = connection(b);
    let deadline = Instant::now() + Duration::from_secs(60);
    while chinook::kafka::groups::describe(&conn, &stuck).await.unwrap().members.is_empty() {
        assert!(Instant::now() < deadline, "the stuck consumer never joined its group");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    parse(&scrape(port));
    let m = parse(&scrape(port));
    assert_eq!(statuses(&m, &stuck, &topic), ("STALL".into(), "ERR".into()));
    consumer.kill().unwrap();
    consumer.wait().unwrap();
    unsafe { libc::kill(monitor.id() as i32, libc::SIGINT) };
    assert_eq!(wait_or_kill(&mut monitor, Duration::from_secs(30)).code(), Some(130));
}

/// Values the broker refuses are counted by its front door, and the monitor
/// reports them (for a broker chinook started: it asks its control endpoint).
#[test]
fn batches_the_broker_refused_are_counted() {
    let s = Workdir::new();
    s.start(&[]);
    s.ok(&["topics", "create"]);
    let before: serde_json::Value =
        serde_json::from_slice(&s.ok(&["monitor", "--once", "--format", "json"]).stdout).unwrap();
    assert_eq!(before["rejected_batches"], 0);
    s.ok(&["break", "malformed", "--format", "json"]);
    let after: serde_json::Value =
        serde_json::from_slice(&s.ok(&["monitor", "--once", "--format", "json"]).stdout).unwrap();
    // `break malformed` sends six values the schema refuses, one batch each.
    assert_eq!(after["rejected_batches"], 6, "{after}");
    let status = String::from_utf8(s.ok(&["broker", "status"]).stdout).unwrap();
    assert!(status.contains("6 produce batch(es) refused as INVALID_RECORD"), "{status}");
}

/// The live dashboard in a real terminal: it draws the group with its status
/// and lag trend, redraws, and `q` quits with exit 0.
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_runs_in_a_terminal_and_q_quits() {
    let b = broker();
    let topic = unique("watched");
    create_topic(b, &topic, 1).await;
    publish(b, &topic, 0, 30).await;
    let group = unique("dash");
    commit_one(&b.bootstrap, &group, &topic, 0, 10);
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("chinook"));
    cmd.env("NO_COLOR", "1").args(["monitor", "--interval", "200ms", "--window", "3", "--brokers", &b.bootstrap]);
    let mut p = rexpect::session::spawn_command(cmd, Some(60_000)).unwrap();
    p.exp_string("q quits").unwrap();
    p.exp_string(&group).unwrap();
    p.exp_string("lag trend").unwrap();
    // Nothing commits and nobody is in the group: from the second frame on it is stopped,
    // and the window fills up to its 3 samples as frames are redrawn.
    p.exp_string("STOP").unwrap();
    p.exp_string("3 sample(s)").unwrap();
    p.send("q").unwrap();
    p.flush().unwrap();
    p.exp_eof().unwrap();
    match p.process.wait().unwrap() {
        rexpect::process::wait::WaitStatus::Exited(_, code) => assert_eq!(code, 0),
        other => panic!("the dashboard ended with {other:?}"),
    }
}
