//! The decoder's fast path: protobuf bytes straight to proto3 JSON text,
//! walking the wire format against the descriptor without building a message
//! tree — no allocation per field.
//!
//! It handles canonical encodings (fields in number order, each singular field
//! once), which is what every protobuf encoder writes. Anything else — a field
//! out of order or repeated, a group, a well-known type other than Timestamp,
//! a value JSON cannot show exactly, or broken bytes — returns [`Fallback`],
//! and the caller decodes with prost-reflect instead, which also produces the
//! error message for broken bytes. Tests check both paths give the same JSON.

use base64::Engine;
use prost_reflect::{Cardinality, Kind, MessageDescriptor};

use super::wire::expected_wire_type;

/// "Use the general decoder for this one."
#[derive(Debug, PartialEq, Eq)]
pub struct Fallback;

type Result<T = ()> = std::result::Result<T, Fallback>;

const MAX_DEPTH: usize = 100;

/// Appends the JSON of the `desc` message in `bytes` to `out`; on `Err`, `out`
/// is restored to its length on entry.
pub fn write(desc: &MessageDescriptor, bytes: &[u8], int64_as_strings: bool, out: &mut Vec<u8>) -> Result {
    let mark = out.len();
    let w = Writer { int64_as_strings };
    w.message(desc, bytes, out, 0).inspect_err(|_| out.truncate(mark))
}

struct Writer {
    int64_as_strings: bool,
}

fn varint(bytes: &[u8], pos: &mut usize) -> Result<u64> {
    super::framing::read_varint(bytes, pos).ok_or(Fallback)
}

/// A field tag: a varint that fits 32 bits, as protobuf defines it (a longer
/// one is left to prost-reflect, which refuses it; found by tests/robustness.rs).
fn tag(bytes: &[u8], pos: &mut usize) -> Result<u64> {
    varint(bytes, pos).and_then(|t| if t > u64::from(u32::MAX) { Err(Fallback) } else { Ok(t) })
}

fn take<'a>(bytes: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8]> {
    let end = pos.checked_add(n).filter(|e| *e <= bytes.len()).ok_or(Fallback)?;
    let s = &bytes[*pos..end];
    *pos = end;
    Ok(s)
}

/// One value read off the wire, not yet shown.
#[derive(Clone, Copy)]
enum Raw<'a> {
    Varint(u64),
    I64(u64),
    I32(u32),
    Len(&'a [u8]),
}

fn read_value<'a>(bytes: &'a [u8], pos: &mut usize, wire_type: u8) -> Result<Raw<'a>> {
    Ok(match wire_type {
        0 => Raw::Varint(varint(bytes, pos)?),
        1 => Raw::I64(u64::from_le_bytes(take(bytes, pos, 8)?.try_into().map_err(|_| Fallback)?)),
        5 => Raw::I32(u32::from_le_bytes(take(bytes, pos, 4)?.try_into().map_err(|_| Fallback)?)),
        2 => {
            let len = usize::try_from(varint(bytes, pos)?).map_err(|_| Fallback)?;
            Raw::Len(take(bytes, pos, len)?)
        }
        _ => return Err(Fallback),
    })
}

fn is_default(kind: &Kind, raw: Raw<'_>) -> bool {
    match (kind, raw) {
        (Kind::Message(_), _) => false,
        (_, Raw::Varint(v)) => v == 0,
        (_, Raw::I64(v)) => v == 0,
        (_, Raw::I32(v)) => v == 0,
        (_, Raw::Len(b)) => b.is_empty(),
    }
}

fn push_key(out: &mut Vec<u8>, first: &mut bool, name: &str) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// A JSON string, escaped as serde_json escapes it.
fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn push_int(out: &mut Vec<u8>, v: impl itoa::Integer, quoted: bool) {
    let mut buf = itoa::Buffer::new();
    if quoted {
        out.push(b'"');
    }
    out.extend_from_slice(buf.format(v).as_bytes());
    if quoted {
        out.push(b'"');
    }
}

fn push_float(out: &mut Vec<u8>, v: f64) -> Result {
    if !v.is_finite() {
        return Err(Fallback);
    }
    serde_json::to_writer(&mut *out, &v).map_err(|_| Fallback)
}

/// `v` in decimal, zero-padded to `width` digits.
fn push_padded(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(v);
    out.extend(std::iter::repeat_n(b'0', width.saturating_sub(digits.len())));
    out.extend_from_slice(digits.as_bytes());
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl Writer {
    fn message(&self, desc: &MessageDescriptor, bytes: &[u8], out: &mut Vec<u8>, depth: usize) -> Result {
        if depth > MAX_DEPTH {
            return Err(Fallback);
        }
        if desc.full_name() == "google.protobuf.Timestamp" {
            return self.timestamp(bytes, out);
        }
        if desc.full_name().starts_with("google.protobuf.") {
            return Err(Fallback);
        }
        out.push(b'{');
        let mut first = true;
        let mut pos = 0;
        let mut last_number = 0u32;
        // The repeated field whose JSON array (or map object) is open.
        let mut open: Option<(u32, bool)> = None;
        while pos < bytes.len() {
            let tag = tag(bytes, &mut pos)?;
            let (number, wire_type) = (u32::try_from(tag >> 3).map_err(|_| Fallback)?, (tag & 7) as u8);
            if number == 0 || number < last_number || (number == last_number && open.is_none_or(|(n, _)| n != number)) {
                return Err(Fallback);
            }
            if let Some((n, is_map)) = open
                && n != number
            {
                out.push(if is_map { b'}' } else { b']' });
                open = None;
            }
            last_number = number;
            let raw = read_value(bytes, &mut pos, wire_type)?;
            let Some(field) = desc.get_field(number) else {
                continue;
            };
            let kind = field.kind();
            let expected = expected_wire_type(&kind);
            if field.is_map() {
                let Raw::Len(entry) = raw else {
                    return Err(Fallback);
                };
                let Kind::Message(entry_desc) = &kind else {
                    return Err(Fallback);
                };
                if open.is_none() {
                    push_key(out, &mut first, field.json_name());
                    out.push(b'{');
                    open = Some((number, true));
                } else {
                    out.push(b',');
                }
                self.map_entry(entry_desc, entry, out, depth)?;
            } else if field.cardinality() == Cardinality::Repeated {
                if open.is_none() {
                    push_key(out, &mut first, field.json_name());
                    out.push(b'[');
                    open = Some((number, false));
                } else {
                    out.push(b',');
                }
                match raw {
                    Raw::Len(packed) if expected != 2 => self.packed(&kind, packed, out)?,
                    _ if wire_type != expected => return Err(Fallback),
                    _ => self.value(&kind, raw, out, depth)?,
                }
            } else {
                if wire_type != expected {
                    return Err(Fallback);
                }
                if !field.supports_presence() && is_default(&kind, raw) {
                    continue;
                }
                push_key(out, &mut first, field.json_name());
                self.value(&kind, raw, out, depth)?;
            }
        }
        if let Some((_, is_map)) = open {
            out.push(if is_map { b'}' } else { b']' });
        }
        out.push(b'}');
        Ok(())
    }

    fn packed(&self, kind: &Kind, bytes: &[u8], out: &mut Vec<u8>) -> Result {
        let mut pos = 0;
        let wire_type = expected_wire_type(kind);
        let mut first = true;
        while pos < bytes.len() {
            if !first {
                out.push(b',');
            }
            first = false;
            let raw = read_value(bytes, &mut pos, wire_type)?;
            self.value(kind, raw, out, 0)?;
        }
        Ok(())
    }

    fn map_entry(&self, entry: &MessageDescriptor, bytes: &[u8], out: &mut Vec<u8>, depth: usize) -> Result {
        let (key_field, value_field) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        let (mut key, mut value) = (None, None);
        let mut pos = 0;
        while pos < bytes.len() {
            let tag = tag(bytes, &mut pos)?;
            let raw = read_value(bytes, &mut pos, (tag & 7) as u8)?;
            match tag >> 3 {
                1 if key.is_none() && (tag & 7) as u8 == expected_wire_type(&key_field.kind()) => key = Some(raw),
                2 if value.is_none() && (tag & 7) as u8 == expected_wire_type(&value_field.kind()) => value = Some(raw),
                _ => return Err(Fallback),
            }
        }
        // A missing key or value is its default (encoders leave defaults out).
        let default = |kind: &Kind| match kind {
            Kind::String | Kind::Bytes | Kind::Message(_) => Raw::Len(&[]),
            Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => Raw::I64(0),
            Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => Raw::I32(0),
            _ => Raw::Varint(0),
        };
        let key = key.unwrap_or_else(|| default(&key_field.kind()));
        let value = value.unwrap_or_else(|| default(&value_field.kind()));
        match (key_field.kind(), key) {
            (Kind::String, Raw::Len(b)) => push_str(out, std::str::from_utf8(b).map_err(|_| Fallback)?),
            (
                k
                @ (Kind::Bool | Kind::Int32 | Kind::Int64 | Kind::Uint32 | Kind::Uint64 | Kind::Sint32 | Kind::Sint64),
                raw,
            ) => {
                let mut text = Vec::with_capacity(24);
                self.scalar(&k, raw, &mut text, false)?;
                out.push(b'"');
                out.extend_from_slice(&text);
                out.push(b'"');
            }
            _ => return Err(Fallback),
        }
        out.push(b':');
        self.value(&value_field.kind(), value, out, depth)
    }

    fn value(&self, kind: &Kind, raw: Raw<'_>, out: &mut Vec<u8>, depth: usize) -> Result {
        match (kind, raw) {
            (Kind::Message(m), Raw::Len(b)) => self.message(m, b, out, depth + 1),
            (Kind::String, Raw::Len(b)) => {
                push_str(out, std::str::from_utf8(b).map_err(|_| Fallback)?);
                Ok(())
            }
            (Kind::Bytes, Raw::Len(b)) => {
                out.push(b'"');
                let start = out.len();
                out.resize(start + b.len().div_ceil(3) * 4, 0);
                let n = base64::engine::general_purpose::STANDARD
                    .encode_slice(b, &mut out[start..])
                    .map_err(|_| Fallback)?;
                out.truncate(start + n);
                out.push(b'"');
                Ok(())
            }
            (Kind::Enum(e), Raw::Varint(v)) => {
                let value = e.get_value(v as i32).ok_or(Fallback)?;
                push_str(out, value.name());
                Ok(())
            }
            (k, raw) => self.scalar(k, raw, out, self.int64_as_strings),
        }
    }

    fn scalar(&self, kind: &Kind, raw: Raw<'_>, out: &mut Vec<u8>, quote64: bool) -> Result {
        match (kind, raw) {
            (Kind::Bool, Raw::Varint(v)) => out.extend_from_slice(if v != 0 { b"true" } else { b"false" }),
            (Kind::Int32, Raw::Varint(v)) => push_int(out, v as i32, false),
            (Kind::Uint32, Raw::Varint(v)) => push_int(out, v as u32, false),
            (Kind::Sint32, Raw::Varint(v)) => push_int(out, ((v as u32 >> 1) as i32) ^ -((v & 1) as i32), false),
            (Kind::Int64, Raw::Varint(v)) => push_int(out, v as i64, quote64),
            (Kind::Uint64, Raw::Varint(v)) => push_int(out, v, quote64),
            (Kind::Sint64, Raw::Varint(v)) => push_int(out, ((v >> 1) as i64) ^ -((v & 1) as i64), quote64),
            (Kind::Fixed32, Raw::I32(v)) => push_int(out, v, false),
            (Kind::Sfixed32, Raw::I32(v)) => push_int(out, v as i32, false),
            (Kind::Fixed64, Raw::I64(v)) => push_int(out, v, quote64),
            (Kind::Sfixed64, Raw::I64(v)) => push_int(out, v as i64, quote64),
            (Kind::Float, Raw::I32(v)) => push_float(out, f64::from(f32::from_bits(v)))?,
            (Kind::Double, Raw::I64(v)) => push_float(out, f64::from_bits(v))?,
            _ => return Err(Fallback),
        }
        Ok(())
    }

    /// google.protobuf.Timestamp as RFC 3339 with 0, 3, 6 or 9 fraction digits.
    fn timestamp(&self, bytes: &[u8], out: &mut Vec<u8>) -> Result {
        let (mut seconds, mut nanos) = (0i64, 0i32);
        let (mut pos, mut last) = (0, 0);
        while pos < bytes.len() {
            let tag = tag(bytes, &mut pos)?;
            let v = varint(bytes, &mut pos)?;
            match (tag >> 3, tag & 7) {
                (1, 0) if last < 1 => (seconds, last) = (v as i64, 1),
                (2, 0) if last < 2 => (nanos, last) = (v as i32, 2),
                _ => return Err(Fallback),
            }
        }
        // The proto3 JSON range: 0001-01-01 to 9999-12-31.
        if !(-62_135_596_800..=253_402_300_799).contains(&seconds) || !(0..=999_999_999).contains(&nanos) {
            return Err(Fallback);
        }
        let (days, secs) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        out.push(b'"');
        push_padded(out, y as u64, 4);
        out.push(b'-');
        push_padded(out, u64::from(m), 2);
        out.push(b'-');
        push_padded(out, u64::from(d), 2);
        out.push(b'T');
        push_padded(out, (secs / 3600) as u64, 2);
        out.push(b':');
        push_padded(out, (secs / 60 % 60) as u64, 2);
        out.push(b':');
        push_padded(out, (secs % 60) as u64, 2);
        if nanos != 0 {
            out.push(b'.');
            let nanos = nanos as u64;
            if nanos.is_multiple_of(1_000_000) {
                push_padded(out, nanos / 1_000_000, 3);
            } else if nanos.is_multiple_of(1_000) {
                push_padded(out, nanos / 1_000, 6);
            } else {
                push_padded(out, nanos, 9);
            }
        }
        out.extend_from_slice(b"Z\"");
        Ok(())
    }
}
