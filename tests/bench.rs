//! `chinook bench serialization`: the same events as protobuf and as JSON;
//! `chinook bench produce`: a short grid against the test broker. Sizes,
//! acknowledgements and clean-up are asserted; speeds are only reported
//! (timing goals live in BENCHMARKS.md, never in tests).

mod common;

use common::*;
use serde_json::Value;

#[test]
fn serialization_measures_protobuf_and_json_on_the_same_events() {
    let out = chinook().args(["bench", "serialization", "--events", "500", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let formats: Vec<&str> = rows.iter().map(|r| r["format"].as_str().unwrap()).collect();
    assert_eq!(formats, ["protobuf (generated types)", "protobuf (reflection)", "proto3 JSON (reflection)"]);
    assert!(rows.iter().all(|r| r["events"] == 500 && r["encode_per_sec"].as_f64().unwrap() > 0.0));
    // Two encoders written apart (prost's generated code, prost-reflect) give the same bytes' length.
    assert_eq!(rows[0]["bytes"], rows[1]["bytes"]);
    let (protobuf, json) = (rows[0]["bytes"].as_u64().unwrap(), rows[2]["bytes"].as_u64().unwrap());
    assert!(json > protobuf, "JSON {json} bytes, protobuf {protobuf}");
    assert_eq!(rows[0]["size_ratio"], 1.0);
    assert!((rows[2]["size_ratio"].as_f64().unwrap() - json as f64 / protobuf as f64).abs() < 1e-9);

    let none = chinook().args(["bench", "serialization", "--events", "0"]).output().unwrap();
    assert_eq!(none.status.code(), Some(2));
}

/// The short mode CI runs: two codecs, one linger, one batch size, 300 events.
#[test]
fn produce_measures_every_cell_and_removes_its_scratch_topic() {
    let b = broker();
    let out = chinook()
        .args(["bench", "produce", "--codecs", "none,zstd", "--linger-ms", "0", "--batch-size", "16384"])
        .args(["--events", "300", "--format", "json", "--brokers", &b.bootstrap])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The scratch topic borrows customer_events' schema: a malformed value was refused on it.
    assert_eq!(report["schema_enforced"], true, "{report:#}");
    let topic = report["topic"].as_str().unwrap();
    assert!(topic.starts_with("chinook.bench.") && topic.ends_with(".schema.customer_events"), "{topic}");

    let rows = report["rows"].as_array().unwrap();
    let codecs: Vec<&str> = rows.iter().map(|r| r["codec"].as_str().unwrap()).collect();
    assert_eq!(codecs, ["none", "zstd"]);
    for r in rows {
        assert_eq!((r["acked"].as_u64(), r["failed"].as_u64()), (Some(300), Some(0)), "{r:#}");
        assert_eq!((r["linger_ms"].as_u64(), r["batch_size"].as_u64()), (Some(0), Some(16384)));
        for field in ["payload_bytes", "batch_bytes", "batches", "wire_bytes"] {
            assert!(r[field].as_u64().unwrap() > 0, "{field}: {r:#}");
        }
        // The whole produce went over the wire: at least every batch.
        assert!(r["wire_bytes"].as_u64() >= r["batch_bytes"].as_u64(), "{r:#}");
        assert!(r["p50_ms"].as_f64().unwrap() <= r["p99_ms"].as_f64().unwrap(), "{r:#}");
        assert!(r["msgs_per_sec"].as_f64().unwrap() > 0.0);
    }
    let bytes = |i: usize, field: &str| rows[i][field].as_u64().unwrap();
    // The same events: the same keys and values before compression, fewer bytes after zstd.
    assert_eq!(bytes(0, "payload_bytes"), bytes(1, "payload_bytes"));
    assert!(bytes(1, "batch_bytes") < bytes(0, "batch_bytes"), "{rows:#?}");
    assert!(bytes(1, "wire_bytes") < bytes(0, "wire_bytes"), "{rows:#?}");
    assert!(rows[0]["compression_ratio"].as_f64() < Some(1.0), "headers and framing, no compression");
    assert!(rows[1]["compression_ratio"].as_f64() > Some(1.0), "zstd shrinks customer events");

    let topics =
        tokio::runtime::Runtime::new().unwrap().block_on(chinook::kafka::admin::list_topics(&connection(b))).unwrap();
    assert!(topics.iter().all(|t| t.name != topic), "the scratch topic {topic} is still there");
}

#[test]
fn produce_refuses_bad_flags_with_a_usage_error() {
    let codec =
        chinook().args(["bench", "produce", "--codecs", "none,brotli", "--brokers", "127.0.0.1:1"]).output().unwrap();
    assert_eq!(codec.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&codec.stderr).contains("brotli"));

    let level = chinook()
        .args(["bench", "produce", "--codecs", "gzip,zstd", "--compression-level", "10", "--brokers", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(level.status.code(), Some(2));
    let said = String::from_utf8_lossy(&level.stderr);
    assert!(said.contains("--compression-level 10 is not a level gzip takes (0–9)"), "{said}");

    let events = chinook().args(["bench", "produce", "--events", "0", "--brokers", "127.0.0.1:1"]).output().unwrap();
    assert_eq!(events.status.code(), Some(2));
}
