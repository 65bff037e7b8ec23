//! `chinook monitor`: a snapshot as JSON, and the Prometheus endpoint scraped
//! over HTTP and parsed by a parser nobody here wrote (prometheus-client's,
//! from PyPI) while a group's lag builds and then drains.

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
