//! Consumers killed with SIGKILL mid-stream and restarted in the same group:
//! every event is processed at least once, and what is processed again is
//! bounded by what the group had not committed when the consumer died; with
//! `--dedupe`, every event is handled exactly once.

mod common;

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use chinook::kafka::producer::{self, OutRecord, ProduceOptions};
use common::*;

const EVENTS: usize = 3_000;

async fn topic_with_events() -> String {
    let topic = unique("crash");
    create_topic(broker(), &topic, 3).await;
    let records: Vec<OutRecord> =
        (0..EVENTS as i64).map(|i| OutRecord::event(&topic, &chinook::events::created(i))).collect();
    let report = producer::produce(&connection(broker()), &ProduceOptions::default(), records, |_| {}).await.unwrap();
    assert_eq!(report.acked, EVENTS);
    topic
}

/// A consumer of `topic` in `group`, writing JSON lines to `out`, run in `dir`.
fn consumer(dir: &Path, topic: &str, group: &str, out: &Path, extra: &[&str]) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("chinook"))
        .current_dir(dir)
        .args(["consume", "--topic", topic, "--group", group, "--offset", "committed", "--format", "jsonl"])
        .args(["--brokers", &broker().bootstrap, "--type", "events.v1.CustomerEvent", "--no-dlq"])
        // A killed member is replaced after 6 s, not Kafka's default 45 s.
        .args(["-X", "session.timeout.ms=6000", "-X", "auto.commit.interval.ms=200"])
        .args(extra)
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The event ids of the records a consumer handled (its JSON lines).
fn handled(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["outcome"] == "handled")
        .map(|v| v["value"]["eventId"].as_str().unwrap().to_string())
        .collect()
}

fn lines(out: &Path) -> usize {
    std::fs::read_to_string(out).map(|t| t.lines().count()).unwrap_or(0)
}

/// Runs a consumer until it has handled 600 records, kills it (SIGKILL),
/// notes the group's committed total, then runs a second one to the end.
/// Returns (first's ids, second's ids, committed when the first died).
fn crash_and_restart(dir: &Path, topic: &str, extra: &[&str]) -> (Vec<String>, Vec<String>, i64) {
    let group = unique("crash-group");
    let (first_out, second_out) = (dir.join("first.jsonl"), dir.join("second.jsonl"));
    let mut first =
        consumer(dir, topic, &group, &first_out, &[&["--follow", "--handler-delay", "2ms"], extra].concat());
    let deadline = Instant::now() + Duration::from_secs(120);
    while lines(&first_out) < 600 {
        assert!(Instant::now() < deadline, "the first consumer never got going");
        assert!(first.try_wait().unwrap().is_none(), "the first consumer ended by itself");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let committed: i64 = {
        let out = chinook()
            .args(["group", "describe", &group, "--format", "json", "--brokers", &broker().bootstrap])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["partitions"].as_array().unwrap().iter().filter_map(|p| p["committed"].as_i64()).sum()
    };
    let mut second = consumer(dir, topic, &group, &second_out, &[&["--until-end"], extra].concat());
    let status = wait_or_kill(&mut second, Duration::from_secs(120));
    assert!(status.success(), "the second consumer runs to the end");
    (handled(&first_out), handled(&second_out), committed)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_consumer_loses_nothing_and_repeats_only_what_was_uncommitted() {
    let topic = topic_with_events().await;
    let dir = tempfile::tempdir().unwrap();
    let (first, second, committed) = crash_and_restart(dir.path(), &topic, &[]);
    let all: HashSet<&String> = first.iter().chain(&second).collect();
    assert_eq!(all.len(), EVENTS, "every event processed at least once");
    let first_set: HashSet<&String> = first.iter().collect();
    let again = second.iter().filter(|id| first_set.contains(id)).count() as i64;
    let uncommitted = first.len() as i64 - committed;
    assert!(again <= uncommitted, "processed again: {again}, uncommitted when killed: {uncommitted}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_dedupe_a_killed_consumer_handles_every_event_exactly_once() {
    let topic = topic_with_events().await;
    let dir = tempfile::tempdir().unwrap();
    let (first, second, _) = crash_and_restart(dir.path(), &topic, &["--dedupe"]);
    let mut count: HashMap<&String, usize> = HashMap::new();
    for id in first.iter().chain(&second) {
        *count.entry(id).or_default() += 1;
    }
    assert_eq!(count.len(), EVENTS, "every event handled");
    let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "handled twice: {twice:?}");
    let state = std::fs::read_dir(dir.path().join(".chinook/dedupe")).unwrap().count();
    assert_eq!(state, 1, "the state is in .chinook/dedupe/");
}

/// The records stored on `topic`, by its watermarks.
fn stored(topic: &str) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = connection(broker()).client_config().create().unwrap();
    (0..3).map(|p| c.fetch_watermarks(topic, p, Duration::from_secs(10)).map_or(0, |(low, high)| high - low)).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_produce_stops_sending_and_reports_what_was_stored() {
    let topic = unique("interrupt");
    create_topic(broker(), &topic, 3).await;
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("chinook"))
        .args(["produce", "customer-created", "--count", "100000", "--rate", "5000", "--topic", &topic])
        .args(["--brokers", &broker().bootstrap, "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored(&topic) < 1_000 {
        assert!(Instant::now() < deadline, "the producer never got going");
        std::thread::sleep(Duration::from_millis(50));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = wait_or_kill(&mut child, Duration::from_secs(60));
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["interrupted"], true);
    let (sent, acked) = (report["sent"].as_i64().unwrap(), report["acked"].as_i64().unwrap());
    assert!(sent < 100_000, "it stopped taking records: {sent}");
    assert_eq!(acked, sent, "every record sent was awaited");
    assert_eq!(stored(&topic), acked, "what it reports acknowledged is what the topic holds");
}
