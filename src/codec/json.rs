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
        Self {
            int64_as_strings: true,
            allow_empty: false,
        }
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
        Self {
            scratch: DynamicMessage::new(desc.clone()),
            desc,
            options,
            serialize,
        }
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

    fn merge(
        &self,
        msg: &mut DynamicMessage,
        bytes: &[u8],
        offset: usize,
    ) -> Result<(), CodecError> {
        if bytes.is_empty() && !self.options.allow_empty {
            return Err(CodecError::Empty { offset });
        }
        msg.merge(bytes).map_err(|e| {
            let fault = wire::check(&self.desc, bytes).err();
            CodecError::wire(self.desc.full_name(), bytes, offset, fault, e.to_string())
        })
    }

    /// Decodes one message and appends its JSON (compact or pretty) to `out`.
    pub fn decode_json(
        &mut self,
        bytes: &[u8],
        offset: usize,
        pretty: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let mut msg = std::mem::replace(&mut self.scratch, DynamicMessage::new(self.desc.clone()));
        msg.clear();
        let result = self
            .merge(&mut msg, bytes, offset)
            .map(|()| self.write_json(&msg, pretty, out));
        self.scratch = msg;
        result
    }

    /// Appends the JSON of `msg` to `out`.
    pub fn write_json(&self, msg: &DynamicMessage, pretty: bool, out: &mut Vec<u8>) {
        let result = if pretty {
            msg.serialize_with_options(
                &mut serde_json::Serializer::pretty(&mut *out),
                &self.serialize,
            )
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
        let parsed = DynamicMessage::deserialize_with_options(
            self.desc.clone(),
            &mut de,
            &DeserializeOptions::new(),
        )
        .and_then(|m| de.end().map(|()| m));
        parsed.map_err(|e| {
            let span = line_col_offset(slice, e.line(), e.column())
                .map(|at| SourceSpan::from((range.start + at, 1)));
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
    let start: usize = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    Some((start + column.saturating_sub(1)).min(text.len().saturating_sub(1)))
}
