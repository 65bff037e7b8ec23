//! `chinook bench serialization`: the same events as protobuf and as JSON.
//! Sizes and the round trip are asserted; speeds are only reported (timing
//! goals live in BENCHMARKS.md, never in tests).

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
