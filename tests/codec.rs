//! The codec against its fixtures, against protoc, and through the CLI.

mod common;

use std::process::Command;

use chinook::codec::{JsonOptions, Schemas, Transcoder};
use common::*;
use prost_reflect::DynamicMessage;
use serde_json::Value;

fn transcoder(type_name: &str) -> Transcoder {
    Transcoder::new(Schemas::builtin().message(type_name).unwrap(), JsonOptions::default())
}

#[test]
fn every_fixture_round_trips_json_and_bytes() {
    let fixtures = event_fixtures();
    assert_eq!(fixtures.len(), 8, "five event kinds and three commands");
    for f in fixtures {
        let t = transcoder(&f.type_name);
        let json = std::fs::read_to_string(fixture(&format!("events/{}.json", f.name))).unwrap();
        let bin = read(&fixture(&format!("events/{}.bin", f.name)));
        let msg = t.from_json(&json, 0..json.len(), &f.name).unwrap();
        assert_eq!(Transcoder::encode(&msg), bin, "{}: encode(JSON) differs from the .bin", f.name);
        let decoded = t.decode(&bin, 0).unwrap();
        let expected: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(t.to_value(&decoded), expected, "{}: decode(.bin) differs from the .json", f.name);
    }
}

/// protoc's decoder (C++, independent of prost) must see the same field values.
#[test]
fn protoc_decodes_every_fixture_to_the_same_values() {
    for f in event_fixtures() {
        let bin = read(&fixture(&format!("events/{}.bin", f.name)));
        let text = protoc_decode(&f.type_name, &bin).unwrap_or_else(|e| panic!("{}: protoc failed: {e}", f.name));
        let t = transcoder(&f.type_name);
        let from_protoc = DynamicMessage::parse_text_format(t.descriptor().clone(), &text).unwrap();
        let ours = t.decode(&bin, 0).unwrap();
        assert_eq!(t.to_value(&ours), t.to_value(&from_protoc), "{}: protoc printed\n{text}", f.name);
        // Not vacuous: protoc's text really carries the values.
        assert!(text.lines().count() > 5, "{}: {text}", f.name);
    }
}

fn protoc_decode(type_name: &str, bytes: &[u8]) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new("protoc")
        .args([&format!("--decode={type_name}"), "-I", "proto", "events/v1/customer_events.proto"])
        .current_dir(root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("cannot run protoc ({e}): install it with `apt-get install protobuf-compiler` (see SETUP.md)")
        })?;
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn every_malformed_fixture_is_located_and_exits_3() {
    for case in malformed_cases() {
        let mut cmd = chinook();
        cmd.arg("decode").arg(fixture(&format!("malformed/{}", case.file)));
        if case.length_delimited {
            cmd.arg("--length-delimited");
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{} ({}): {stderr}", case.file, case.what);
        assert!(
            stderr.contains(&format!("byte {}", case.offset)),
            "{}: expected byte {} in\n{stderr}",
            case.file,
            case.offset
        );
        let flat = stderr.split_whitespace().collect::<Vec<_>>().join(" ").replace(" | ", " ");
        assert!(flat.contains(&case.says), "{}: expected {:?} in\n{stderr}", case.file, case.says);
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn protoc_agrees_on_which_malformed_records_are_broken() {
    for case in malformed_cases().iter().filter(|c| !c.length_delimited) {
        let bytes = read(&fixture(&format!("malformed/{}", case.file)));
        let rejected = protoc_decode("events.v1.CustomerEvent", &bytes).is_err();
        assert_eq!(rejected, case.protoc_rejects, "{}: protoc rejected={rejected}", case.file);
    }
}

#[test]
fn decode_prints_the_event_and_reports_confluent_framing() {
    let created = fixture("events/customer_created.bin");
    let out = chinook().args(["decode", "--format", "jsonl"]).arg(&created).output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["customerCreated"]["customer"]["name"], "Luís Gonçalves");
    assert_eq!(v["version"], "1", "int64 is a string by default");

    let framed =
        chinook().args(["encode", "--schema-id", "42"]).arg(fixture("events/customer_created.json")).output().unwrap();
    assert!(framed.status.success());
    assert_eq!(&framed.stdout[..6], &[0, 0, 0, 0, 42, 0], "magic, id 42, index [0] as one 0x00");
    let out = chinook().args(["decode", "--format", "jsonl"]).write_stdin(framed.stdout).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), v);
    assert!(String::from_utf8_lossy(&out.stderr).contains("schema id 42"));
}

#[test]
fn hex_base64_and_int64_numbers() {
    let hex = chinook().args(["encode", "-o", "hex"]).arg(fixture("events/customer_deleted.json")).output().unwrap();
    let b64 = chinook().args(["encode", "-o", "base64"]).arg(fixture("events/customer_deleted.json")).output().unwrap();
    let a = chinook().args(["decode", "--hex", "--format", "jsonl"]).write_stdin(hex.stdout).output().unwrap();
    let b = chinook()
        .args(["decode", "--base64", "--format", "jsonl", "--int64-as-numbers"])
        .write_stdin(b64.stdout)
        .output()
        .unwrap();
    let a: Value = serde_json::from_slice(&a.stdout).unwrap();
    let b: Value = serde_json::from_slice(&b.stdout).unwrap();
    assert_eq!(a["customerDeleted"]["customerId"], "2");
    assert_eq!(b["customerDeleted"]["customerId"], 2);
}

#[test]
fn length_delimited_streams_skip_a_bad_record_unless_fail_fast() {
    let names = ["customer_created", "customer_deleted", "status_changed"];
    let jsonl: String = names
        .iter()
        .map(|n| {
            let v: Value =
                serde_json::from_str(&std::fs::read_to_string(fixture(&format!("events/{n}.json"))).unwrap()).unwrap();
            v.to_string() + "\n"
        })
        .collect();
    let stream = chinook().args(["encode", "--length-delimited"]).write_stdin(jsonl.clone()).output().unwrap();
    assert!(stream.status.success());
    // A good stream decodes back to the same three objects.
    let out = chinook()
        .args(["decode", "--length-delimited", "--format", "jsonl"])
        .write_stdin(stream.stdout.clone())
        .output()
        .unwrap();
    assert!(out.status.success());
    let back: Vec<Value> = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let sent: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(back, sent);

    // Put a broken record (wire type 7) second.
    let mut pos = 0;
    let len = chinook::codec::framing::read_varint(&stream.stdout, &mut pos).unwrap() as usize;
    let first_len = pos + len;
    let mut broken = stream.stdout[..first_len].to_vec();
    broken.extend_from_slice(&[2, 0x0f, 0x01]);
    broken.extend_from_slice(&stream.stdout[first_len..]);
    let out = chinook()
        .args(["decode", "--length-delimited", "--format", "jsonl"])
        .write_stdin(broken.clone())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.stdout.iter().filter(|b| **b == b'\n').count(), 3, "the three good records still decode");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("byte {}", first_len + 1)), "{stderr}");
    assert!(stderr.contains("1 of 4 records"), "{stderr}");

    let out = chinook()
        .args(["decode", "--length-delimited", "--fail-fast", "--format", "jsonl"])
        .write_stdin(broken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.stdout.iter().filter(|b| **b == b'\n').count(), 1, "stops at the bad record");
}

#[test]
fn proto_files_given_at_run_time_decode_the_same() {
    let bin = fixture("events/customer_updated.bin");
    let builtin = chinook().args(["decode", "--format", "jsonl"]).arg(&bin).output().unwrap();
    let runtime = chinook()
        .args(["decode", "--format", "jsonl", "--proto", "proto/events/v1/customer_events.proto", "-I", "proto"])
        .arg(&bin)
        .output()
        .unwrap();
    assert!(runtime.status.success(), "{}", String::from_utf8_lossy(&runtime.stderr));
    assert_eq!(builtin.stdout, runtime.stdout);
}

#[test]
fn usage_errors_exit_2_with_a_suggestion() {
    let out = chinook()
        .args(["decode", "--type", "CustomerEvnt"])
        .arg(fixture("events/customer_created.bin"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = chinook()
        .args(["decode", "--type", "events.v1.Customer"])
        .arg(fixture("events/customer_created.bin"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("events.v1.CustomerEvent"), "suggests near names");
    let out = chinook().args(["decode", "--no-such-flag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = chinook().args(["decode", "fixtures/does-not-exist.bin"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does-not-exist.bin"));
}

#[test]
fn bad_json_points_at_the_place() {
    let out = chinook()
        .args(["encode", "-o", "hex"])
        .write_stdin("{\n  \"eventId\": \"x\",\n  \"version\": \"many\"\n}")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[stdin:3:"), "{stderr}");
    let out = chinook().args(["encode", "-o", "hex"]).write_stdin("{\"noSuchField\": 1}").output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("noSuchField"));
}
