//! Bad input never panics, hangs or grows without bound: a malformed-input
//! corpus (every fixture cut at every offset, every bit of it flipped, random
//! bytes, huge and negative length prefixes, deep nesting, invalid UTF-8, bad
//! Confluent frames, invalid JSON and wrong JSON types) through the decoder,
//! the wire-fault locator, the framing parsers and the JSON reader in
//! process; property tests (proptest) on the same parts; a sample through
//! the binary (`decode`, `encode`, `produce --input`), each a diagnostic
//! with exit 3; and command-line misuse, each one clear error with exit 2.

mod common;

use chinook::codec::{JsonOptions, Schemas, Transcoder, framing, wire};
use common::*;
use proptest::prelude::*;

const TYPES: [&str; 3] = ["events.v1.CustomerEvent", "events.v1.CustomerCommand", "events.v1.SagaMessage"];

fn transcoder(type_name: &str) -> Transcoder {
    Transcoder::new(Schemas::builtin().message(type_name).unwrap(), JsonOptions::default())
}

/// Every part that reads bytes, on `input`. Returns whether the message decoded.
fn read_everything(t: &Transcoder, input: &[u8]) -> bool {
    let decoded = t.decode(input, 0);
    let mut out = Vec::new();
    let line = t.json_line(input, 0, &mut out);
    assert_eq!(decoded.is_ok(), line.is_ok(), "the fast path and prost-reflect agree on {input:02x?}");
    if let Err(e) = &decoded {
        let text = e.to_string();
        assert!(!text.is_empty());
    }
    let _ = wire::check(t.descriptor(), input);
    let _ = framing::strip_confluent(input);
    let _ = framing::length_delimited(input).count();
    decoded.is_ok()
}

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Inputs written to break a decoder: lengths that lie, nesting without end,
/// strings that are not UTF-8.
fn crafted() -> Vec<(&'static str, Vec<u8>)> {
    let mut cases = Vec::new();
    for (what, len) in [("a 2^63 length", 1u64 << 63), ("a 4 GiB length", 1 << 32), ("a -1 length", u64::MAX)] {
        let mut b = vec![0x0a]; // field 1 (event_id / command_id / message_id), length-delimited
        varint(len, &mut b);
        b.extend_from_slice(b"abc");
        cases.push((what, b));
    }
    // 100,000 nested start-group tags of an unknown field.
    let mut deep = Vec::new();
    for _ in 0..100_000 {
        varint((999 << 3) | 3, &mut deep);
    }
    cases.push(("groups nested 100,000 deep", deep));
    // Length-delimited unknown fields nested 10,000 deep.
    let mut nested = Vec::new();
    for _ in 0..10_000 {
        let mut outer = Vec::new();
        varint((999 << 3) | 2, &mut outer);
        varint(nested.len() as u64, &mut outer);
        outer.extend_from_slice(&nested);
        nested = outer;
    }
    cases.push(("unknown fields nested 10,000 deep", nested));
    cases.push(("a string that is not UTF-8", vec![0x0a, 0x03, 0xff, 0xfe, 0xfd]));
    cases.push(("a varint that never ends", vec![0x20; 1].into_iter().chain(std::iter::repeat_n(0xff, 64)).collect()));
    // Found by the property test: a tag varint longer than 32 bits (protoc
    // truncates it, prost-reflect refuses it, the fast path once skipped it).
    cases.push(("a tag longer than 32 bits", vec![0x8a, 0x80, 0xf5, 0xe1, 0x69, 0x00]));
    cases.push(("a bad Confluent frame", vec![0x00, 0x00, 0x00]));
    cases.push(("a Confluent frame claiming 2^31 indexes", vec![0x00, 0, 0, 0, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f]));
    cases
}

#[test]
fn the_malformed_corpus_gives_errors_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut inputs = 0usize;
    for f in event_fixtures() {
        let t = transcoder(&f.type_name);
        let valid = read(&fixture(&format!("events/{}.bin", f.name)));
        assert!(read_everything(&t, &valid), "{} decodes", f.name);
        for cut in 0..valid.len() {
            read_everything(&t, &valid[..cut]);
            inputs += 1;
        }
        for i in 0..valid.len() {
            for bit in 0..8 {
                let mut flipped = valid.clone();
                flipped[i] ^= 1 << bit;
                read_everything(&t, &flipped);
                inputs += 1;
            }
        }
    }
    for type_name in TYPES {
        let t = transcoder(type_name);
        for _ in 0..5_000 {
            let len = (rng.next() % 300) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            read_everything(&t, &bytes);
            inputs += 1;
        }
        for (what, bytes) in crafted() {
            let decoded = read_everything(&t, &bytes);
            assert!(
                !decoded || what.starts_with("unknown fields") || what.starts_with("a bad Confluent"),
                "{what} decoded as {type_name}"
            );
            inputs += 1;
        }
    }
    assert!(inputs > 20_000, "{inputs} inputs");
}

#[test]
fn invalid_json_and_wrong_json_types_are_refused_with_a_position() {
    let t = transcoder("events.v1.CustomerEvent");
    for text in [
        "",
        "{",
        "[]",
        "null",
        r#"{"eventId": 42}"#,
        r#"{"version": "not a number"}"#,
        r#"{"version": 1.5}"#,
        r#"{"eventType": "CUSTOMER_EVENT_TYPE_NOPE"}"#,
        r#"{"customerCreated": {"customer": {"id": "12x"}}}"#,
        r#"{"timestamp": "yesterday"}"#,
        r#"{"metadata": {"k": 1}}"#,
        r#"{"unknownField": true}"#,
        "{\"eventId\": \"\u{0}\"} trailing",
    ] {
        let e = t.from_json(text, 0..text.len(), "input.json").expect_err(text);
        assert!(e.to_string().contains("events.v1.CustomerEvent"), "{text}: {e}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..512), which in 0..3usize) {
        read_everything(&transcoder(TYPES[which]), &bytes);
    }

    #[test]
    fn a_valid_event_with_random_damage_decodes_or_fails_cleanly(
        index in 0..6usize,
        damage in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let fixtures = event_fixtures();
        let f = &fixtures[index % fixtures.len()];
        let mut bytes = read(&fixture(&format!("events/{}.bin", f.name)));
        for (at, value) in damage {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep);
        read_everything(&transcoder(&f.type_name), &bytes);
    }

    #[test]
    fn confluent_headers_round_trip(schema_id in any::<u32>(), indexes in proptest::collection::vec(0..1000i64, 0..6)) {
        let header = framing::Confluent { schema_id, message_indexes: if indexes.is_empty() { vec![0] } else { indexes } };
        let mut bytes = Vec::new();
        framing::write_confluent(&header, &mut bytes);
        bytes.extend_from_slice(b"payload");
        let (back, at) = framing::strip_confluent(&bytes).unwrap().unwrap();
        prop_assert_eq!(back, header);
        prop_assert_eq!(&bytes[at..], b"payload");
    }

    #[test]
    fn any_text_as_json_parses_or_fails_cleanly(text in ".{0,200}") {
        let t = transcoder("events.v1.CustomerEvent");
        let _ = t.from_json(&text, 0..text.len(), "input");
    }
}

/// Runs the binary; returns (exit code, stderr).
fn run(args: &[&str], stdin: &[u8]) -> (i32, String) {
    let out =
        chinook().args(args).write_stdin(stdin.to_vec()).timeout(std::time::Duration::from_secs(60)).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "chinook {args:?} panicked: {stderr}");
    (out.status.code().expect("exited, not killed"), stderr)
}

#[test]
fn the_binary_answers_bad_input_with_a_diagnostic_and_exit_3() {
    let valid = read(&fixture("events/customer_created.bin"));
    let dir = tempfile::tempdir().unwrap();
    let mut samples: Vec<(String, Vec<u8>)> = vec![
        ("cut in half".into(), valid[..valid.len() / 2].to_vec()),
        ("one byte".into(), valid[..1].to_vec()),
        ("a flipped wire type".into(), {
            let mut b = valid.clone();
            b[0] ^= 0x07;
            b
        }),
    ];
    samples.extend(
        crafted().into_iter().filter(|(w, _)| !w.starts_with("unknown fields")).map(|(w, b)| (w.to_string(), b)),
    );
    for (what, bytes) in samples {
        let path = dir.path().join("input.bin");
        std::fs::write(&path, &bytes).unwrap();
        let (code, stderr) = run(&["decode", "--type", "events.v1.CustomerEvent", path.to_str().unwrap()], b"");
        assert_eq!(code, 3, "{what}: {stderr}");
        assert!(stderr.contains("chinook::codec"), "{what}: a diagnostic with its code: {stderr}");
    }
    // Hex that is not hex, base64 that is not base64.
    assert_eq!(run(&["decode", "--type", "events.v1.CustomerEvent", "--hex", "-"], b"0a zz").0, 3);
    assert_eq!(run(&["decode", "--type", "events.v1.CustomerEvent", "--base64", "-"], b"!!!").0, 3);
    // JSON that is not an event, for encode and for produce --input (refused before any broker is asked).
    for bad in ["{", r#"{"version": "x"}"#, r#"{"eventType": 7.5}"#] {
        let (code, stderr) = run(&["encode", "--type", "events.v1.CustomerEvent", "-"], bad.as_bytes());
        assert_eq!(code, 3, "encode {bad}: {stderr}");
    }
    let input = dir.path().join("records.jsonl");
    std::fs::write(&input, "{\"topic\":\"customer_events\",\"value\":{\"version\":\"x\"}}\n").unwrap();
    let (code, stderr) = run(&["produce", "--input", input.to_str().unwrap(), "--brokers", "127.0.0.1:9"], b"");
    assert_eq!(code, 3, "{stderr}");
    std::fs::write(&input, "not json\n").unwrap();
    let (code, stderr) = run(&["produce", "--input", input.to_str().unwrap(), "--brokers", "127.0.0.1:9"], b"");
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("line 1"), "{stderr}");
}

#[test]
fn command_line_misuse_is_one_clear_error_with_exit_2() {
    for (args, says) in [
        (&["produce", "customer-creatd"][..], "a similar value exists: 'customer-created'"),
        (&["consume", "--offset", "banana"], "use start, end, committed"),
        (&["produce", "customer-created", "--brokers", "localhost"], "host:port"),
        (&["lab", "9"], "chinook lab list"),
        (&["lab", "9", "verify"], "chinook lab list"),
        (&["produce", "customer-created", "--input", "x.jsonl"], "cannot be used with"),
        (
            &["produce", "create-customer", "--expect-version", "1", "--brokers", "127.0.0.1:9"],
            "commands have no version",
        ),
        (&["topics", "create", "foo", "--partitions", "0"], "is not in 1.."),
        (&["project", "customers", "--version", "2"], "--id"),
        (&["saga", "run", "--fail-at", "billing"], "billing-setup"),
        (&["break", "malformd"], "malformed"),
    ] {
        let (code, stderr) = run(args, b"");
        assert_eq!(code, 2, "chinook {args:?}: {stderr}");
        assert!(stderr.contains(says), "chinook {args:?} should say {says:?}: {stderr}");
    }
}
