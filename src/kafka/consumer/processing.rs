//! What happens to each record: decoded with its topic's type, routed by
//! event type (or command action) to a handler, retried, and parked in the
//! dead-letter topic with the reason when it cannot be processed.

use std::{collections::HashMap, time::Duration};

use prost::Message as _;
use rdkafka::{
    Message,
    message::{BorrowedMessage, Headers},
};
use serde::Serialize;
use serde_json::value::RawValue;

use super::{ConsumeOptions, Summary};
use crate::{
    codec::{Transcoder, pb::events::v1::CustomerEvent},
    kafka::{
        KafkaError,
        producer::OutRecord,
        records::{Bytes, RecordJson},
    },
};

/// A rule that makes the handler fail on purpose (for the `break` scenarios).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailRule {
    Key(String),
    EventId(String),
    Type(String),
    /// Every n-th record this consumer sees.
    Every(u64),
}

impl std::str::FromStr for FailRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (k, v) = s.split_once('=').ok_or_else(|| format!("{s:?}: use key=K, event-id=ID, type=TYPE or every=N"))?;
        match k {
            "key" => Ok(FailRule::Key(v.into())),
            "event-id" => Ok(FailRule::EventId(v.into())),
            "type" => Ok(FailRule::Type(v.to_ascii_uppercase())),
            "every" => v
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .map(FailRule::Every)
                .ok_or_else(|| format!("every={v}: give a positive number")),
            _ => Err(format!("{k}: use key=K, event-id=ID, type=TYPE or every=N")),
        }
    }
}

/// What happened to one record.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A handler processed it (route = event type or message kind).
    Handled { route: String, attempts: u32 },
    /// No handler for it (unspecified or unknown type): counted and committed.
    Skipped { route: String },
    /// Sent to the dead-letter topic, with the reason.
    DeadLettered { reason: String },
    /// Handled before, by this group (`--dedupe`): skipped and committed.
    Duplicate { id: String },
}

/// Which message type each topic's values are: the lab plan's, or one type
/// for every topic (`--type`).
pub struct Decoders {
    by_topic: HashMap<String, Transcoder>,
    every_topic: Option<Transcoder>,
    /// Where Confluent-framed values' schema ids are resolved.
    registry: Option<crate::registry::client::Client>,
}

/// A value with its Confluent header read: where the payload starts, and why
/// it cannot be processed when the registry does not vouch for it.
pub struct Unframed {
    pub start: usize,
    pub error: Option<String>,
}

impl Decoders {
    pub fn new(by_topic: HashMap<String, Transcoder>, every_topic: Option<Transcoder>) -> Self {
        Self { by_topic, every_topic, registry: None }
    }

    /// Resolves framed values' schema ids through `registry`.
    pub fn with_registry(self, registry: Option<crate::registry::client::Client>) -> Self {
        Self { registry, ..self }
    }

    /// Reads a value's Confluent header, when values are framed (a registry
    /// is given): the writer's schema must be known to the registry and be
    /// the type this consumer reads (a newer version of it is fine: the
    /// payload is read with the reader's type, unknown fields kept).
    pub async fn unframe(&self, topic: &str, value: &[u8]) -> Unframed {
        let Some(client) = &self.registry else { return Unframed { start: 0, error: None } };
        let header = match crate::codec::framing::strip_confluent(value) {
            Ok(Some(h)) => h,
            Ok(None) => return Unframed { start: 0, error: None },
            Err(e) => return Unframed { start: 0, error: Some(e.to_string()) },
        };
        let (schema, start) = header;
        let error = match client.message(&schema).await {
            Err(e) => Some(format!("schema id {}: {e}", schema.schema_id)),
            Ok(writer) => match self.get(topic).map(|t| t.descriptor().full_name().to_string()) {
                Some(reader) if reader != writer.full_name() => Some(format!(
                    "written as {} (schema id {}), but this consumer reads {reader}",
                    writer.full_name(),
                    schema.schema_id
                )),
                _ => None,
            },
        };
        Unframed { start, error }
    }

    /// The lab plan's type for each lab topic, or `every_topic` for all topics.
    pub fn lab(every_topic: Option<&str>) -> Result<Self, crate::codec::CodecError> {
        use crate::codec::{EVENT_TYPE, JsonOptions, Schemas};
        use crate::kafka::topics::DEAD_LETTERS;
        let schemas = Schemas::builtin();
        let t = |name: &str| schemas.message(name).map(|d| Transcoder::new(d, JsonOptions::default()));
        // The dead-letter topic accepts any bytes, but what lands there is mostly events.
        let typed = crate::labs::topic_plan().into_iter().filter_map(|p| Some((p.name, p.value_type?)));
        let by_topic = typed
            .chain([(DEAD_LETTERS.to_string(), EVENT_TYPE.to_string())])
            .map(|(topic, ty)| t(&ty).map(|d| (topic, d)))
            .collect::<Result<_, _>>()?;
        Ok(Self::new(by_topic, every_topic.map(t).transpose()?))
    }

    pub fn get(&self, topic: &str) -> Option<&Transcoder> {
        self.every_topic.as_ref().or_else(|| self.by_topic.get(topic))
    }
}

/// The handler route of a record: its event type (events), its action
/// (commands) or its topic (anything else). `Ok(None)`: no handler for it.
fn route_of(topic: &str, decoder: Option<&Transcoder>, value: &[u8]) -> Result<Option<String>, String> {
    let type_name = decoder.map(|d| d.descriptor().full_name().to_string());
    match type_name.as_deref() {
        Some(crate::codec::EVENT_TYPE) => event_route(value),
        Some(crate::codec::COMMAND_TYPE) => command_route(value),
        Some(other) => decoder
            .expect("a type name comes from a decoder")
            .decode(value, 0)
            .map(|_| Some(other.to_string()))
            .map_err(|e| format!("undecodable {other}: {e}")),
        None => Ok(Some(topic.to_string())),
    }
}

fn command_route(value: &[u8]) -> Result<Option<String>, String> {
    use crate::codec::pb::events::v1::{CustomerCommand, customer_command::Action};
    let command = CustomerCommand::decode(value).map_err(|e| format!("undecodable CustomerCommand: {e}"))?;
    Ok(match command.action {
        Some(Action::CreateCustomer(_)) => Some("CREATE_CUSTOMER".into()),
        Some(Action::UpdateCustomer(_)) => Some("UPDATE_CUSTOMER".into()),
        Some(Action::DeleteCustomer(_)) => Some("DELETE_CUSTOMER".into()),
        None => None,
    })
}

/// The handler route of an event: Ok(Some(type)) for a known type whose
/// payload matches it, Ok(None) for an unknown or unspecified type, Err for
/// a value that is not an event or whose type and payload disagree (poison).
pub fn event_route(value: &[u8]) -> Result<Option<String>, String> {
    let event = CustomerEvent::decode(value).map_err(|e| format!("undecodable CustomerEvent: {e}"))?;
    Ok(crate::events::route(&event)?.map(|t| t.as_str_name().to_string()))
}

fn fails(rule: &Option<FailRule>, seen: u64, key: &Option<Bytes>, payload: &[u8], route: &str) -> bool {
    match rule {
        None => false,
        Some(FailRule::Every(n)) => seen.is_multiple_of(*n),
        Some(FailRule::Key(k)) => key.as_ref() == Some(&Bytes::Text(k.clone())),
        Some(FailRule::Type(t)) => route.ends_with(t.as_str()),
        Some(FailRule::EventId(id)) => CustomerEvent::decode(payload).is_ok_and(|e| e.event_id == *id),
    }
}

/// Turns a message into its JSON form, decoding the value with the topic's decoder.
pub fn to_json(m: &BorrowedMessage<'_>, decoders: &Decoders) -> RecordJson {
    to_json_from(m, 0, decoders)
}

/// [`to_json`] of a value whose payload starts at `start` (after a Confluent header).
pub fn to_json_from(m: &BorrowedMessage<'_>, start: usize, decoders: &Decoders) -> RecordJson {
    let headers = m
        .headers()
        .map(|hs| hs.iter().map(|h| (h.key.to_string(), Bytes::from_slice(h.value.unwrap_or_default()))).collect())
        .unwrap_or_default();
    let payload = m.payload().unwrap_or_default().get(start..).unwrap_or_default();
    let (value, value_bytes, error) = match decoders.get(m.topic()) {
        Some(t) => {
            let mut text = Vec::with_capacity(payload.len() * 3);
            match t.json_line(payload, 0, &mut text) {
                Ok(()) => {
                    let text = String::from_utf8(text).expect("JSON text is UTF-8");
                    (Some(RawValue::from_string(text).expect("the codec writes valid JSON")), None, None)
                }
                Err(e) => (None, Some(Bytes::from_slice(payload)), Some(e.to_string())),
            }
        }
        None => (None, Some(Bytes::from_slice(payload)), None),
    };
    RecordJson {
        topic: m.topic().to_string(),
        partition: Some(m.partition()),
        offset: Some(m.offset()),
        key: m.key().map(Bytes::from_slice),
        headers,
        timestamp: m.timestamp().to_millis(),
        value,
        value_bytes,
        error,
    }
}

pub(super) async fn process(
    m: &BorrowedMessage<'_>,
    (json, unframed): (&RecordJson, Unframed),
    decoder: Option<&Transcoder>,
    options: &ConsumeOptions,
    summary: &mut Summary,
    dlq: Option<&rdkafka::producer::FutureProducer>,
) -> Result<Outcome, KafkaError> {
    let payload = m.payload().unwrap_or_default().get(unframed.start..).unwrap_or_default();
    let routed = match unframed.error {
        Some(reason) => Err(reason),
        None => route_of(m.topic(), decoder, payload),
    };
    let outcome = match routed {
        Err(reason) => Outcome::DeadLettered { reason },
        Ok(None) => Outcome::Skipped { route: "unknown or unspecified type".into() },
        Ok(Some(route)) => {
            if !options.handler_delay.is_zero() {
                tokio::time::sleep(options.handler_delay).await;
            }
            let mut attempts = 0;
            loop {
                attempts += 1;
                if !fails(&options.fail, summary.consumed, &json.key, payload, &route) {
                    break Outcome::Handled { route, attempts };
                }
                if attempts >= options.attempts.max(1) {
                    break Outcome::DeadLettered {
                        reason: format!("handler for {route} failed {attempts} times (--handler-fail)"),
                    };
                }
                summary.handler_retries += 1;
                tokio::time::sleep(Duration::from_millis(20 * 2u64.pow(attempts))).await;
            }
        }
    };
    match &outcome {
        Outcome::Handled { route, .. } => {
            summary.handled += 1;
            *summary.per_route.entry(route.clone()).or_default() += 1;
        }
        Outcome::Skipped { route } => {
            summary.skipped += 1;
            *summary.per_route.entry(route.clone()).or_default() += 1;
        }
        Outcome::DeadLettered { reason } => {
            summary.dead_lettered += 1;
            *summary.per_route.entry("dead-lettered".into()).or_default() += 1;
            if let (Some(producer), Some(topic)) = (dlq, &options.dead_letters) {
                dead_letter(producer, topic, m, reason).await?;
            }
        }
        // Found before processing (`--dedupe`); counted by the loop.
        Outcome::Duplicate { .. } => {}
    }
    Ok(outcome)
}

/// Copies the record to the dead-letter topic with the reason, and waits for the ack.
async fn dead_letter(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    m: &BorrowedMessage<'_>,
    reason: &str,
) -> Result<(), KafkaError> {
    let mut headers: Vec<(String, Vec<u8>)> = m
        .headers()
        .map(|hs| hs.iter().map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec())).collect())
        .unwrap_or_default();
    headers.extend([
        ("dlq-reason".to_string(), reason.as_bytes().to_vec()),
        ("dlq-original-topic".into(), m.topic().as_bytes().to_vec()),
        ("dlq-original-partition".into(), m.partition().to_string().into_bytes()),
        ("dlq-original-offset".into(), m.offset().to_string().into_bytes()),
    ]);
    let record = OutRecord {
        topic: topic.to_string(),
        partition: None,
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().unwrap_or_default().to_vec(),
        headers,
        timestamp: m.timestamp().to_millis(),
    };
    let report = crate::kafka::producer::send_all(producer, &[record]).await;
    match report.into_iter().next() {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => {
            Err(KafkaError::request(&format!("dead-lettering {}/{}@{}", m.topic(), m.partition(), m.offset()), e))
        }
        None => Ok(()),
    }
}
