//! `break schema-break`: a new schema version renumbers two fields; an event
//! written with it is read with the old one — no error, wrong values — and the
//! breaking-change check of `chinook schema check` (WIRE_JSON rules) names the change. Runs offline.

use super::{Report, Verdict};
use crate::codec::{EVENT_TYPE, JsonOptions, PROTO_SOURCES, Schemas, Transcoder};
use crate::schema::{self, Category, ProtoSet};

/// The v2 of customer.proto the scenario compiles: `name` and `email` swap numbers.
pub fn v2_customer_proto() -> String {
    PROTO_SOURCES[0].1.replace("string name = 2;", "string name = 3;").replacen(
        "string email = 3;",
        "string email = 2;",
        1,
    )
}

/// Writes v1 (the embedded sources) and v2 into a scratch directory and compiles
/// both, for the breaking-change check and for the v2 writer.
fn compile_versions() -> Result<(ProtoSet, ProtoSet), crate::codec::CodecError> {
    let dir = std::env::temp_dir().join(crate::events::new_id("chinook-schema-break"));
    let write = |version: &str, name: &str, text: &str| -> std::io::Result<()> {
        let path = dir.join(version).join(name);
        std::fs::create_dir_all(path.parent().expect("relative paths have parents"))?;
        std::fs::write(path, text)
    };
    let v2 = v2_customer_proto();
    let written = write("v1", PROTO_SOURCES[0].0, PROTO_SOURCES[0].1)
        .and_then(|()| write("v1", PROTO_SOURCES[1].0, PROTO_SOURCES[1].1))
        .and_then(|()| write("v2", PROTO_SOURCES[0].0, &v2))
        .and_then(|()| write("v2", PROTO_SOURCES[1].0, PROTO_SOURCES[1].1));
    let compiled = written.map_err(|e| e.to_string()).and_then(|()| {
        let load = |v: &'static str| ProtoSet::load(&dir.join(v), v).map_err(|e| e.to_string());
        Ok((load("v1")?, load("v2")?))
    });
    let _ = std::fs::remove_dir_all(&dir);
    compiled.map_err(|message| crate::codec::CodecError::Compile { message })
}

/// The WIRE_JSON breaking changes from v1 to v2, one line per place in v2
/// (a renamed field breaks both FIELD_SAME_NAME and FIELD_SAME_JSON_NAME).
fn breaking_changes(v1: &ProtoSet, v2: &ProtoSet) -> Vec<String> {
    let mut places: Vec<((String, u32), Vec<String>)> = Vec::new();
    for v in schema::check(v2, v1, Category::WireJson) {
        let key = (v.file.clone(), v.line);
        let text = format!("{} {}", v.rule, v.message);
        match places.iter_mut().find(|(k, _)| *k == key) {
            Some((_, texts)) => texts.push(text),
            None => places.push((key, vec![text])),
        }
    }
    places.into_iter().map(|((file, line), texts)| format!("{file}:{line}: {}", texts.join("; "))).collect()
}

pub fn schema_break() -> Result<Report, crate::codec::CodecError> {
    let v1 = Schemas::builtin().message(EVENT_TYPE)?;
    let (set1, set2) = compile_versions()?;
    let v2 = set2
        .pool
        .get_message_by_name(EVENT_TYPE)
        .ok_or_else(|| crate::codec::CodecError::Compile { message: format!("the v2 schema has no {EVENT_TYPE}") })?;
    // A producer on v2 writes a customer...
    let event_json = r#"{"eventId":"evt-schema-break","eventType":"CUSTOMER_EVENT_TYPE_CREATED","version":"1","aggregateId":"9",
        "customerCreated":{"customer":{"id":"9","name":"Astrid Gruber","email":"astrid@example.com"}}}"#;
    let writer = Transcoder::new(v2.clone(), JsonOptions::default());
    let sent = writer.from_json(event_json, 0..event_json.len(), "v2 event")?;
    let bytes = Transcoder::encode(&sent);
    // ...and a consumer still on v1 reads it: no error at all.
    let reader = Transcoder::new(v1.clone(), JsonOptions::default());
    let read = reader.decode(&bytes, 0);
    let customer = match &read {
        Ok(m) => reader.to_value(m)["customerCreated"]["customer"].clone(),
        Err(_) => serde_json::Value::Null,
    };
    let field = |name: &str| customer[name].as_str().unwrap_or("(absent)").to_string();
    let changes = breaking_changes(&set1, &set2);

    // What it teaches: no error at all, and each field holds the other one's value.
    let mut report = Report::new("schema-break");
    report.checks.push(Verdict::equal(
        "v1 reader decodes the v2 bytes",
        "without error",
        read.as_ref().map_or_else(|e| format!("error: {e}"), |_| "without error".into()),
    ));
    report.checks.push(Verdict::equal(
        "`name` as the v1 reader sees it (v2 wrote the email there)",
        "astrid@example.com",
        field("name"),
    ));
    report.checks.push(Verdict::equal(
        "`email` as the v1 reader sees it (v2 wrote the name there)",
        "Astrid Gruber",
        field("email"),
    ));
    report.checks.push(Verdict::equal("breaking changes found by the compatibility check", 2, changes.len()));
    report.figure("breaking_changes", changes.len());
    report.look_for = format!(
        "Protobuf identifies fields by number only: swapping the numbers of two string fields still decodes, silently swapping the data. The compatibility check says:\n  - {}",
        changes.join("\n  - ")
    );
    report.fix = "Never renumber or retype a field; add a new field with a new number and reserve retired ones. Run a breaking-change check in CI (`chinook schema check --rules wire-json`, or `buf breaking`) before a schema reaches the registry.".into();
    Ok(report)
}
