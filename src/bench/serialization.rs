//! `chinook bench serialization`: the same customer events as protobuf and as
//! proto3 JSON — size, and encode and decode speed — each way through the
//! same reflection machinery (prost-reflect), plus protobuf through prost's
//! generated types, which is what a compiled producer or consumer uses. Every
//! decoded event is checked against the original, so a figure is never the
//! speed of getting it wrong.

use std::time::Instant;

use prost::Message as _;
use prost_reflect::DynamicMessage;
use serde::Serialize;

use crate::{
    codec::{CodecError, EVENT_TYPE, JsonOptions, Schemas, Transcoder, pb::events::v1::CustomerEvent},
    events::{self, EventKind, Facts},
};

/// One way of serializing, measured.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub format: &'static str,
    pub events: usize,
    pub bytes: usize,
    pub bytes_per_event: f64,
    /// Size against protobuf's (1.0 for protobuf).
    pub size_ratio: f64,
    pub encode_per_sec: f64,
    pub decode_per_sec: f64,
}

/// `n` events of every kind, in turn, with varied customers and versions.
pub fn sample(n: usize) -> Vec<CustomerEvent> {
    (0..n)
        .map(|i| {
            let facts = Facts { id: 1 + i as i64 % 59, ..Default::default() };
            events::event(EventKind::ALL[i % EventKind::ALL.len()], &facts, 1 + i as i64 % 7)
        })
        .collect()
}

fn per_sec(n: usize, started: Instant) -> f64 {
    n as f64 / started.elapsed().as_secs_f64().max(1e-9)
}

/// A measurement that could not be made.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BenchError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Codec(#[from] CodecError),
    #[error("{format}: event {index} did not decode to what was encoded")]
    #[diagnostic(code(chinook::bench::mismatch), help("a codec bug: please report it with the command you ran"))]
    Mismatch { format: &'static str, index: usize },
}

fn mismatch(format: &'static str, index: usize) -> BenchError {
    BenchError::Mismatch { format, index }
}

/// Measures `events` (see [`sample`]) each way.
pub fn measure(events: &[CustomerEvent]) -> Result<Vec<Row>, BenchError> {
    let n = events.len();
    let desc = Schemas::builtin().message(EVENT_TYPE)?;
    let transcoder = Transcoder::new(desc.clone(), JsonOptions::default());
    let row = |format, bytes: usize, encode, decode| Row {
        format,
        events: n,
        bytes,
        bytes_per_event: bytes as f64 / n.max(1) as f64,
        size_ratio: 0.0,
        encode_per_sec: encode,
        decode_per_sec: decode,
    };

    // protobuf, generated types.
    let started = Instant::now();
    let encoded: Vec<Vec<u8>> = events.iter().map(|e| e.encode_to_vec()).collect();
    let encode = per_sec(n, started);
    let started = Instant::now();
    for (i, bytes) in encoded.iter().enumerate() {
        if CustomerEvent::decode(bytes.as_slice()).ok().as_ref() != Some(&events[i]) {
            return Err(mismatch("protobuf", i));
        }
    }
    let decode = per_sec(n, started);
    let protobuf_bytes: usize = encoded.iter().map(Vec::len).sum();
    let mut rows = vec![row("protobuf (generated types)", protobuf_bytes, encode, decode)];

    // protobuf and JSON, through reflection.
    let messages: Vec<DynamicMessage> =
        encoded.iter().enumerate().map(|(i, b)| transcoder.decode(b, i)).collect::<Result<_, _>>()?;
    let started = Instant::now();
    let reflected: Vec<Vec<u8>> = messages.iter().map(Transcoder::encode).collect();
    let encode = per_sec(n, started);
    let started = Instant::now();
    for (i, bytes) in reflected.iter().enumerate() {
        if transcoder.decode(bytes, 0)? != messages[i] {
            return Err(mismatch("protobuf (reflection)", i));
        }
    }
    let decode = per_sec(n, started);
    rows.push(row("protobuf (reflection)", reflected.iter().map(Vec::len).sum(), encode, decode));

    let started = Instant::now();
    let texts: Vec<String> = messages
        .iter()
        .map(|m| {
            let mut out = Vec::new();
            transcoder.write_json(m, false, &mut out);
            String::from_utf8(out).expect("JSON is UTF-8")
        })
        .collect();
    let encode = per_sec(n, started);
    let started = Instant::now();
    for (i, text) in texts.iter().enumerate() {
        if transcoder.from_json(text, 0..text.len(), "event")? != messages[i] {
            return Err(mismatch("JSON", i));
        }
    }
    let decode = per_sec(n, started);
    rows.push(row("proto3 JSON (reflection)", texts.iter().map(String::len).sum(), encode, decode));

    for r in &mut rows {
        r.size_ratio = r.bytes as f64 / protobuf_bytes.max(1) as f64;
    }
    Ok(rows)
}
