//! Validation of Confluent-framed values, as Bufstream does for topics whose
//! records carry a schema id: on a framed topic of the embedded broker, each
//! value must start with the Confluent header, name a schema registered under
//! the topic's value subject, point at a message of that schema, and decode
//! as it. Otherwise the batch is refused with INVALID_RECORD, like tansu's
//! own validation of unframed topics.

use std::collections::BTreeSet;

use prost_reflect::DynamicMessage;
use tansu_sans_io::record::{deflated, inflated};

use crate::codec::framing;
use crate::registry::{Registry, value_subject};

/// The prefix of the scratch topics lab checks make for framed values
/// (`Scratch::create(conn, "check.framed", …)`).
pub const FRAMED_SCRATCH: &str = "chinook.check.framed.";

/// The framed topics of one broker and the registry that judges them.
#[derive(Clone, Debug)]
pub struct Framed {
    pub registry: Registry,
    pub topics: BTreeSet<String>,
}

impl Framed {
    /// The framed topics of the lab plan (and their check stand-ins).
    pub fn lab(registry: Registry) -> Self {
        let topics = crate::labs::topic_plan()
            .into_iter()
            .filter(|t| t.framed)
            .flat_map(|t| [crate::kafka::topics::check_topic(&t.name), t.name])
            .collect();
        Self { registry, topics }
    }

    /// Whether `topic`'s values are framed: a framed lab topic, its check
    /// stand-in, or a framed scratch topic of a lab check (not its DLQ).
    fn framed(&self, topic: &str) -> bool {
        self.topics.contains(topic) || (topic.starts_with(FRAMED_SCRATCH) && !topic.ends_with(".dlq"))
    }

    /// Why a batch for `topic` must be refused (`None`: accept it).
    pub fn refuse(&self, topic: &str, batch: &deflated::Batch) -> Option<String> {
        if !self.framed(topic) || batch.is_control() {
            return None;
        }
        let batch = match inflated::Batch::try_from(batch) {
            Ok(b) => b,
            Err(e) => return Some(format!("the batch does not decompress: {e:?}")),
        };
        let subject = value_subject(topic);
        batch.records.iter().enumerate().find_map(|(i, record)| {
            let value = record.value().unwrap_or_default();
            self.value(&subject, &value).err().map(|why| format!("record {i}: {why}"))
        })
    }

    fn value(&self, subject: &str, value: &[u8]) -> Result<(), String> {
        let (header, at) = framing::strip_confluent(value)
            .map_err(|e| e.to_string())?
            .ok_or("the value has no Confluent header (it must start with byte 0x00 and a schema id)")?;
        let holders = self
            .registry
            .subjects_of(header.schema_id)
            .map_err(|_| format!("schema id {} is not registered", header.schema_id))?;
        if !holders.iter().any(|(s, _)| s == subject) {
            return Err(format!("schema id {} is not a version of subject {subject}", header.schema_id));
        }
        let compiled = self.registry.compiled(header.schema_id).map_err(|e| e.message)?;
        let message = compiled
            .message(&header.message_indexes)
            .ok_or_else(|| format!("schema {} has no message at {:?}", header.schema_id, header.message_indexes))?;
        DynamicMessage::decode(message.clone(), &value[at..])
            .map(drop)
            .map_err(|e| format!("the payload does not decode as {}: {e}", message.full_name()))
    }
}
