//! `break malformed`: broken values sent to the schema-bound stand-in of
//! `customer_events` (never the student's topic), or, with `--bypass-schema`,
//! to an unchecked scratch topic and then through the consumer.

use rdkafka::{
    producer::{FutureProducer, FutureRecord},
    types::RDKafkaErrorCode,
};

use super::{Env, FaultError, Report, Scratch, Verdict};
use crate::kafka::{
    consumer::{self, ConsumeOptions, Decoders},
    scratch,
    topics::EVENTS,
};

/// The kinds of broken value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Truncated,
    BadWireType,
    FieldZero,
    Json,
    WrongType,
    Empty,
    Oversize,
    All,
}

impl Kind {
    const EACH: [Kind; 7] =
        [Kind::Truncated, Kind::BadWireType, Kind::FieldZero, Kind::Json, Kind::WrongType, Kind::Empty, Kind::Oversize];

    fn name(self) -> &'static str {
        match self {
            Kind::Truncated => "truncated",
            Kind::BadWireType => "bad-wire-type",
            Kind::FieldZero => "field-zero",
            Kind::Json => "json",
            Kind::WrongType => "wrong-type",
            Kind::Empty => "empty",
            Kind::Oversize => "oversize",
            Kind::All => "all",
        }
    }

    /// The bytes (the same as `fixtures/malformed/`, plus an oversize length).
    fn bytes(self) -> &'static [u8] {
        match self {
            Kind::Truncated => include_bytes!("../../fixtures/malformed/truncated.bin"),
            Kind::BadWireType => include_bytes!("../../fixtures/malformed/bad_wire_type.bin"),
            Kind::FieldZero => include_bytes!("../../fixtures/malformed/field_zero.bin"),
            Kind::Json => include_bytes!("../../fixtures/malformed/json_as_protobuf.bin"),
            Kind::WrongType => include_bytes!("../../fixtures/malformed/wrong_type.bin"),
            Kind::Empty => b"",
            // event_id claims 2 GiB of string.
            Kind::Oversize => b"\x0a\xff\xff\xff\xff\x07evt",
            Kind::All => b"",
        }
    }

    /// Would protobuf itself call these bytes a CustomerEvent?
    fn decodes(self) -> bool {
        matches!(self, Kind::Empty)
    }
}

/// `break malformed` settings.
pub struct Malformed {
    pub kind: Kind,
    pub bypass_schema: bool,
}

impl Malformed {
    pub async fn run(&self, env: &Env) -> Result<Report, FaultError> {
        env.conn.probe().await?;
        let kinds: Vec<Kind> = if self.kind == Kind::All { Kind::EACH.to_vec() } else { vec![self.kind] };
        let mut report = Report::new("malformed");
        let scratch = if self.bypass_schema {
            Some(Scratch::create(&env.conn, "break.malformed", &[("", 1), (".dlq", 1)]).await?)
        } else {
            None
        };
        let topic = match &scratch {
            Some(s) => s.topic().to_string(),
            None => {
                let bufstream = env.managed.as_ref().is_some_and(|s| s.engine == crate::broker::Engine::Bufstream);
                scratch::stand_in(&env.conn, EVENTS, bufstream).await?
            }
        };
        let (mut rejected, mut accepted) = (0, 0);
        for kind in &kinds {
            // One producer and one batch per value: a rejected record takes its whole batch with it.
            let producer: FutureProducer = env
                .conn
                .client_config()
                .set("linger.ms", "0")
                .create()
                .map_err(|e| crate::kafka::KafkaError::request("creating a producer", e))?;
            let sent = producer
                .send(
                    FutureRecord::<str, [u8]>::to(&topic).key("malformed").payload(kind.bytes()),
                    std::time::Duration::from_secs(10),
                )
                .await;
            let observed = match sent {
                Ok(_) => {
                    accepted += 1;
                    "accepted".to_string()
                }
                Err((e, _)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::InvalidRecord) => {
                    rejected += 1;
                    "rejected (INVALID_RECORD)".to_string()
                }
                Err((e, _)) => format!("failed: {e}"),
            };
            let expected = if self.bypass_schema || kind.decodes() { "accepted" } else { "rejected (INVALID_RECORD)" };
            report.checks.push(Verdict::equal(
                format!("{} ({} bytes)", kind.name(), kind.bytes().len()),
                expected,
                observed,
            ));
        }
        report.figure("sent", kinds.len());
        report.figure("rejected", rejected);
        report.figure("accepted", accepted);
        if let Some(scratch) = scratch {
            let options =
                ConsumeOptions { dead_letters: Some(scratch.names[1].clone()), ..ConsumeOptions::read_all(&topic) };
            let decoders = Decoders::lab(Some(crate::codec::EVENT_TYPE)).expect("built-in type");
            let summary = consumer::consume(&env.conn, &options, &decoders, |_| {}).await?;
            let undecodable = kinds.iter().filter(|k| !k.decodes()).count();
            report.checks.push(Verdict::equal("dead-lettered by the consumer", undecodable, summary.dead_lettered));
            report.checks.push(Verdict::equal(
                "skipped (decodes, but no event type)",
                kinds.len() - undecodable,
                summary.skipped,
            ));
            report.figure("dead_lettered", summary.dead_lettered);
            scratch.remove(&env.conn).await;
        }
        report.look_for = if self.bypass_schema {
            "Without enforcement every value lands; the consumer must cope: it decodes, fails, and parks the record in the DLQ with the reason in its headers. An empty value decodes as an all-defaults event and is only caught because its type is UNSPECIFIED.".into()
        } else {
            "The broker decodes each value as events.v1.CustomerEvent and answers INVALID_RECORD to the producer. Protobuf is lenient: an empty value is a valid message (every field at its default), so it slips through; a consumer still has to check what it gets.".into()
        };
        report.fix = "Validate before sending (encode from typed messages, never hand-built bytes), keep broker-side enforcement on, and give consumers a dead-letter path for what still gets through.".into();
        Ok(report)
    }
}
