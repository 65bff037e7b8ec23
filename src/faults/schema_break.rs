//! `break schema-break`: a new schema version renumbers two fields; an event
//! written with it is read with the old one — no error, wrong values — and a
//! compatibility check names the change. Runs offline (no broker needed).

use super::{Report, Verdict};
use crate::codec::{EVENT_TYPE, JsonOptions, PROTO_SOURCES, Schemas, Transcoder, compat};

/// The v2 of customer.proto the scenario compiles: `name` and `email` swap numbers.
pub fn v2_customer_proto() -> String {
    PROTO_SOURCES[0].1.replace("string name = 2;", "string name = 3;").replacen(
        "string email = 3;",
        "string email = 2;",
        1,
    )
}

fn compile_v2() -> Result<Schemas, crate::codec::CodecError> {
    let dir = std::env::temp_dir().join(crate::events::new_id("chinook-schema-break"));
    let write = |name: &str, text: &str| -> std::io::Result<()> {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("relative paths have parents"))?;
        std::fs::write(path, text)
    };
    let written =
        write(PROTO_SOURCES[0].0, &v2_customer_proto()).and_then(|()| write(PROTO_SOURCES[1].0, PROTO_SOURCES[1].1));
    let compiled = written
        .map_err(|e| crate::codec::CodecError::Compile { message: e.to_string() })
        .and_then(|()| Schemas::compile(&[dir.join(PROTO_SOURCES[1].0)], std::slice::from_ref(&dir)));
    let _ = std::fs::remove_dir_all(&dir);
    compiled
}

pub fn schema_break() -> Result<Report, crate::codec::CodecError> {
    let v1 = Schemas::builtin().message(EVENT_TYPE)?;
    let v2 = compile_v2()?.message(EVENT_TYPE)?;
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
    let changes = compat::breaking_changes(&v1, &v2);

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
    report.fix = "Never renumber or retype a field; add a new field with a new number and reserve retired ones. Run a breaking-change check in CI (`buf breaking`) before a schema reaches the registry.".into();
    Ok(report)
}
