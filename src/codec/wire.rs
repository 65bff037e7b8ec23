//! A protobuf wire-format walker that finds *where* a message is broken.
//!
//! prost-reflect says a message does not decode; this module says why and
//! where: the byte offset, the field number and wire type it saw, and what the
//! schema expected there. It walks the bytes against the descriptor without
//! allocating, recursing into nested messages with absolute offsets.

use prost_reflect::{Cardinality, FieldDescriptor, Kind, MessageDescriptor};

/// Deepest nesting we follow before calling the input hostile.
const MAX_DEPTH: usize = 100;
/// The largest field number protobuf allows (2^29 - 1).
const MAX_FIELD: u64 = (1 << 29) - 1;

/// The first fault found in a message, located to the byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireFault {
    /// Offset from the start of the message bytes given to [`check`].
    pub offset: usize,
    /// The field being read, when the fault is inside one.
    pub field: Option<u32>,
    /// The wire type on the tag, when one was read.
    pub wire_type: Option<u8>,
    /// Dotted path of field names from the top message (`customer_created.customer.email`).
    pub path: String,
    /// What is wrong, in words.
    pub reason: String,
}

/// The name protobuf's encoding guide gives a wire type.
pub fn wire_type_name(wire_type: u8) -> &'static str {
    match wire_type {
        0 => "VARINT",
        1 => "I64",
        2 => "LEN",
        3 => "SGROUP",
        4 => "EGROUP",
        5 => "I32",
        _ => "invalid",
    }
}

/// Walks `bytes` as a `desc` message; `Ok(())` when the wire format is sound.
pub fn check(desc: &MessageDescriptor, bytes: &[u8]) -> Result<(), WireFault> {
    let mut walker = Walker { bytes, path: Vec::new() };
    walker.message(Some(desc), 0, bytes.len(), None, 0).map(|_| ())
}

struct Walker<'a> {
    bytes: &'a [u8],
    path: Vec<String>,
}

impl Walker<'_> {
    fn fault(&self, offset: usize, field: Option<u32>, wire_type: Option<u8>, reason: String) -> WireFault {
        WireFault { offset, field, wire_type, path: self.path.join("."), reason }
    }

    fn varint(&self, pos: &mut usize, end: usize, what: &str) -> Result<u64, WireFault> {
        let start = *pos;
        let mut value = 0u64;
        for i in 0..10 {
            if *pos >= end {
                return Err(self.fault(
                    start,
                    None,
                    None,
                    format!("{what} is cut off: the input ends inside a varint"),
                ));
            }
            let b = self.bytes[*pos];
            *pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.fault(start, None, None, format!("{what} is a varint longer than 10 bytes")))
    }

    /// Walks one message between `start` and `end`; inside a group, stops at
    /// the matching end-group tag and returns the offset after it.
    fn message(
        &mut self,
        desc: Option<&MessageDescriptor>,
        start: usize,
        end: usize,
        group: Option<u32>,
        depth: usize,
    ) -> Result<usize, WireFault> {
        if depth > MAX_DEPTH {
            return Err(self.fault(start, None, None, format!("messages nested deeper than {MAX_DEPTH} levels")));
        }
        let mut pos = start;
        while pos < end {
            let tag_at = pos;
            let tag = self.varint(&mut pos, end, "a field tag")?;
            let number = tag >> 3;
            let wire_type = (tag & 7) as u8;
            if number == 0 {
                return Err(self.fault(tag_at, Some(0), Some(wire_type), "field number 0 is not allowed (tags start at 1); these bytes are probably not protobuf, or start mid-record".into()));
            }
            if number > MAX_FIELD {
                return Err(self.fault(
                    tag_at,
                    None,
                    Some(wire_type),
                    format!("field number {number} is above the protobuf maximum of {MAX_FIELD}"),
                ));
            }
            let number = number as u32;
            if wire_type > 5 {
                return Err(self.fault(tag_at, Some(number), Some(wire_type), format!("wire type {wire_type} does not exist (valid: 0 VARINT, 1 I64, 2 LEN, 3 SGROUP, 4 EGROUP, 5 I32)")));
            }
            let field = desc.and_then(|d| d.get_field(number));
            if let Some(f) = &field {
                self.expect_wire_type(f, wire_type, tag_at)?;
            }
            let fail = |w: &Self, at: usize, reason: String| w.fault(at, Some(number), Some(wire_type), reason);
            match wire_type {
                0 => {
                    self.varint(&mut pos, end, &format!("the value of field {number}"))?;
                }
                1 | 5 => {
                    let size = if wire_type == 1 { 8 } else { 4 };
                    if end - pos < size {
                        return Err(fail(
                            self,
                            tag_at,
                            format!(
                                "field {number} needs {size} bytes ({}) but only {} remain",
                                wire_type_name(wire_type),
                                end - pos
                            ),
                        ));
                    }
                    pos += size;
                }
                2 => {
                    let len = self.varint(&mut pos, end, &format!("the length of field {number}"))?;
                    if len > (end - pos) as u64 {
                        return Err(fail(
                            self,
                            tag_at,
                            format!(
                                "field {number} says it is {len} bytes long but only {} remain: the record is truncated or the length is corrupt",
                                end - pos
                            ),
                        ));
                    }
                    let body = (pos, pos + len as usize);
                    if let Some(f) = &field {
                        self.len_body(f, number, body, depth)?;
                    }
                    pos = body.1;
                }
                3 => {
                    let inner = match field.as_ref().map(FieldDescriptor::kind) {
                        Some(Kind::Message(m)) => Some(m),
                        _ => None,
                    };
                    pos = self.message(inner.as_ref(), pos, end, Some(number), depth + 1)?;
                }
                4 => {
                    return if group == Some(number) {
                        Ok(pos)
                    } else {
                        Err(fail(
                            self,
                            tag_at,
                            format!("end-group tag for field {number} without a matching start-group"),
                        ))
                    };
                }
                _ => unreachable!("wire types above 5 are rejected with the tag"),
            }
        }
        match group {
            Some(number) => Err(self.fault(
                end,
                Some(number),
                Some(3),
                format!("group field {number} is never closed: the input ends first"),
            )),
            None => Ok(pos),
        }
    }

    fn expect_wire_type(&self, field: &FieldDescriptor, found: u8, at: usize) -> Result<(), WireFault> {
        let kind = field.kind();
        let expected = expected_wire_type(&kind);
        let packed_ok = found == 2 && field.cardinality() == Cardinality::Repeated && expected != 2;
        if found == expected || packed_ok {
            return Ok(());
        }
        Err(self.fault(
            at,
            Some(field.number()),
            Some(found),
            format!(
                "field {} (`{}`, {}) expects wire type {} ({}) but the tag says {} ({})",
                field.number(),
                field.name(),
                kind_name(&kind),
                expected,
                wire_type_name(expected),
                found,
                wire_type_name(found)
            ),
        ))
    }

    fn len_body(
        &mut self,
        field: &FieldDescriptor,
        number: u32,
        (start, end): (usize, usize),
        depth: usize,
    ) -> Result<(), WireFault> {
        match field.kind() {
            Kind::Message(inner) => {
                self.path.push(field.name().to_string());
                self.message(Some(&inner), start, end, None, depth + 1)?;
                self.path.pop();
            }
            Kind::String => {
                if let Err(e) = std::str::from_utf8(&self.bytes[start..end]) {
                    return Err(self.fault(
                        start + e.valid_up_to(),
                        Some(number),
                        Some(2),
                        format!("field {number} (`{}`, string) is not valid UTF-8", field.name()),
                    ));
                }
            }
            Kind::Bytes => {}
            packed => {
                // A packed repeated scalar: the body must be whole values.
                let mut pos = start;
                while pos < end {
                    match expected_wire_type(&packed) {
                        0 => {
                            self.varint(&mut pos, end, &format!("a packed value of field {number}"))?;
                        }
                        w => {
                            let size = if w == 1 { 8 } else { 4 };
                            if end - pos < size {
                                return Err(self.fault(
                                    pos,
                                    Some(number),
                                    Some(2),
                                    format!("packed field {number} ends in the middle of a {size}-byte value"),
                                ));
                            }
                            pos += size;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The wire type protobuf uses for a field of this kind (packing aside).
pub(crate) fn expected_wire_type(kind: &Kind) -> u8 {
    match kind {
        Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => 1,
        Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => 5,
        Kind::String | Kind::Bytes | Kind::Message(_) => 2,
        _ => 0,
    }
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => m.full_name().to_string(),
        Kind::Enum(e) => format!("enum {}", e.full_name()),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{EVENT_TYPE, Schemas};

    fn event() -> MessageDescriptor {
        Schemas::builtin().message(EVENT_TYPE).unwrap()
    }

    #[test]
    fn sound_bytes_pass() {
        // event_id = "ab", version = 3
        assert_eq!(check(&event(), &[0x0a, 0x02, b'a', b'b', 0x20, 0x03]), Ok(()));
    }

    #[test]
    fn truncated_length_points_at_the_tag() {
        let fault = check(&event(), &[0x20, 0x01, 0x0a, 0xff, 0x01]).unwrap_err();
        assert_eq!((fault.offset, fault.field, fault.wire_type), (2, Some(1), Some(2)));
        assert!(fault.reason.contains("255 bytes long"), "{}", fault.reason);
    }

    #[test]
    fn field_zero_and_bad_wire_type() {
        assert_eq!(check(&event(), &[0x00, 0x01]).unwrap_err().field, Some(0));
        let fault = check(&event(), &[0x20, 0x01, 0x0f]).unwrap_err();
        assert_eq!((fault.offset, fault.wire_type), (2, Some(7)));
    }

    #[test]
    fn wrong_wire_type_for_a_known_field_names_it() {
        // event_type (enum, field 2) sent as LEN
        let fault = check(&event(), &[0x12, 0x00]).unwrap_err();
        assert!(fault.reason.contains("`event_type`"), "{}", fault.reason);
        assert!(fault.reason.contains("expects wire type 0"), "{}", fault.reason);
    }

    #[test]
    fn nested_faults_carry_absolute_offsets_and_paths() {
        // customer_created (10) { customer (1) { name (2): invalid utf-8 } }
        let bytes = [0x52, 0x06, 0x0a, 0x04, 0x12, 0x02, 0xff, 0xfe];
        let fault = check(&event(), &bytes).unwrap_err();
        assert_eq!(fault.offset, 6);
        assert_eq!(fault.path, "customer_created.customer");
    }
}
