//! The schema registry the embedded broker serves, judged by clients nobody
//! here wrote — Confluent's Python `SchemaRegistryClient`, `ProtobufSerializer`
//! and `ProtobufDeserializer` (tests/registry/confluent_sr.py), KafkaJS'
//! `@kafkajs/confluent-schema-registry` (tests/registry/kafkajs_sr.js) — and by
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

/// KafkaJS' registry client (`@kafkajs/confluent-schema-registry`, installed by
/// `.ci/clients.sh`), run by tests/registry/kafkajs_sr.js: its registrations,
/// round trips and references against our registry, and what it makes of
/// chinook's own frames (that script's header says what the library cannot do).
#[test]
fn kafkajs_registry_client_registers_round_trips_and_reads_chinooks_frames() {
    let lib = root().join("target/clients/node/node_modules/@kafkajs/confluent-schema-registry/package.json");
    assert!(
        lib.exists(),
        "{} is missing: run `bash .ci/clients.sh` first (it installs kafkajs and @kafkajs/confluent-schema-registry)",
        lib.display()
    );
    let (s, url) = started();
    s.ok(&["produce", "customer-created", "--count", "3", "--topic", "customer_events_framed", "--schema-registry"]);
    let (stdout, stderr) = (s.dir.path().join("kafkajs_sr.out"), s.dir.path().join("kafkajs_sr.err"));
    let mut child = std::process::Command::new("node")
        .arg(root().join("tests/registry/kafkajs_sr.js"))
        .args([&url, &s.brokers(), "customer_events_framed", "lab3-js-value", "lab3-js-ref-value", "3"])
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("node is on PATH (bash .ci/clients.sh installs it)");
    let status = wait_or_kill(&mut child, std::time::Duration::from_secs(240));
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert!(status.success(), "kafkajs_sr.js failed: {err}");
    let v: Value = serde_json::from_slice(&std::fs::read(&stdout).unwrap()).unwrap_or_else(|e| panic!("{e}: {err}"));
    assert_eq!(v["library"], "3.9.0", "{v}");

    // Scratch subject: idempotent registration, lookup by text, latest id, round trips, 409.
    let id1 = v["registered"]["id"].as_u64().unwrap();
    assert_eq!(v["registered"]["again"], id1, "{v}");
    assert_eq!(v["lookup_by_schema"], id1, "{v}");
    assert_eq!(v["latest_after_v1"], id1, "{v}");
    assert_eq!(v["encoded_header"], serde_json::json!([0, 0, 0, 0, id1, 0x0a]), "{v}");
    assert_eq!(v["round_trip"], serde_json::json!({"id": "ping-1"}));
    let id2 = v["v2"]["id"].as_u64().unwrap();
    assert_ne!(id2, id1);
    assert_eq!(v["v2"]["latest"], id2);
    assert_eq!(v["v2_round_trip"], serde_json::json!({"id": "ping-2", "sentMs": "42"}));
    assert_eq!(v["incompatible"], 409, "{v}");
    assert_eq!(v["latest_after_refusal"], id2);

    // A reference to the preloaded customer/v1/customer.proto, followed on register and decode.
    assert_eq!(
        v["ref_round_trip"],
        serde_json::json!({"who": "ana", "contact": {"email": "ana@example.com", "countryCode": "BR"}})
    );
    let reference = "GET /subjects/customer%2Fv1%2Fcustomer.proto/versions/1";
    assert!(v["ref_register_requests"].as_array().unwrap().iter().any(|r| r == reference), "{v}");
    assert!(v["ref_decode_requests"].as_array().unwrap().iter().any(|r| r == reference), "{v}");

    // chinook's frames: the library fetches the schema by id and its reference...
    assert_eq!(v["chinook_read"], 3, "{v}");
    let header = v["chinook_header"].as_array().unwrap();
    assert_eq!(header[5], 0, "message indexes [0]: {v}");
    let id = header[4].as_u64().unwrap();
    assert_eq!(v["chinook_decode_requests"], serde_json::json!([format!("GET /schemas/ids/{id}"), reference]), "{v}");
    // ...but cannot decode as it comes: it never defines the well-known google.protobuf.Timestamp,
    // and without `messageName` it takes the file's first type, an enum.
    assert_eq!(v["chinook_decode"]["ok"], false, "{v}");
    assert!(v["chinook_decode"]["error"].as_str().unwrap().contains("google.protobuf.Timestamp"), "{v}");
    assert!(v["without_message_name"].as_str().unwrap().contains("CustomerEventType"), "{v}");
    // With Timestamp added to its root, every value decodes, imported types included.
    let decoded = v["chinook_decode_with_timestamp"].as_array().unwrap();
    let mut ids: Vec<&str> = decoded.iter().map(|d| d["aggregateId"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["1", "2", "3"], "{v}");
    assert!(
        decoded.iter().all(|d| d["eventType"] == "CUSTOMER_EVENT_TYPE_CREATED"
            && d["customer"].as_str().is_some_and(|n| !n.is_empty())
            && d["timestamp"]["seconds"].is_string()),
        "{v}"
    );
    // Its own frames carry no message indexes, so the framed topic refuses them.
    assert_eq!(v["library_frame_header"], serde_json::json!([0, 0, 0, 0, id, 0x0a]), "{v}");
    assert_eq!(v["library_frame_on_topic"], "INVALID_RECORD", "{v}");
}

/// `decode --schema-registry`: a framed record is decoded as the writer's
/// message, fetched by schema id — here `CustomerCommand`, though `decode`
/// would read `CustomerEvent` by default; an id the registry does not know
/// is a clear error, not a guess.
#[test]
fn decode_reads_framed_records_as_the_writers_message_from_the_registry() {
    let (s, url) = started();
    let out = s.ok(&["produce", "create-customer", "--id", "7", "--schema-registry", "--dry-run"]);
    let note = String::from_utf8_lossy(&out.stderr);
    let id: String = note.split("schema id ").nth(1).unwrap().chars().take_while(char::is_ascii_digit).collect();
    // Where CustomerCommand sits in its file, as the header's message indexes.
    let command = chinook::codec::Schemas::builtin().message("events.v1.CustomerCommand").unwrap();
    let indexes = chinook::registry::compile::indexes_of(&command);
    assert_eq!(indexes.len(), 1);
    let framed = chinook()
        .args(["encode", "--type", "events.v1.CustomerCommand", "--schema-id", &id])
        .args(["--message-index", &indexes[0].to_string()])
        .arg(fixture("events/create_customer.json"))
        .output()
        .unwrap();
    assert!(framed.status.success(), "{}", String::from_utf8_lossy(&framed.stderr));
    let decoded = chinook()
        .args(["decode", "--format", "json", "--schema-registry", &url])
        .write_stdin(framed.stdout.clone())
        .output()
        .unwrap();
    assert!(decoded.status.success(), "{}", String::from_utf8_lossy(&decoded.stderr));
    let v: Value = serde_json::from_slice(&decoded.stdout).unwrap();
    assert!(v["createCustomer"].is_object(), "decoded as the writer's CustomerCommand: {v}");
    assert!(String::from_utf8_lossy(&decoded.stderr).contains("events.v1.CustomerCommand (from the registry"));

    let mut unknown = framed.stdout.clone();
    unknown[1..5].copy_from_slice(&999_999u32.to_be_bytes());
    let out = chinook().args(["decode", "--schema-registry", &url]).write_stdin(unknown).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("40403"), "{}", String::from_utf8_lossy(&out.stderr));
}
