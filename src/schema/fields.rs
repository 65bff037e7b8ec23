//! The rules about one field present in both versions (paired by message full
//! name and field number; extensions by extendee and number): its type,
//! cardinality, name, JSON name, oneof, default, jstype and UTF-8 validation.

use std::collections::HashMap;

use prost_reflect::{
    Cardinality, ExtensionDescriptor, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor, Syntax, Value,
};
use prost_types::field_descriptor_proto::Type;

use super::ProtoSet;
use super::source::{Sink, sub};

/// How many values a field holds and whether it tracks presence, in buf's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Card {
    Explicit,
    Implicit,
    Required,
    Repeated,
    Map,
}

impl Card {
    fn label(self) -> &'static str {
        match self {
            Card::Explicit => "optional with explicit presence",
            Card::Implicit => "optional with implicit presence",
            Card::Required => "required",
            Card::Repeated => "repeated",
            Card::Map => "map",
        }
    }

    /// Same number: the same encoding on the wire (presence does not change the bytes).
    fn wire_group(self) -> u8 {
        match self {
            Card::Explicit | Card::Implicit => 1,
            Card::Required => 2,
            Card::Repeated | Card::Map => 3,
        }
    }

    /// Like [`Card::wire_group`], but a map's JSON is an object and a list's an array.
    fn json_group(self) -> u8 {
        match self {
            Card::Map => 4,
            other => other.wire_group(),
        }
    }
}

/// Scalar types whose values decode as each other on the wire (same group number).
fn wire_group(t: Type) -> u8 {
    match t {
        Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 | Type::Bool => 1,
        Type::Sint32 | Type::Sint64 => 2,
        Type::String => 3,
        Type::Bytes => 4,
        Type::Fixed32 | Type::Sfixed32 => 5,
        Type::Fixed64 | Type::Sfixed64 => 6,
        Type::Double => 7,
        Type::Float => 8,
        Type::Group => 9,
        Type::Message => 10,
        Type::Enum => 11,
    }
}

/// Types that are wire-compatible and also read each other's proto3 JSON
/// (64-bit integers are JSON strings, 32-bit ones numbers).
fn json_group(t: Type) -> u8 {
    match t {
        Type::Int32 | Type::Uint32 => 1,
        Type::Int64 | Type::Uint64 => 2,
        Type::Fixed32 | Type::Sfixed32 => 3,
        Type::Fixed64 | Type::Sfixed64 => 4,
        Type::Bool => 5,
        Type::Sint32 => 6,
        Type::Sint64 => 7,
        Type::String => 8,
        Type::Bytes => 9,
        Type::Double => 10,
        Type::Float => 11,
        Type::Group => 12,
        Type::Message => 13,
        Type::Enum => 14,
    }
}

fn type_label(t: Type, syntax: Syntax) -> String {
    if t == Type::Group && syntax != Syntax::Proto2 {
        return "message (delimited encoding)".into();
    }
    t.as_str_name().trim_start_matches("TYPE_").to_ascii_lowercase()
}

fn named_type(t: Type) -> bool {
    matches!(t, Type::Message | Type::Enum | Type::Group)
}

/// A field's default, in the forms buf compares: text (string and bytes alike) or a number.
#[derive(Debug, Clone)]
enum Default {
    Text(Vec<u8>),
    Int(i128),
    Float(f64, bool),
}

impl Default {
    fn is_zero(&self) -> bool {
        match self {
            Default::Text(t) => t.is_empty(),
            Default::Int(i) => *i == 0,
            Default::Float(f, _) => *f == 0.0 && f.is_sign_positive(),
        }
    }

    fn same(&self, other: &Default) -> bool {
        match (self, other) {
            (Default::Text(a), Default::Text(b)) => a == b,
            (Default::Text(_), _) | (_, Default::Text(_)) => false,
            (Default::Int(a), Default::Int(b)) => a == b,
            (Default::Float(a, _), Default::Float(b, _)) if a.is_nan() || b.is_nan() => a.is_nan() && b.is_nan(),
            (Default::Float(a, a32), Default::Float(b, b32)) if *a32 != *b32 => (*a as f32) == (*b as f32),
            (Default::Float(a, _), Default::Float(b, _)) => a == b,
            (Default::Int(i), Default::Float(f, _)) | (Default::Float(f, _), Default::Int(i)) => (*i as f64) == *f,
        }
    }
}

/// One side of a field pair, whether a message field or an extension.
struct View {
    file: FileDescriptor,
    path: Vec<i32>,
    number: u32,
    /// The short name for a field, the full name for an extension.
    name: String,
    json_name: String,
    extension: bool,
    /// The containing message's short name, or the extendee's full name.
    parent: String,
    ty: Type,
    type_name: String,
    card: Card,
    oneof: Option<String>,
    in_map_entry: bool,
    default: Option<(Default, String)>,
    jstype: i32,
    /// `ctype`: 0 STRING (also when unset), 1 CORD, 2 STRING_PIECE.
    ctype: i32,
    syntax: Syntax,
    /// The file option `java_string_check_utf8`.
    java_check_utf8: bool,
}

fn card(is_map: bool, cardinality: Cardinality, presence: bool) -> Card {
    match cardinality {
        _ if is_map => Card::Map,
        Cardinality::Repeated => Card::Repeated,
        Cardinality::Required => Card::Required,
        _ if presence => Card::Explicit,
        _ => Card::Implicit,
    }
}

fn default_of(kind: &Kind, value: Value, can_have: bool) -> Option<(Default, String)> {
    if !can_have {
        return None;
    }
    Some(match value {
        Value::String(s) => (Default::Text(s.clone().into_bytes()), format!("{s:?}")),
        Value::Bytes(b) => {
            let shown: Vec<String> = b.iter().map(|x| format!("0x{x:X}")).collect();
            (Default::Text(b.to_vec()), format!("[{}]", shown.join(",")))
        }
        Value::Bool(v) => (Default::Int(v as i128), v.to_string()),
        Value::I32(v) => (Default::Int(v as i128), v.to_string()),
        Value::I64(v) => (Default::Int(v as i128), v.to_string()),
        Value::U32(v) => (Default::Int(v as i128), v.to_string()),
        Value::U64(v) => (Default::Int(v as i128), v.to_string()),
        Value::F32(v) => (Default::Float(v as f64, true), v.to_string()),
        Value::F64(v) => (Default::Float(v, false), v.to_string()),
        Value::EnumNumber(n) => {
            let shown = match kind {
                Kind::Enum(e) => match e.get_value(n) {
                    Some(v) => format!("{}.{}", e.name(), v.name()),
                    None => format!("{}.{n}(?)", e.name()),
                },
                _ => n.to_string(),
            };
            (Default::Int(n as i128), shown)
        }
        _ => return None,
    })
}

impl View {
    fn field(f: &FieldDescriptor) -> Self {
        let proto = f.field_descriptor_proto();
        let parent = f.parent_message();
        let kind = f.kind();
        let card = card(f.is_map(), f.cardinality(), f.supports_presence());
        let can_default = !f.is_list() && !f.is_map() && !matches!(kind, Kind::Message(_));
        Self {
            file: f.parent_file(),
            path: f.path().to_vec(),
            number: f.number(),
            name: f.name().to_string(),
            json_name: f.json_name().to_string(),
            extension: false,
            parent: parent.name().to_string(),
            ty: proto.r#type(),
            type_name: proto.type_name().trim_start_matches('.').to_string(),
            card,
            oneof: f.containing_oneof().filter(|o| !o.is_synthetic()).map(|o| o.name().to_string()),
            in_map_entry: parent.is_map_entry(),
            default: default_of(&kind, f.default_value(), can_default),
            jstype: proto.options.as_ref().map_or(0, |o| o.jstype.unwrap_or(0)),
            ctype: proto.options.as_ref().map_or(0, |o| o.ctype.unwrap_or(0)),
            syntax: f.parent_file().syntax(),
            java_check_utf8: java_check_utf8(&f.parent_file()),
        }
    }

    fn extension(x: &ExtensionDescriptor) -> Self {
        let proto = x.field_descriptor_proto();
        let kind = x.kind();
        let can_default = !x.is_list() && !x.is_map() && !matches!(kind, Kind::Message(_));
        Self {
            file: x.parent_file(),
            path: x.path().to_vec(),
            number: x.number(),
            name: x.full_name().to_string(),
            json_name: x.json_name().to_string(),
            extension: true,
            parent: x.containing_message().full_name().to_string(),
            ty: proto.r#type(),
            type_name: proto.type_name().trim_start_matches('.').to_string(),
            card: card(x.is_map(), x.cardinality(), x.supports_presence()),
            oneof: None,
            in_map_entry: false,
            default: default_of(&kind, x.default_value(), can_default),
            jstype: proto.options.as_ref().map_or(0, |o| o.jstype.unwrap_or(0)),
            ctype: proto.options.as_ref().map_or(0, |o| o.ctype.unwrap_or(0)),
            syntax: x.parent_file().syntax(),
            java_check_utf8: java_check_utf8(&x.parent_file()),
        }
    }

    /// `Field "2" with name "qty" on message "Order"`, as buf words it.
    fn describe(&self) -> String {
        self.describe_named(true)
    }

    fn describe_named(&self, with_name: bool) -> String {
        let (kind, name) = if self.extension { ("Extension", &self.name) } else { ("Field", &self.name) };
        let named = if with_name { format!(" with name \"{name}\"") } else { String::new() };
        format!("{kind} \"{}\"{named} on message \"{}\"", self.number, self.parent)
    }

    fn type_path(&self) -> Vec<i32> {
        sub(&self.path, if named_type(self.ty) { &[6] } else { &[5] })
    }

    /// Java's check: VERIFY when the file asks for it, else the syntax's default.
    fn java_utf8_validation(&self) -> Option<&'static str> {
        (self.ty == Type::String).then_some(if self.java_check_utf8 { "VERIFY" } else { self.utf8_validation()? })
    }

    fn utf8_validation(&self) -> Option<&'static str> {
        (self.ty == Type::String).then_some(if self.syntax == Syntax::Proto3 { "VERIFY" } else { "NONE" })
    }

    fn add(&self, sink: &mut Sink, rule: &'static str, tails: &[&[i32]], message: String) {
        let paths: Vec<Vec<i32>> = tails.iter().map(|t| sub(&self.path, t)).collect();
        let refs: Vec<&[i32]> = paths.iter().map(Vec::as_slice).collect();
        sink.add(rule, &self.file, &refs, message);
    }
}

fn java_check_utf8(file: &FileDescriptor) -> bool {
    file.file_descriptor_proto().options.as_ref().is_some_and(|o| o.java_string_check_utf8())
}

/// Every message declared in `set`'s checked files, nested ones and map entries included.
pub fn messages(set: &ProtoSet) -> HashMap<String, MessageDescriptor> {
    fn walk(m: MessageDescriptor, out: &mut HashMap<String, MessageDescriptor>) {
        for child in m.child_messages() {
            walk(child, out);
        }
        out.insert(m.full_name().to_string(), m);
    }
    let mut out = HashMap::new();
    for file in set.files() {
        for m in file.messages() {
            walk(m, &mut out);
        }
    }
    out
}

/// Every extension declared in `set`'s checked files, keyed by extendee and number.
fn extensions(set: &ProtoSet) -> HashMap<(String, u32), ExtensionDescriptor> {
    let mut out = HashMap::new();
    let mut add = |x: ExtensionDescriptor| {
        out.insert((x.containing_message().full_name().to_string(), x.number()), x);
    };
    for file in set.files() {
        file.extensions().for_each(&mut add);
    }
    for m in messages(set).values() {
        m.child_extensions().for_each(&mut add);
    }
    out
}

/// Runs the field rules on every field present in both versions.
pub fn check(sink: &mut Sink, current: &ProtoSet, previous: &ProtoSet) {
    let now = messages(current);
    for (name, before) in messages(previous) {
        let Some(after) = now.get(&name) else { continue };
        for old in before.fields() {
            if let Some(new) = after.get_field(old.number()) {
                pair(sink, current, &View::field(&new), &View::field(&old));
            }
        }
    }
    let now = extensions(current);
    for (key, old) in extensions(previous) {
        if let Some(new) = now.get(&key) {
            pair(sink, current, &View::extension(new), &View::extension(&old));
        }
    }
}

fn pair(sink: &mut Sink, current: &ProtoSet, cur: &View, prev: &View) {
    types(sink, current, cur, prev);
    cardinality(sink, cur, prev);
    names(sink, cur, prev);
    oneof(sink, cur, prev);
    if let (Some((pd, pshow)), Some((cd, cshow))) = (&prev.default, &cur.default)
        && !(pd.is_zero() && cd.is_zero())
        && !pd.same(cd)
    {
        let msg = format!("{} changed default value from {pshow} to {cshow}.", cur.describe());
        cur.add(sink, "FIELD_SAME_DEFAULT", &[&[7], &[]], msg);
    }
    let is64 = |t| matches!(t, Type::Int64 | Type::Sint64 | Type::Uint64 | Type::Fixed64 | Type::Sfixed64);
    if is64(prev.ty) && is64(cur.ty) && prev.jstype != cur.jstype {
        let label = |j: i32| prost_types::field_options::JsType::try_from(j).map_or("?", |t| t.as_str_name());
        let msg = format!(
            "{} changed option \"jstype\" from \"{}\" to \"{}\".",
            cur.describe(),
            label(prev.jstype),
            label(cur.jstype)
        );
        cur.add(sink, "FIELD_SAME_JSTYPE", &[&[8, 6], &[]], msg);
    }
    if let (Some(p), Some(c)) = (prev.utf8_validation(), cur.utf8_validation())
        && p != c
    {
        let msg = format!("{} changed UTF8 validation from {p} to {c}.", cur.describe());
        cur.add(sink, "FIELD_SAME_UTF8_VALIDATION", &[&[]], msg);
    }
    if let (Some(p), Some(c)) = (prev.java_utf8_validation(), cur.java_utf8_validation())
        && p != c
    {
        let msg = format!("{} changed Java string UTF8 validation from \"{p}\" to \"{c}\".", cur.describe());
        let file_option: &[i32] = &[8, 27];
        let at = super::source::position(&cur.file, file_option)
            .map(|_| file_option.to_vec())
            .unwrap_or_else(|| cur.path.clone());
        sink.add("FIELD_SAME_JAVA_UTF8_VALIDATION", &cur.file, &[&at], msg);
    }
    cpp_string_type(sink, cur, prev);
}

/// C++ keeps strings as std::string, absl::Cord or StringPiece (`ctype`); changing it breaks generated code.
fn cpp_string_type(sink: &mut Sink, cur: &View, prev: &View) {
    let text = |t: Type| matches!(t, Type::String | Type::Bytes);
    if (prev.in_map_entry && cur.in_map_entry) || !text(prev.ty) || !text(cur.ty) {
        return;
    }
    let name = |c: i32| match c {
        1 => "CORD",
        2 => "STRING_PIECE",
        _ => "STRING",
    };
    // STRING_PIECE was always treated as STRING: moving from it to STRING is fine.
    if name(prev.ctype) != name(cur.ctype) && !(prev.ctype == 2 && name(cur.ctype) == "STRING") {
        let msg = format!(
            "{} changed C++ string type from \"{}\" to \"{}\".",
            cur.describe(),
            name(prev.ctype),
            name(cur.ctype)
        );
        cur.add(sink, "FIELD_SAME_CPP_STRING_TYPE", &[&[8, 1], &[]], msg);
    }
}

fn changed_type(sink: &mut Sink, rule: &'static str, cur: &View, prev: &View, extra: &str) {
    let msg = format!(
        "{} changed type from \"{}\" to \"{}\".{extra}",
        cur.describe(),
        type_label(prev.ty, prev.syntax),
        type_label(cur.ty, cur.syntax)
    );
    let path = cur.type_path();
    sink.add(rule, &cur.file, &[&path], msg);
}

fn changed_type_name(sink: &mut Sink, rule: &'static str, cur: &View, prev: &View) {
    let msg = format!("{} changed type from \"{}\" to \"{}\".", cur.describe(), prev.type_name, cur.type_name);
    cur.add(sink, rule, &[&[6]], msg);
}

const WIRE_NOTE: &str =
    " See https://developers.google.com/protocol-buffers/docs/proto3#updating for wire compatibility rules.";
const JSON_NOTE: &str = " See https://developers.google.com/protocol-buffers/docs/proto3#updating for wire compatibility rules and https://developers.google.com/protocol-buffers/docs/proto3#json for JSON compatibility rules.";
const BYTES_NOTE: &str = " Note that while string and bytes are compatible if the data is valid UTF-8, there is no way to enforce that a bytes field is UTF-8, so these fields may be incompatible.";

fn types(sink: &mut Sink, current: &ProtoSet, cur: &View, prev: &View) {
    const SAME: &str = "FIELD_SAME_TYPE";
    if sink.on(SAME) {
        if prev.ty != cur.ty {
            changed_type(sink, SAME, cur, prev, "");
        } else if named_type(cur.ty) && prev.type_name != cur.type_name {
            changed_type_name(sink, SAME, cur, prev);
        }
    }
    for (rule, group, note) in [
        ("FIELD_WIRE_COMPATIBLE_TYPE", wire_group as fn(Type) -> u8, WIRE_NOTE),
        ("FIELD_WIRE_JSON_COMPATIBLE_TYPE", json_group as fn(Type) -> u8, JSON_NOTE),
    ] {
        if !sink.on(rule) {
            continue;
        }
        let wire = rule == "FIELD_WIRE_COMPATIBLE_TYPE";
        if group(prev.ty) != group(cur.ty) {
            match (prev.ty, cur.ty) {
                // Every string is valid bytes: a bytes reader reads it.
                (Type::String, Type::Bytes) if wire => {}
                (Type::Bytes, Type::String) if wire => {
                    changed_type(sink, rule, cur, prev, &format!("{note}{BYTES_NOTE}"))
                }
                _ => changed_type(sink, rule, cur, prev, note),
            }
        } else if prev.type_name != cur.type_name {
            match cur.ty {
                Type::Enum if !enum_compatible(current, cur, prev) => changed_type_name(sink, rule, cur, prev),
                Type::Message | Type::Group => changed_type_name(sink, rule, cur, prev),
                _ => {}
            }
        }
    }
}

/// An enum field may move to another enum with the same short name that keeps
/// every old value (same name, same number).
fn enum_compatible(current: &ProtoSet, cur: &View, prev: &View) -> bool {
    let short = |n: &str| n.rsplit('.').next().unwrap_or(n).to_string();
    if short(&cur.type_name) != short(&prev.type_name) {
        return false;
    }
    let Some(new_enum) = current.pool.get_enum_by_name(&cur.type_name) else { return false };
    let Some(old_enum) = prev.file.parent_pool().get_enum_by_name(&prev.type_name) else { return false };
    old_enum.values().all(|v| new_enum.get_value_by_name(v.name()).is_some_and(|n| n.number() == v.number()))
}

fn cardinality(sink: &mut Sink, cur: &View, prev: &View) {
    if prev.in_map_entry && cur.in_map_entry {
        return;
    }
    let msg = || {
        format!("{} changed cardinality from \"{}\" to \"{}\".", cur.describe(), prev.card.label(), cur.card.label())
    };
    if prev.card != cur.card {
        cur.add(sink, "FIELD_SAME_CARDINALITY", &[&[]], msg());
    }
    if prev.card.wire_group() != cur.card.wire_group() {
        cur.add(sink, "FIELD_WIRE_COMPATIBLE_CARDINALITY", &[&[]], msg());
    }
    if prev.card.json_group() != cur.card.json_group() {
        cur.add(sink, "FIELD_WIRE_JSON_COMPATIBLE_CARDINALITY", &[&[]], msg());
    }
}

fn names(sink: &mut Sink, cur: &View, prev: &View) {
    if prev.name != cur.name {
        let msg = format!("{} changed name from \"{}\" to \"{}\".", cur.describe_named(false), prev.name, cur.name);
        cur.add(sink, "FIELD_SAME_NAME", &[&[1]], msg);
    }
    if !prev.extension && prev.json_name != cur.json_name {
        let msg = format!(
            "{} changed option \"json_name\" from \"{}\" to \"{}\".",
            cur.describe(),
            prev.json_name,
            cur.json_name
        );
        cur.add(sink, "FIELD_SAME_JSON_NAME", &[&[10], &[]], msg);
    }
}

fn oneof(sink: &mut Sink, cur: &View, prev: &View) {
    if prev.extension {
        return;
    }
    let msg = match (&prev.oneof, &cur.oneof) {
        (None, None) => return,
        (Some(a), Some(b)) if a == b => return,
        (Some(a), Some(b)) => format!("{} moved from oneof \"{a}\" to oneof \"{b}\".", cur.describe()),
        (Some(_), None) => format!("{} moved from inside to outside a oneof.", cur.describe()),
        (None, Some(_)) => format!("{} moved from outside to inside a oneof.", cur.describe()),
    };
    cur.add(sink, "FIELD_SAME_ONEOF", &[&[]], msg);
}
