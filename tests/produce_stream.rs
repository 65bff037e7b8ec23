//! The streaming producer: records pulled lazily from an iterator, never more
//! ahead of the acknowledgements than the in-flight bound, each acknowledged
//! exactly once; retriable failures re-sent a bounded number of times.

mod common;

use std::{
    collections::BTreeSet,
    sync::atomic::{AtomicU64, Ordering},
};

use chinook::{
    events,
    kafka::{
        consumer::read_events,
        producer::{self, OutRecord, ProduceOptions},
    },
};
use common::*;

const EVENTS: u64 = 20_000;
/// librdkafka's queue (and so chinook's in-flight set), far below EVENTS.
const BOUND: u64 = 1_000;

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_produce_pulls_lazily_and_acks_every_event_once() {
    let topic = unique("stream");
    create_topic(broker(), &topic, 3).await;
    let mut conn = connection(broker());
    conn.overrides.push(("queue.buffering.max.messages".into(), BOUND.to_string()));

    let (pulled, settled, most_ahead) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let records = (0..EVENTS as i64).map(|id| {
        let ahead = pulled.fetch_add(1, Ordering::Relaxed) + 1 - settled.load(Ordering::Relaxed);
        most_ahead.fetch_max(ahead, Ordering::Relaxed);
        OutRecord::event(&topic, &events::created(id))
    });
    let report =
        producer::produce(&conn, &ProduceOptions::default(), records, |done| settled.store(done, Ordering::Relaxed))
            .await
            .unwrap();

    assert_eq!((report.sent, report.acked, report.failed), (EVENTS as usize, EVENTS as usize, 0), "{report:?}");
    let offsets: i64 = report.offsets.values().map(|(first, last)| last - first + 1).sum();
    assert_eq!(offsets, EVENTS as i64, "{:?}", report.offsets);
    let ahead = most_ahead.load(Ordering::Relaxed);
    assert!(ahead <= BOUND, "the iterator was pulled {ahead} records ahead of the acknowledgements");

    let read = read_events(&connection(broker()), &topic).await.unwrap();
    let ids: BTreeSet<i64> = read.iter().map(|e| e.aggregate_id.parse().unwrap()).collect();
    assert_eq!(read.len(), EVENTS as usize, "every event stored exactly once");
    assert_eq!(ids, (0..EVENTS as i64).collect(), "every event stored");
}

/// Records that keep failing with a retriable error (here: a delivery timeout,
/// from a listener that accepts connections and never answers) are re-sent from
/// the copy librdkafka hands back, the allowed number of times, then reported
/// with their input position.
#[tokio::test(flavor = "multi_thread")]
async fn retriable_failures_are_resent_then_reported() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let conn = chinook::kafka::Connection::new(silent.local_addr().unwrap().to_string());
    let options =
        ProduceOptions { delivery_timeout: std::time::Duration::from_millis(200), retries: 2, ..Default::default() };
    let records = (0..3).map(|id| OutRecord::event("nowhere", &events::created(id)));
    let report = producer::produce(&conn, &options, records, |_| {}).await.unwrap();

    assert_eq!((report.sent, report.acked, report.failed, report.retries), (3, 0, 3, 6), "{report:?}");
    for (index, f) in report.failures.iter().enumerate() {
        assert_eq!((f.index, f.attempts, f.retriable), (index, 3, true), "{f:?}");
    }
}

/// A producer killed with SIGKILL part-way through an input file, then run
/// again with `--resume`: the topic ends with every event of the file once.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_producer_resumed_leaves_every_event_once() {
    let b = broker();
    let topic = unique("resume");
    create_topic(b, &topic, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    let plan = chinook()
        .args(["produce", "customer-created", "--count", "20000", "--topic", &topic, "--dry-run", "-q"])
        .args(["--brokers", &b.bootstrap])
        .output()
        .unwrap();
    assert!(plan.status.success());
    std::fs::write(&input, &plan.stdout).unwrap();
    let mut first = std::process::Command::new(assert_cmd::cargo::cargo_bin("chinook"))
        .args(["produce", "--input", input.to_str().unwrap(), "--rate", "4000", "--brokers", &b.bootstrap])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some of the events are stored, well before all are.
    let conn = connection(b);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let stored = chinook::sourcing::log::read(&conn, &topic, None).await.unwrap().len();
        if stored >= 2_000 {
            assert!(stored < 20_000, "the producer finished before it could be killed");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the producer never got going");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();

    let resumed = chinook()
        .args(["produce", "--input", input.to_str().unwrap(), "--resume", "--brokers", &b.bootstrap])
        .timeout(std::time::Duration::from_secs(180))
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let said = String::from_utf8_lossy(&resumed.stderr);
    assert!(said.contains("already on the topic"), "{said}");
    let ids: Vec<String> = chinook::sourcing::log::read(&conn, &topic, None)
        .await
        .unwrap()
        .iter()
        .map(|s| s.event().unwrap().event_id)
        .collect();
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!((ids.len(), distinct.len()), (20_000, 20_000), "every event once");
}
