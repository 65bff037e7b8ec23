//! The schema registry the embedded broker serves, judged by clients nobody
//! here wrote — Confluent's Python `SchemaRegistryClient`, `ProtobufSerializer`
//! and `ProtobufDeserializer` (tests/registry/confluent_sr.py) — and by
//! chinook's own `produce`/`consume --schema-registry` on the framed topic,
//! which the broker validates against the registry.

mod common;

use common::*;
use serde_json::Value;

fn python() -> std::path::PathBuf {
    let python = root().join("target/student-venv/bin/python");
    assert!(python.exists(), "{} is missing: run `bash .ci/students.sh` first", python.display());
    python
}

/// A broker with its registry on a free port, and the lab topics.
fn started() -> (Workdir, String) {
    let s = Workdir::new();
    let registry = free_port().to_string();
    s.start(&["--registry-port", &registry]);
    s.ok(&["topics", "create"]);
    (s, format!("http://127.0.0.1:{registry}"))
}

#[test]
fn confluents_python_clients_register_serialize_and_read_back_through_the_broker() {
    let (s, url) = started();
    let descriptors = s.dir.path().join("descriptors.bin");
    std::fs::write(&descriptors, chinook::codec::DESCRIPTOR_SET).unwrap();
    let out = std::process::Command::new(python())
        .arg(root().join("tests/registry/confluent_sr.py"))
        .args([&url, &s.brokers(), "customer_events_framed", descriptors.to_str().unwrap(), "lab3-ping-value"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Preloaded: every schema-bound lab topic's subject, with its import as a reference.
    for subject in ["customer_events-value", "customer_events_framed-value", "customer/v1/customer.proto"] {
        assert!(v["subjects"].as_array().unwrap().iter().any(|s| s == subject), "{v}");
    }
    assert_eq!(v["preloaded"], serde_json::json!({"type": "PROTOBUF", "refs": ["customer/v1/customer.proto"]}));
    // Registration is idempotent; a field added is compatible, a type changed is not (409).
    assert_eq!(v["idempotent"], true);
    assert_eq!(v["v2_compatible"], true);
    assert_eq!(v["bad_compatible"], false);
    assert_eq!(v["bad_register"], 409);
    assert_eq!(v["versions"], serde_json::json!([1, 2]));
    assert_eq!(v["ids_distinct"], true);
    assert_eq!(v["by_id"], true);
    assert_eq!(v["missing_id"], serde_json::json!([404, 40403]));
    // The serializer's frames went through the broker's validation; a bare value did not.
    assert_eq!(v["framed_first_bytes"][0], 0);
    assert_eq!(v["produce_errors"], serde_json::json!([]));
    assert_eq!(v["unframed"], serde_json::json!(["INVALID_RECORD"]));
    assert_eq!(v["read_back"], true, "{v}");

    // chinook's consumer reads what Confluent's serializer wrote (schema ids it never registered).
    let out = s.ok(&[
        "consume",
        "--topic",
        "customer_events_framed",
        "--group",
        "g-python",
        "--schema-registry",
        &url,
        "--until-end",
        "--format",
        "jsonl",
    ]);
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(
        lines.iter().all(|l| l["value"]["aggregateId"].is_string() && l["outcome"] != "dead_lettered"),
        "{lines:?}"
    );
}

#[test]
fn produce_frames_through_the_registry_and_the_broker_refuses_bare_values() {
    let (s, url) = started();
    s.ok(&["produce", "customer-created", "--count", "4", "--topic", "customer_events_framed", "--schema-registry"]);
    // Without framing, the framed topic refuses the batch.
    let bare = s.run(&["produce", "customer-created", "--topic", "customer_events_framed", "--retries", "0"]);
    assert_eq!(bare.status.code(), Some(1), "{}", String::from_utf8_lossy(&bare.stderr));
    assert!(
        String::from_utf8_lossy(&bare.stderr).contains("INVALID_RECORD")
            || String::from_utf8_lossy(&bare.stdout).contains("INVALID_RECORD")
    );
    // The registry the managed broker serves is found without a URL.
    let status: Value = serde_json::from_slice(&s.ok(&["broker", "status", "--format", "json"]).stdout).unwrap();
    assert_eq!(status["schema_registry"], url.as_str());
    let out = s.ok(&[
        "consume",
        "--topic",
        "customer_events_framed",
        "--group",
        "g-chinook",
        "--schema-registry",
        "--until-end",
        "--format",
        "jsonl",
    ]);
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines.iter().all(|l| l["value"]["eventType"] == "CUSTOMER_EVENT_TYPE_CREATED"), "{lines:?}");
    // Read without the registry, the header is not protobuf: every record is dead-lettered.
    let out =
        s.ok(&["consume", "--topic", "customer_events_framed", "--group", "g-raw", "--until-end", "--format", "jsonl"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 4);
    assert!(text.lines().all(|l| l.contains("dead_lettered")), "{text}");
}

#[test]
fn break_registry_break_is_refused_then_forced_and_the_consumer_dead_letters_it() {
    let (s, _url) = started();
    let out = s.run(&["break", "registry-break", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = v["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["passed"] == true), "{v:#}");
    assert!(checks[0]["observed"].as_str().unwrap().contains("HTTP 409"), "{v:#}");
    assert_eq!(v["figures"]["handled"], 5);
    assert_eq!(v["figures"]["dead_lettered"], 5);
    assert_ne!(v["figures"]["first_schema_id"], v["figures"]["forced_schema_id"]);
    let listed: Value = serde_json::from_slice(&s.ok(&["break", "list", "--format", "json"]).stdout).unwrap();
    assert!(listed.as_array().unwrap().iter().any(|s| s["scenario"] == "registry-break"));

    // Without a registry the scenario says what it needs (exit 4).
    let bare = Workdir::new();
    bare.start(&["--no-registry"]);
    let out = bare.run(&["break", "registry-break"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs the schema registry"));
}
