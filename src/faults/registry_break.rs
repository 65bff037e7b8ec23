//! `break registry-break`: a breaking schema change deployed under a running
//! consumer. Events framed with the schema's first version are read; the
//! registry refuses the breaking version (a field's type changed) under the
//! topic's BACKWARD subject with 409; forced through (compatibility NONE),
//! it is registered, events written with it reach the topic — the broker only
//! checks them against the new version — and the consumer, which reads with
//! its own type, dead-letters every one of them.

use super::{Env, FaultError, Report, Scratch, Verdict};
use crate::{
    codec::{EVENT_TYPE, framing::{self, Confluent}},
    events,
    kafka::{
        consumer::{self, ConsumeOptions, Decoders, StartAt},
        producer::{self, OutRecord, ProduceOptions},
    },
    registry::{self, Level, client::{Client, ClientError}},
    schema::examples::{Change, FILE},
};

/// Events written with each version.
const EACH: usize = 5;

/// `break registry-break`.
pub struct RegistryBreak;

/// Events for customers `first..first + EACH`, each value made by `value`.
fn framed(topic: &str, first: i64, value: impl Fn(Vec<u8>) -> Vec<u8>) -> Vec<OutRecord> {
    (first..first + EACH as i64)
        .map(|id| {
            let mut record = OutRecord::event(topic, &events::created(id));
            record.value = value(record.value);
            record
        })
        .collect()
}

impl RegistryBreak {
    pub async fn run(&self, env: &Env) -> Result<Report, FaultError> {
        let addr = env.managed.as_ref().and_then(|s| s.registry).ok_or(FaultError::NeedsRegistry)?;
        let client = Client::new(&format!("http://{addr}"));
        let scratch = Scratch::create(&env.conn, "check.framed", &[("", 1), (".dlq", 1)]).await?;
        let (topic, dlq) = (scratch.names[0].clone(), scratch.names[1].clone());
        let subject = registry::value_subject(&topic);
        let outcome = self.inject(env, &client, &topic, &dlq, &subject).await;
        let _ = client.delete_subject(&subject).await;
        scratch.remove(&env.conn).await;
        outcome
    }

    async fn inject(&self, env: &Env, client: &Client, topic: &str, dlq: &str, subject: &str) -> Result<Report, FaultError> {
        let registry_error = |e: ClientError| FaultError::Registry(Box::new(e));
        let v1 = client.register_builtin(topic, EVENT_TYPE).await.map_err(registry_error)?;
        let send = |records| async { producer::produce(&env.conn, &ProduceOptions::default(), records, |_| {}).await };
        send(framed(topic, 1, |v| registry::client::frame(&v1, &v))).await?;

        let mut chain = registry::builtin_chain(FILE).expect("the events file is built in");
        chain.last_mut().expect("the file itself").1.schema = Change::TypeChanged.apply();
        let refused = match client.register_chain(subject, chain.clone()).await {
            Err(ClientError::Refused { source, .. }) => Some(source),
            Ok(_) => None,
            Err(e) => return Err(registry_error(e)),
        };
        client.set_compatibility(subject, Level::None).await.map_err(registry_error)?;
        let v2 = client.register_chain(subject, chain).await.map_err(registry_error)?.id;
        let v2 = Confluent { schema_id: v2, message_indexes: vec![0] };
        // Written with the new version: `version` (field 4) is text now.
        let forced = send(framed(topic, 100, |mut v| {
            framing::write_varint(4 << 3 | 2, &mut v);
            framing::write_varint(1, &mut v);
            v.push(b'7');
            registry::client::frame(&v2, &v)
        }))
        .await;

        let options = ConsumeOptions {
            start: StartAt::Start,
            until_end: true,
            dead_letters: Some(dlq.to_string()),
            standalone: true,
            ..ConsumeOptions::new(events::new_id("break-registry"), vec![topic.to_string()])
        };
        let decoders = Decoders::lab(Some(EVENT_TYPE)).expect("built-in type").with_registry(Some(client.clone()));
        let summary = consumer::consume(&env.conn, &options, &decoders, |_| {}).await?;

        let mut report = Report::new("registry-break");
        report.checks.push(Verdict::holds(
            "the registry refuses the breaking version (BACKWARD)",
            "HTTP 409",
            refused.as_ref().map_or("accepted".to_string(), |e| format!("HTTP {}: {}", e.status, e.message)),
            refused.as_ref().is_some_and(|e| e.status == 409),
        ));
        report.checks.push(Verdict::holds(
            "forced (compatibility NONE), its events reach the topic",
            format!("{EACH} acknowledged"),
            forced.as_ref().map_or_else(|e| e.to_string(), |r| format!("{} acknowledged", r.acked)),
            forced.as_ref().is_ok_and(|r| r.acked == EACH),
        ));
        report.checks.push(Verdict::equal("events of the first version handled", EACH, summary.handled));
        report.checks.push(Verdict::equal("events of the forced version dead-lettered", EACH, summary.dead_lettered));
        report.figure("first_schema_id", v1.schema_id);
        report.figure("forced_schema_id", v2.schema_id);
        report.figure("handled", summary.handled);
        report.figure("dead_lettered", summary.dead_lettered);
        report.look_for = format!(
            "The registry said no: `version` changed from int64 to string, so data already on the topic could not be read with the new schema (its answer names the rule, FIELD_WIRE_COMPATIBLE_TYPE). Forced with compatibility NONE, schema {} was registered and the broker took its events — they match the new version. The consumer, still reading with its own type, could not decode them: all {EACH} went to the dead-letter topic with the reason; the {EACH} older events were fine.",
            v2.schema_id
        );
        report.fix = "Keep subjects at BACKWARD (or FULL) and never force a change through; add a new field instead of changing a type, reserve what you remove, and run `chinook schema check` (or `buf breaking`) in CI so the change is caught before the registry sees it.".into();
        Ok(report)
    }
}
