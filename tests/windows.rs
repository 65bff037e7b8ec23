//! Golden cases for windowed counting, worked out by hand from Kafka
//! Streams' rules (src/streams/windows.rs states them), not from the code:
//! in order, out of order within the grace period, late beyond it, hopping
//! windows where a late record still counts in a newer window, and session
//! merges, including one record that bridges two sessions, and sliding
//! windows: each record's left and right windows, an out-of-order record that
//! creates windows on both sides, early records and late drops.

mod common;

use chinook::streams::windows::{Count, Spec, Windows};
use common::*;

const S: i64 = 1000;

fn c(key: &str, start: i64, end: i64, count: u64) -> Count {
    Count { key: key.into(), start, end, count }
}

#[test]
fn specs_parse_and_bad_ones_say_how() {
    assert_eq!("tumbling:1m".parse::<Spec>(), Ok(Spec::Time { size: 60 * S, advance: 60 * S }));
    assert_eq!("hopping:1m/10s".parse::<Spec>(), Ok(Spec::Time { size: 60 * S, advance: 10 * S }));
    assert_eq!("session:30s".parse::<Spec>(), Ok(Spec::Session { gap: 30 * S }));
    assert_eq!("sliding:1m".parse::<Spec>(), Ok(Spec::Sliding { difference: 60 * S }));
    assert!("hopping:10s/1m".parse::<Spec>().unwrap_err().contains("advance"));
    assert!("weekly:1d".parse::<Spec>().unwrap_err().contains("tumbling:SIZE"));
    assert!("tumbling:0s".parse::<Spec>().is_err());
    for text in ["tumbling:1m", "hopping:1m/10s", "sliding:1m", "session:30s"] {
        assert_eq!(text.parse::<Spec>().unwrap().to_string(), text, "shown as given");
    }
}

#[test]
fn tumbling_in_order() {
    let mut w = Windows::new(Spec::Time { size: 10 * S, advance: 10 * S }, 0);
    assert_eq!(w.record("a", S), [c("a", 0, 10 * S, 1)]);
    assert_eq!(w.take_final(), []);
    assert_eq!(w.record("a", 3 * S), [c("a", 0, 10 * S, 2)]);
    assert_eq!(w.record("a", 12 * S), [c("a", 10 * S, 20 * S, 1)]);
    assert_eq!(w.take_final(), [c("a", 0, 10 * S, 2)]);
    assert_eq!(w.record("a", 25 * S), [c("a", 20 * S, 30 * S, 1)]);
    assert_eq!(w.take_final(), [c("a", 10 * S, 20 * S, 1)]);
    assert_eq!(w.open(), [c("a", 20 * S, 30 * S, 1)]);
    assert_eq!(w.dropped, 0);
}

#[test]
fn tumbling_out_of_order_within_grace_and_late_beyond_it() {
    let mut w = Windows::new(Spec::Time { size: 10 * S, advance: 10 * S }, 5 * S);
    w.record("a", S);
    w.record("a", 12 * S);
    // Stream time 12 s, grace 5 s: [0, 10 s) closes at 15 s, so 4 s still counts.
    assert_eq!(w.record("a", 4 * S), [c("a", 0, 10 * S, 2)]);
    assert_eq!(w.take_final(), []);
    w.record("a", 16 * S);
    assert_eq!(w.take_final(), [c("a", 0, 10 * S, 2)]);
    // Stream time 16 s: 10 s ≤ 16 s − 5 s, the window is closed; 3 s is dropped.
    assert_eq!(w.record("a", 3 * S), []);
    assert_eq!(w.dropped, 1);
}

#[test]
fn hopping_windows_and_a_late_record_that_still_counts_in_a_newer_one() {
    let mut w = Windows::new(Spec::Time { size: 10 * S, advance: 5 * S }, 0);
    assert_eq!(w.record("a", 7 * S), [c("a", 0, 10 * S, 1), c("a", 5 * S, 15 * S, 1)]);
    assert_eq!(w.record("a", 12 * S), [c("a", 5 * S, 15 * S, 2), c("a", 10 * S, 20 * S, 1)]);
    assert_eq!(w.take_final(), [c("a", 0, 10 * S, 1)]);
    assert_eq!(w.record("a", 22 * S), [c("a", 15 * S, 25 * S, 1), c("a", 20 * S, 30 * S, 1)]);
    assert_eq!(w.take_final(), [c("a", 5 * S, 15 * S, 2), c("a", 10 * S, 20 * S, 1)]);
    // 16 s at stream time 22 s: [10 s, 20 s) is closed (dropped), [15 s, 25 s) is not.
    assert_eq!(w.record("a", 16 * S), [c("a", 15 * S, 25 * S, 2)]);
    assert_eq!(w.dropped, 1);
}

#[test]
fn keys_count_apart() {
    let mut w = Windows::new(Spec::Time { size: 10 * S, advance: 10 * S }, 0);
    w.record("a", S);
    w.record("b", 2 * S);
    w.record("a", 3 * S);
    assert_eq!(w.open(), [c("a", 0, 10 * S, 2), c("b", 0, 10 * S, 1)]);
}

#[test]
fn sessions_merge_bridge_close_and_drop() {
    let mut w = Windows::new(Spec::Session { gap: 5 * S }, 10 * S);
    assert_eq!(w.record("a", S), [c("a", S, S, 1)]);
    assert_eq!(w.record("a", 4 * S), [c("a", S, 4 * S, 2)]);
    assert_eq!(w.record("a", 20 * S), [c("a", 20 * S, 20 * S, 1)]);
    // Out of order, within the gap of the first session (and the grace).
    assert_eq!(w.record("a", 9 * S), [c("a", S, 9 * S, 3)]);
    assert_eq!(w.record("a", 14 * S), [c("a", S, 14 * S, 4)]);
    // 17 s is within 5 s of both sessions: they merge into one.
    assert_eq!(w.record("a", 17 * S), [c("a", S, 20 * S, 6)]);
    assert_eq!(w.open(), [c("a", S, 20 * S, 6)]);
    assert_eq!(w.take_final(), []);
    w.record("a", 40 * S);
    // 20 s < 40 s − 10 s − 5 s: the session is final.
    assert_eq!(w.take_final(), [c("a", S, 20 * S, 6)]);
    // 2 s alone would end at 2 s < 25 s: dropped.
    assert_eq!(w.record("a", 2 * S), []);
    assert_eq!(w.dropped, 1);
}

#[test]
fn sliding_left_and_right_windows_in_and_out_of_order() {
    let mut w = Windows::new(Spec::Sliding { difference: 10 * S }, 100 * S);
    assert_eq!(w.record("a", 20 * S), [c("a", 10 * S, 20 * S, 1)]);
    // 25 s: its left window [15 s, 25 s] holds 20 s too; 20 s's right window
    // [20.001 s, 30.001 s] (it starts 1 ms after its record) now has a record,
    // so it exists.
    assert_eq!(w.record("a", 25 * S), [c("a", 15 * S, 25 * S, 2), c("a", 20 * S + 1, 30 * S + 1, 1)]);
    assert_eq!(w.record("a", 40 * S), [c("a", 30 * S, 40 * S, 1)]);
    // 33 s, out of order: its left window [23 s, 33 s] holds 25 s and 33 s;
    // 25 s's right window [25.001 s, 35.001 s] is born; 40 s's left window
    // grows; and 33 s's own right window exists because 40 s falls in it.
    assert_eq!(
        w.record("a", 33 * S),
        [
            c("a", 23 * S, 33 * S, 2),
            c("a", 25 * S + 1, 35 * S + 1, 1),
            c("a", 30 * S, 40 * S, 2),
            c("a", 33 * S + 1, 43 * S + 1, 1)
        ]
    );
    assert_eq!(
        w.open(),
        [
            c("a", 10 * S, 20 * S, 1),
            c("a", 15 * S, 25 * S, 2),
            c("a", 20 * S + 1, 30 * S + 1, 1),
            c("a", 23 * S, 33 * S, 2),
            c("a", 25 * S + 1, 35 * S + 1, 1),
            c("a", 30 * S, 40 * S, 2),
            c("a", 33 * S + 1, 43 * S + 1, 1),
        ]
    );
    assert_eq!(w.dropped, 0);
}

#[test]
fn sliding_early_records_share_the_window_from_zero() {
    let mut w = Windows::new(Spec::Sliding { difference: 10 * S }, 100 * S);
    assert_eq!(w.record("a", 3 * S), [c("a", 0, 10 * S, 1)]);
    // 7 s is early too: [0, 10 s] again, and 3 s's right window [3.001 s, 13.001 s].
    assert_eq!(w.record("a", 7 * S), [c("a", 0, 10 * S, 2), c("a", 3 * S + 1, 13 * S + 1, 1)]);
}

#[test]
fn sliding_windows_close_and_late_records_drop() {
    let mut w = Windows::new(Spec::Sliding { difference: 10 * S }, 0);
    w.record("a", 20 * S);
    // Inclusive end: [10 s, 20 s] is not final at stream time 20 s…
    assert_eq!(w.take_final(), []);
    w.record("a", 40 * S);
    // …and is at 40 s.
    assert_eq!(w.take_final(), [c("a", 10 * S, 20 * S, 1)]);
    // 25 s: 25 + 1 + 10 ≤ 40, even its right window has closed: dropped.
    assert_eq!(w.record("a", 25 * S), []);
    assert_eq!(w.dropped, 1);
    // 32 s: its left window [22 s, 32 s] has closed (a drop for that window),
    // but 40 s's left window and its own right window [32.001 s, 42.001 s] take it.
    assert_eq!(w.record("a", 32 * S), [c("a", 30 * S, 40 * S, 2), c("a", 32 * S + 1, 42 * S + 1, 1)]);
    assert_eq!(w.dropped, 2);
}

/// The out-of-order case again, end to end: records with those timestamps on
/// a topic of the embedded broker, counted by `chinook aggregate`.
#[tokio::test(flavor = "multi_thread")]
async fn chinook_aggregate_counts_a_topic_by_event_time() {
    let topic = unique("windows");
    create_topic(broker(), &topic, 1).await;
    let base = 1_800_000_000_000; // a multiple of 10 s
    let records: Vec<chinook::kafka::producer::OutRecord> = [1, 12, 4, 16, 3]
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut r = chinook::kafka::producer::OutRecord::event(&topic, &chinook::events::created(i as i64));
            r.timestamp = Some(base + s * S);
            r
        })
        .collect();
    let report =
        chinook::kafka::producer::produce(&connection(broker()), &Default::default(), records, |_| {}).await.unwrap();
    assert_eq!(report.acked, 5);
    let results = unique("window-results");
    create_topic(broker(), &results, 1).await;
    let out = chinook()
        .args(["aggregate", "--topic", &topic, "--window", "tumbling:10s", "--grace", "5s", "--format", "json"])
        .args(["--to", &results])
        .args(["--brokers", &broker().bootstrap])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = "CUSTOMER_EVENT_TYPE_CREATED";
    assert_eq!(v["final"], serde_json::json!([{ "key": key, "start": base, "end": base + 10 * S, "count": 2 }]));
    assert_eq!(
        v["open"],
        serde_json::json!([{ "key": key, "start": base + 10 * S, "end": base + 20 * S, "count": 2 }])
    );
    assert_eq!((v["dropped"].as_u64(), v["records"].as_u64()), (Some(1), Some(5)));
    // The final window, published as a WindowResult.
    let published = chinook::sourcing::log::read(&connection(broker()), &results, None).await.unwrap();
    assert_eq!(published.len(), 1);
    let r: chinook::codec::pb::events::v1::WindowResult =
        prost::Message::decode(published[0].value.as_slice()).unwrap();
    assert_eq!(
        (r.key.as_str(), r.count, r.r#final, r.window.as_str(), r.group_by.as_str()),
        (key, 2, true, "tumbling:10s", "event-type")
    );
    assert_eq!(r.window_start.unwrap().seconds * 1000, base);
    assert_eq!(r.window_end.unwrap().seconds * 1000, base + 10 * S);
}

/// Publishes customer-created events at `base + s` seconds for each `s`, on partition 0.
async fn publish_at(topic: &str, base: i64, seconds: &[i64]) {
    let records: Vec<chinook::kafka::producer::OutRecord> = seconds
        .iter()
        .map(|s| chinook::kafka::producer::OutRecord {
            partition: Some(0),
            timestamp: Some(base + s * S),
            ..chinook::kafka::producer::OutRecord::event(topic, &chinook::events::created(*s))
        })
        .collect();
    let report =
        chinook::kafka::producer::produce(&connection(broker()), &Default::default(), records, |_| {}).await.unwrap();
    assert_eq!(report.acked, seconds.len());
}

/// `--follow` off a terminal: the history first, then each window as it closes
/// while records arrive, one JSON line each, also published with `--to`; a late
/// record is dropped; SIGINT ends it with exit 0.
#[tokio::test(flavor = "multi_thread")]
async fn aggregate_follow_emits_windows_as_they_close() {
    use std::io::BufRead;
    let topic = unique("followed");
    create_topic(broker(), &topic, 1).await;
    let results = unique("followed-results");
    create_topic(broker(), &results, 1).await;
    let base = 1_700_000_000_000_i64 - 1_700_000_000_000 % (10 * S);
    publish_at(&topic, base, &[1, 3]).await;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("chinook"))
        .args(["aggregate", "--follow", "--topic", &topic, "--window", "tumbling:10s", "--format", "jsonl"])
        .args(["--to", &results, "--brokers", &broker().bootstrap])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = || -> serde_json::Value {
        let line = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("a result line");
        serde_json::from_str(&line).unwrap()
    };
    let key = "CUSTOMER_EVENT_TYPE_CREATED";
    // 12 s closes [0, 10 s) (no grace); 2 s then comes too late; 25 s closes [10 s, 20 s).
    publish_at(&topic, base, &[12]).await;
    let first = next();
    assert_eq!(first["state"], "final");
    assert_eq!(first["window"], serde_json::json!({ "key": key, "start": base, "end": base + 10 * S, "count": 2 }));
    publish_at(&topic, base, &[2, 25]).await;
    let second = next();
    assert_eq!(
        second["window"],
        serde_json::json!({ "key": key, "start": base + 10 * S, "end": base + 20 * S, "count": 1 })
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(wait_or_kill(&mut child, std::time::Duration::from_secs(30)).code(), Some(0));
    assert!(rx.try_iter().next().is_none(), "the late record closed nothing and was not counted");
    let published = chinook::sourcing::log::read(&connection(broker()), &results, None).await.unwrap();
    let counts: Vec<i64> = published
        .iter()
        .map(|r| {
            prost::Message::decode(r.value.as_slice())
                .map(|w: chinook::codec::pb::events::v1::WindowResult| w.count)
                .unwrap()
        })
        .collect();
    assert_eq!(counts, [2, 1]);
}

/// `--follow` on a terminal: a live table redrawn as records arrive; Ctrl-C ends it.
#[tokio::test(flavor = "multi_thread")]
async fn aggregate_follow_draws_a_live_table_in_a_terminal() {
    let topic = unique("watched-windows");
    create_topic(broker(), &topic, 1).await;
    let base = 1_700_000_000_000_i64 - 1_700_000_000_000 % (10 * S);
    publish_at(&topic, base, &[1]).await;
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("chinook"));
    cmd.env("NO_COLOR", "1").args([
        "aggregate",
        "--follow",
        "--topic",
        &topic,
        "--window",
        "tumbling:10s",
        "--brokers",
        &broker().bootstrap,
    ]);
    let mut p = rexpect::session::spawn_command(cmd, Some(60_000)).unwrap();
    p.exp_string("Ctrl-C stops").unwrap();
    p.exp_string("1 record(s)").unwrap();
    publish_at(&topic, base, &[3, 14]).await;
    // Redrawn: three records, the first window closed with its two.
    p.exp_string("3 record(s)").unwrap();
    p.exp_string("final").unwrap();
    p.send_control('c').unwrap();
    p.exp_eof().unwrap();
}
