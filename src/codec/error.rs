//! The codec's error type: every way bytes, JSON or schemas can be wrong,
//! each with where it happened and what to do about it.

use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

use super::wire::{WireFault, wire_type_name};

/// Bytes shown on each side of a fault in a hex excerpt.
const EXCERPT_CONTEXT: usize = 12;

#[derive(Debug, Error, Diagnostic)]
pub enum CodecError {
    #[error("unknown message type `{name}`")]
    #[diagnostic(
        code(chinook::codec::unknown_type),
        help("{}", if near.is_empty() { "give the full name with its package, e.g. events.v1.CustomerEvent; add --proto FILE for your own schemas".to_string() } else { format!("did you mean: {}?", near.join(", ")) })
    )]
    UnknownType { name: String, near: Vec<String> },

    #[error("could not compile the .proto files: {message}")]
    #[diagnostic(code(chinook::codec::compile), help("check the file paths and pass the import root with -I DIR"))]
    Compile { message: String },

    #[error("{type_name} does not decode: {reason}{at}", at = location(.record_offset, .fault))]
    #[diagnostic(code(chinook::codec::wire), help("{help}"))]
    Wire {
        type_name: String,
        reason: String,
        /// Offset of the record in the whole input (length-delimited streams, Confluent framing).
        record_offset: usize,
        fault: Option<WireFault>,
        help: String,
        #[source_code]
        excerpt: NamedSource<String>,
        #[label("{label}")]
        span: Option<SourceSpan>,
        label: String,
    },

    #[error("empty payload at byte {offset}: there is nothing to decode")]
    #[diagnostic(
        code(chinook::codec::empty),
        help(
            "an empty value decodes as a message with every field at its default, which is almost never what a producer meant (a tombstone, or a bug that sent nothing); pass --allow-empty to accept it"
        )
    )]
    Empty { offset: usize },

    #[error("bad framing at byte {offset}: {reason}")]
    #[diagnostic(code(chinook::codec::framing), help("{help}"))]
    Framing { offset: usize, reason: String, help: String },

    #[error("invalid {what} input at byte {offset}: {reason}")]
    #[diagnostic(
        code(chinook::codec::text),
        help("{what} input may only contain {allowed}; drop --{flag} if the input is raw bytes")
    )]
    Text { what: &'static str, flag: &'static str, allowed: &'static str, offset: usize, reason: String },

    #[error("the JSON is not a valid {type_name}: {reason}")]
    #[diagnostic(
        code(chinook::codec::json),
        help(
            "field names follow the proto3 JSON mapping (lowerCamelCase or the .proto name), enums by name, int64 as strings, timestamps as RFC 3339"
        )
    )]
    Json {
        type_name: String,
        reason: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("here")]
        span: Option<SourceSpan>,
    },
}

fn location(record_offset: &usize, fault: &Option<WireFault>) -> String {
    match fault {
        Some(f) => {
            let mut s = format!(" (byte {}", record_offset + f.offset);
            if let Some(n) = f.field {
                s += &format!(", field {n}");
            }
            if let Some(w) = f.wire_type {
                s += &format!(", wire type {w} {}", wire_type_name(w));
            }
            if !f.path.is_empty() {
                s += &format!(", inside `{}`", f.path);
            }
            s + ")"
        }
        None => String::new(),
    }
}

impl CodecError {
    /// A wire error for `bytes` (one record that starts at `record_offset` of
    /// the input), with a hex excerpt around the fault.
    pub fn wire(
        type_name: &str,
        bytes: &[u8],
        record_offset: usize,
        fault: Option<WireFault>,
        fallback: String,
    ) -> Self {
        let at = fault.as_ref().map_or(0, |f| f.offset.min(bytes.len()));
        let (excerpt, span) = hex_excerpt(bytes, record_offset, at);
        let reason = fault.as_ref().map_or(fallback, |f| f.reason.clone());
        let help = if looks_like_text(bytes) {
            "these bytes look like text (JSON?), not protobuf: encode it first with `chinook encode`".to_string()
        } else if fault.as_ref().is_some_and(|f| f.offset == 0 && f.field == Some(0)) {
            "the first byte is not a valid tag: check the framing flags (--hex, --base64, --length-delimited) and that the record is protobuf".to_string()
        } else {
            format!(
                "check that the producer wrote a `{type_name}` message (use --type to decode as another message type)"
            )
        };
        CodecError::Wire {
            type_name: type_name.to_string(),
            reason,
            record_offset,
            fault,
            help,
            excerpt: NamedSource::new("bytes (hex)", excerpt),
            span: Some(span),
            label: format!("byte {}", record_offset + at),
        }
    }

    /// The exit code this error should end the process with.
    pub fn exit_code(&self) -> i32 {
        match self {
            CodecError::UnknownType { .. } | CodecError::Compile { .. } => crate::exit::USAGE,
            _ => crate::exit::BAD_INPUT,
        }
    }
}

fn looks_like_text(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().take(64).all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
}

/// A one-line hex dump of the bytes around `at`, and the span of byte `at` in it.
fn hex_excerpt(bytes: &[u8], record_offset: usize, at: usize) -> (String, SourceSpan) {
    let from = at.saturating_sub(EXCERPT_CONTEXT);
    let to = (at + EXCERPT_CONTEXT).min(bytes.len());
    let mut text = format!("byte {}: ", record_offset + from);
    let mut span = (text.len(), 0);
    if from > 0 {
        text.push_str("… ");
        span.0 += 2;
    }
    for (i, b) in bytes[from..to].iter().enumerate() {
        if from + i == at {
            span = (text.len(), 2);
        }
        text.push_str(&format!("{b:02x} "));
    }
    if at >= bytes.len() {
        span = (text.len(), 0);
        text.push_str("<end>");
        span.1 = 5;
    } else if to < bytes.len() {
        text.push('…');
    }
    (text, span.into())
}
