//! Binary protobuf ⇄ proto3 JSON for one message type, on prost-reflect.
//!
//! The hot path (`decode_json`) reuses one `DynamicMessage` and writes straight
//! into the caller's buffer, so decoding a stream does not allocate a fresh
//! message tree and string per record.

use miette::{NamedSource, SourceSpan};
use prost::Message;
use prost_reflect::{DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions};

use super::{CodecError, wire};

/// Choices of the proto3 JSON mapping.
#[derive(Clone, Copy, Debug)]
pub struct JsonOptions {
    /// int64/uint64 as JSON strings (the proto3 spec's default) or as numbers.
    pub int64_as_strings: bool,
    /// Accept an empty payload as a message with every field at its default.
    pub allow_empty: bool,
}

impl Default for JsonOptions {
    fn default() -> Self {
        Self { int64_as_strings: true, allow_empty: false }
    }
}

/// Decodes and encodes one message type.
pub struct Transcoder {
    desc: MessageDescriptor,
    options: JsonOptions,
    serialize: SerializeOptions,
    scratch: DynamicMessage,
}

impl Transcoder {
    pub fn new(desc: MessageDescriptor, options: JsonOptions) -> Self {
        let serialize = SerializeOptions::new().stringify_64_bit_integers(options.int64_as_strings);
        Self { scratch: DynamicMessage::new(desc.clone()), desc, options, serialize }
    }

    pub fn descriptor(&self) -> &MessageDescriptor {
        &self.desc
    }

    /// Decodes one message; `offset` is where it starts in the whole input
    /// (for error messages).
    pub fn decode(&self, bytes: &[u8], offset: usize) -> Result<DynamicMessage, CodecError> {
        let mut msg = DynamicMessage::new(self.desc.clone());
        self.merge(&mut msg, bytes, offset)?;
        Ok(msg)
    }

    fn merge(&self, msg: &mut DynamicMessage, bytes: &[u8], offset: usize) -> Result<(), CodecError> {
        if bytes.is_empty() && !self.options.allow_empty {
            return Err(CodecError::Empty { offset });
        }
        msg.merge(bytes).map_err(|e| {
            let fault = wire::check(&self.desc, bytes).err();
            CodecError::wire(self.desc.full_name(), bytes, offset, fault, e.to_string())
        })
    }

    /// Decodes one message and appends its JSON (compact or pretty) to `out`.
    /// Compact output of a canonical encoding takes the allocation-free fast
    /// path; everything else (and every error) goes through prost-reflect.
    pub fn decode_json(
        &mut self,
        bytes: &[u8],
        offset: usize,
        pretty: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        if !pretty
            && !bytes.is_empty()
            && super::fastjson::write(&self.desc, bytes, self.options.int64_as_strings, out).is_ok()
        {
            return Ok(());
        }
        let mut msg = std::mem::replace(&mut self.scratch, DynamicMessage::new(self.desc.clone()));
        msg.clear();
        let result = self.merge(&mut msg, bytes, offset).map(|()| self.write_json(&msg, pretty, out));
        self.scratch = msg;
        result
    }

    /// Decodes one message to compact JSON appended to `out`: the fast path
    /// when it can, prost-reflect otherwise (shared, so `&self`).
    pub fn json_line(&self, bytes: &[u8], offset: usize, out: &mut Vec<u8>) -> Result<(), CodecError> {
        if !bytes.is_empty() && super::fastjson::write(&self.desc, bytes, self.options.int64_as_strings, out).is_ok() {
            return Ok(());
        }
        let msg = self.decode(bytes, offset)?;
        self.write_json(&msg, false, out);
        Ok(())
    }

    /// Appends the JSON of `msg` to `out`.
    pub fn write_json(&self, msg: &DynamicMessage, pretty: bool, out: &mut Vec<u8>) {
        let result = if pretty {
            msg.serialize_with_options(&mut serde_json::Serializer::pretty(&mut *out), &self.serialize)
        } else {
            msg.serialize_with_options(&mut serde_json::Serializer::new(&mut *out), &self.serialize)
        };
        // Writing into a Vec cannot fail, and every DynamicMessage has a JSON form.
        result.expect("a decoded message always serializes to JSON");
    }

    /// A JSON value of the message (for embedding in larger JSON documents).
    pub fn to_value(&self, msg: &DynamicMessage) -> serde_json::Value {
        msg.serialize_with_options(serde_json::value::Serializer, &self.serialize)
            .expect("a decoded message always serializes to JSON")
    }

    /// Parses the proto3 JSON in `text[range]` into a message; `name` labels
    /// the text in errors, which point into the whole text.
    pub fn from_json(
        &self,
        text: &str,
        range: std::ops::Range<usize>,
        name: &str,
    ) -> Result<DynamicMessage, CodecError> {
        let slice = &text[range.clone()];
        let mut de = serde_json::Deserializer::from_str(slice);
        let parsed = DynamicMessage::deserialize_with_options(self.desc.clone(), &mut de, &DeserializeOptions::new())
            .and_then(|m| de.end().map(|()| m));
        parsed.map_err(|e| {
            let span = line_col_offset(slice, e.line(), e.column()).map(|at| SourceSpan::from((range.start + at, 1)));
            CodecError::Json {
                type_name: self.desc.full_name().to_string(),
                reason: e.to_string(),
                src: NamedSource::new(name, text.to_string()),
                span,
            }
        })
    }

    /// Encodes a message to protobuf bytes.
    pub fn encode(msg: &DynamicMessage) -> Vec<u8> {
        msg.encode_to_vec()
    }
}

/// Byte offset of serde_json's 1-based line and column.
fn line_col_offset(text: &str, line: usize, column: usize) -> Option<usize> {
    if line == 0 {
        return None;
    }
    let start: usize = text.split_inclusive('\n').take(line - 1).map(str::len).sum();
    Some((start + column.saturating_sub(1)).min(text.len().saturating_sub(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        codec::{EVENT_TYPE, Schemas},
        events::{self, EventKind, Facts},
    };

    fn slow_json(t: &Transcoder, bytes: &[u8]) -> Option<serde_json::Value> {
        t.decode(bytes, 0).ok().map(|m| t.to_value(&m))
    }

    fn fast_json(t: &Transcoder, bytes: &[u8]) -> Option<serde_json::Value> {
        if bytes.is_empty() {
            return None; // decode_json never offers empty input to the fast path
        }
        let mut out = Vec::new();
        super::super::fastjson::write(&t.desc, bytes, t.options.int64_as_strings, &mut out).ok()?;
        Some(serde_json::from_slice(&out).expect("the fast path writes valid JSON"))
    }

    /// The fast path takes every generated event and agrees with prost-reflect.
    #[test]
    fn fast_path_agrees_with_prost_reflect_on_every_event_kind() {
        for int64_as_strings in [true, false] {
            let t = Transcoder::new(
                Schemas::builtin().message(EVENT_TYPE).unwrap(),
                JsonOptions { int64_as_strings, allow_empty: false },
            );
            for (i, kind) in EventKind::ALL.into_iter().enumerate() {
                let mut e = events::event(
                    kind,
                    &Facts { id: i as i64 * 7919, correlation_id: Some("c\"\\\n\u{1}é".into()), ..Default::default() },
                    3,
                );
                e.metadata.insert("k1".into(), "v1".into());
                e.metadata.insert("k2".into(), "".into());
                let bytes = prost::Message::encode_to_vec(&e);
                let fast = fast_json(&t, &bytes).unwrap_or_else(|| panic!("{kind:?} fell back"));
                assert_eq!(Some(fast), slow_json(&t, &bytes), "{kind:?}");
            }
        }
    }

    /// Mutated bytes: the fast path either agrees or steps aside, never differs.
    #[test]
    fn fast_path_never_disagrees_on_mutated_bytes() {
        let t = Transcoder::new(Schemas::builtin().message(EVENT_TYPE).unwrap(), JsonOptions::default());
        let base = prost::Message::encode_to_vec(&events::event(
            EventKind::CustomerUpdated,
            &Facts { id: 42, ..Default::default() },
            9,
        ));
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut fast_taken = 0;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut bytes = base.clone();
            let at = (seed % bytes.len() as u64) as usize;
            bytes[at] = (seed >> 32) as u8;
            if seed.is_multiple_of(5) {
                bytes.truncate(at);
            }
            if let Some(fast) = fast_json(&t, &bytes) {
                fast_taken += 1;
                assert_eq!(Some(fast), slow_json(&t, &bytes), "bytes {bytes:02x?}");
            }
        }
        assert!(fast_taken > 1000, "the fast path should take most single-byte changes ({fast_taken})");
    }
}
