//! Records as JSON lines: what `consume --format jsonl` writes and `produce
//! --input` reads back, losslessly. Keys, header values and undecodable values
//! that are not UTF-8 travel as base64, never lossy.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Text, or base64 when the bytes are not UTF-8.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Bytes {
    Text(String),
    Base64 { base64: String },
}

impl Bytes {
    pub fn from_slice(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(s) => Bytes::Text(s.to_string()),
            Err(_) => Bytes::Base64 { base64: base64::engine::general_purpose::STANDARD.encode(bytes) },
        }
    }

    pub fn to_vec(&self) -> Result<Vec<u8>, String> {
        match self {
            Bytes::Text(s) => Ok(s.as_bytes().to_vec()),
            Bytes::Base64 { base64 } => {
                base64::engine::general_purpose::STANDARD.decode(base64).map_err(|e| format!("bad base64: {e}"))
            }
        }
    }
}

/// The id a record carries in field 1 of its value (`event_id`,
/// `command_id`, `message_id` in the lab schemas), if it is a non-empty
/// string: what `produce --resume` and `consume --dedupe` recognise a record by.
pub fn record_id(value: &[u8]) -> Option<String> {
    #[derive(prost::Message)]
    struct Id {
        #[prost(string, tag = "1")]
        id: String,
    }
    <Id as prost::Message>::decode(value).ok().map(|i| i.id).filter(|i| !i.is_empty())
}

/// One record as a JSON object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordJson {
    pub topic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Bytes>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, Bytes)>,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// The decoded value (proto3 JSON text), when it decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Box<RawValue>>,
    /// The raw value, when it did not decode (or has no schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_bytes: Option<Bytes>,
    /// Why the value did not decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_utf8_travels_as_base64_and_back() {
        let raw = [0x0a, 0xff, 0x00];
        let b = Bytes::from_slice(&raw);
        assert!(matches!(b, Bytes::Base64 { .. }));
        let json = serde_json::to_string(&b).unwrap();
        let back: Bytes = serde_json::from_str(&json).unwrap();
        assert_eq!(back.to_vec().unwrap(), raw);
        assert_eq!(serde_json::to_string(&Bytes::from_slice(b"42")).unwrap(), "\"42\"");
    }

    #[test]
    fn a_record_is_known_by_field_1() {
        let e = crate::events::created(1);
        assert_eq!(record_id(&prost::Message::encode_to_vec(&e)), Some(e.event_id));
        assert_eq!(record_id(b""), None);
        assert_eq!(record_id(&[0xff]), None);
    }
}
