//! How records are laid out around the protobuf bytes: hex or base64 text,
//! varint length-delimited streams, and the Confluent schema-registry header.
//!
//! A protobuf message can never start with `0x00` (that would be field 0), so a
//! leading zero byte unambiguously means the Confluent wire format.

use base64::Engine;

use super::CodecError;

/// The Confluent magic byte.
pub const CONFLUENT_MAGIC: u8 = 0;

/// How the input text carries the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TextEncoding {
    #[default]
    Raw,
    Hex,
    Base64,
}

/// Turns hex or base64 text into bytes (raw input is returned as is).
pub fn unwrap_text(input: Vec<u8>, encoding: TextEncoding) -> Result<Vec<u8>, CodecError> {
    match encoding {
        TextEncoding::Raw => Ok(input),
        TextEncoding::Hex => {
            let mut out = Vec::with_capacity(input.len() / 2);
            let mut high: Option<u8> = None;
            let mut i = 0;
            while i < input.len() {
                let c = input[i];
                if c.is_ascii_whitespace() || c == b':' {
                    i += 1;
                    continue;
                }
                if c == b'0' && input.get(i + 1).is_some_and(|n| *n == b'x' || *n == b'X') && high.is_none() {
                    i += 2;
                    continue;
                }
                let nibble = (c as char).to_digit(16).ok_or_else(|| CodecError::Text {
                    what: "hex",
                    flag: "hex",
                    allowed: "hex digits, whitespace, ':' and 0x prefixes",
                    offset: i,
                    reason: format!("{:?} is not a hex digit", c as char),
                })? as u8;
                match high.take() {
                    None => high = Some(nibble),
                    Some(h) => out.push(h << 4 | nibble),
                }
                i += 1;
            }
            if high.is_some() {
                return Err(CodecError::Text {
                    what: "hex",
                    flag: "hex",
                    allowed: "pairs of hex digits",
                    offset: input.len(),
                    reason: "odd number of hex digits".into(),
                });
            }
            Ok(out)
        }
        TextEncoding::Base64 => {
            let text: Vec<u8> = input.into_iter().filter(|c| !c.is_ascii_whitespace()).collect();
            base64::engine::general_purpose::STANDARD.decode(&text).map_err(|e| {
                let offset = match e {
                    base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _) => at,
                    _ => text.len(),
                };
                CodecError::Text {
                    what: "base64",
                    flag: "base64",
                    allowed: "the standard base64 alphabet",
                    offset,
                    reason: e.to_string(),
                }
            })
        }
    }
}

/// Encodes bytes as text for output.
pub fn wrap_text(bytes: &[u8], encoding: TextEncoding) -> Vec<u8> {
    match encoding {
        TextEncoding::Raw => bytes.to_vec(),
        TextEncoding::Hex => {
            let mut s = String::with_capacity(bytes.len() * 2 + 1);
            for b in bytes {
                s.push_str(&format!("{b:02x}"));
            }
            s.push('\n');
            s.into_bytes()
        }
        TextEncoding::Base64 => {
            let mut s = base64::engine::general_purpose::STANDARD.encode(bytes);
            s.push('\n');
            s.into_bytes()
        }
    }
}

/// Reads a base-128 varint at `*pos`; `None` when the input ends or it runs past 10 bytes.
pub fn read_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Appends a base-128 varint.
pub fn write_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// One record of a length-delimited stream: where it starts and its bytes.
pub type Frame<'a> = (usize, &'a [u8]);

/// Splits a stream of varint-length-prefixed messages. A broken prefix ends
/// the stream (nothing after it can be trusted); the error says where.
pub fn length_delimited(bytes: &[u8]) -> impl Iterator<Item = Result<Frame<'_>, CodecError>> + '_ {
    let mut pos = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done || pos >= bytes.len() {
            return None;
        }
        let at = pos;
        let Some(len) = read_varint(bytes, &mut pos) else {
            done = true;
            return Some(Err(CodecError::Framing {
                offset: at,
                reason: "the length prefix is cut off or longer than 10 bytes".into(),
                help: "a length-delimited stream is <varint length><message> repeated; this input may not be length-delimited".into(),
            }));
        };
        let remaining = bytes.len() - pos;
        if len > remaining as u64 {
            done = true;
            return Some(Err(CodecError::Framing {
                offset: at,
                reason: format!("the length prefix says {len} bytes but only {remaining} remain"),
                help: "the stream is truncated or the prefix is corrupt; records before this one were read".into(),
            }));
        }
        let record = &bytes[pos..pos + len as usize];
        pos += len as usize;
        Some(Ok((pos - len as usize, record)))
    })
}

/// The Confluent schema-registry header found in front of a record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Confluent {
    pub schema_id: u32,
    /// Indexes of the message in its .proto file (`[0]` = the first message).
    pub message_indexes: Vec<i64>,
}

fn zigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn unzigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Strips a Confluent header when the record starts with the magic byte;
/// returns the header and the offset where the protobuf payload starts.
pub fn strip_confluent(bytes: &[u8]) -> Result<Option<(Confluent, usize)>, CodecError> {
    if bytes.first() != Some(&CONFLUENT_MAGIC) {
        return Ok(None);
    }
    let bad = |offset, reason: &str| {
        CodecError::Framing {
        offset,
        reason: reason.to_string(),
        help: "a leading 0x00 means the Confluent wire format: 0x00, a 4-byte big-endian schema id, then zig-zag varint message indexes".into(),
    }
    };
    let id: [u8; 4] =
        bytes.get(1..5).and_then(|s| s.try_into().ok()).ok_or_else(|| bad(1, "the 4-byte schema id is cut off"))?;
    let mut pos = 5;
    let count = read_varint(bytes, &mut pos).ok_or_else(|| bad(5, "the message-index count is cut off"))?;
    let count = zigzag(count);
    let message_indexes = if count == 0 {
        vec![0]
    } else {
        if !(0..=100).contains(&count) {
            return Err(bad(5, &format!("message-index count {count} is not plausible")));
        }
        let mut v = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let at = pos;
            v.push(zigzag(read_varint(bytes, &mut pos).ok_or_else(|| bad(at, "a message index is cut off"))?));
        }
        v
    };
    Ok(Some((Confluent { schema_id: u32::from_be_bytes(id), message_indexes }, pos)))
}

/// Writes the Confluent header (`[0]` is written as a single `0x00`).
pub fn write_confluent(header: &Confluent, out: &mut Vec<u8>) {
    out.push(CONFLUENT_MAGIC);
    out.extend_from_slice(&header.schema_id.to_be_bytes());
    if header.message_indexes == [0] {
        out.push(0);
    } else {
        write_varint(unzigzag(header.message_indexes.len() as i64), out);
        for i in &header.message_indexes {
            write_varint(unzigzag(*i), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confluent_round_trip_and_short_form() {
        for indexes in [vec![0], vec![1, 2], vec![3]] {
            let header = Confluent { schema_id: 0x01020304, message_indexes: indexes };
            let mut out = Vec::new();
            write_confluent(&header, &mut out);
            out.extend_from_slice(b"\x0a\x01x");
            let (seen, at) = strip_confluent(&out).unwrap().unwrap();
            assert_eq!(seen, header);
            assert_eq!(&out[at..], b"\x0a\x01x");
        }
        let mut short = Vec::new();
        write_confluent(&Confluent { schema_id: 7, message_indexes: vec![0] }, &mut short);
        assert_eq!(short, [0, 0, 0, 0, 7, 0]);
    }

    #[test]
    fn non_confluent_is_left_alone_and_cut_headers_fail() {
        assert_eq!(strip_confluent(b"\x0a\x00").unwrap(), None);
        assert!(matches!(strip_confluent(&[0, 0, 1]), Err(CodecError::Framing { offset: 1, .. })));
    }

    #[test]
    fn length_delimited_splits_and_reports_oversize() {
        let frames: Vec<_> = length_delimited(&[1, 0xaa, 0, 2, 0xbb, 0xcc]).collect::<Result<_, _>>().unwrap();
        assert_eq!(frames, vec![(1, &[0xaa][..]), (3, &[][..]), (4, &[0xbb, 0xcc][..])]);
        let mut it = length_delimited(&[1, 0xaa, 9, 1]);
        assert!(it.next().unwrap().is_ok());
        assert!(matches!(it.next(), Some(Err(CodecError::Framing { offset: 2, .. }))));
        assert!(it.next().is_none());
    }

    #[test]
    fn hex_and_base64_text() {
        assert_eq!(unwrap_text(b"0x0a 01\nff".to_vec(), TextEncoding::Hex).unwrap(), [0x0a, 0x01, 0xff]);
        assert!(matches!(unwrap_text(b"0a zz".to_vec(), TextEncoding::Hex), Err(CodecError::Text { offset: 3, .. })));
        assert_eq!(unwrap_text(b"CgF4\n".to_vec(), TextEncoding::Base64).unwrap(), b"\x0a\x01x");
        assert_eq!(wrap_text(b"\x0a\x01x", TextEncoding::Base64), b"CgF4\n");
    }
}
