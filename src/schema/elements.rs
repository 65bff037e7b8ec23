//! The rules about whole elements: files (deleted, package, syntax, options),
//! messages (deleted fields and oneofs, reserved ranges and names, required
//! fields, JSON format), enums (deleted or renamed values, reserved, open or
//! closed) and services (deleted RPCs, streaming, request and response types).
//! Messages, enums and services are paired by full name, files by path.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use prost_reflect::{EnumDescriptor, FileDescriptor, MessageDescriptor, ServiceDescriptor, Syntax};
use prost_types::FileOptions;

use super::ProtoSet;
use super::fields::messages;
use super::source::{Sink, sub};

/// Largest field number of a message, and of an enum value.
const MESSAGE_MAX: i64 = 536_870_911;
const ENUM_MAX: i64 = 2_147_483_647;

pub fn check(sink: &mut Sink, current: &ProtoSet, previous: &ProtoSet) {
    files(sink, current, previous);
    let now = messages(current);
    for (name, old) in messages(previous) {
        if let Some(new) = now.get(&name) {
            message(sink, new, &old);
        }
    }
    let now = enums(current);
    for (name, old) in enums(previous) {
        if let Some(new) = now.get(&name) {
            enumeration(sink, new, &old);
        }
    }
    let now = services(current);
    for (name, old) in services(previous) {
        if let Some(new) = now.get(&name) {
            service(sink, new, &old);
        }
    }
}

fn enums(set: &ProtoSet) -> HashMap<String, EnumDescriptor> {
    let mut out: HashMap<String, EnumDescriptor> = HashMap::new();
    for file in set.files() {
        out.extend(file.enums().map(|e| (e.full_name().to_string(), e)));
    }
    for m in messages(set).values() {
        out.extend(m.child_enums().map(|e| (e.full_name().to_string(), e)));
    }
    out
}

fn services(set: &ProtoSet) -> HashMap<String, ServiceDescriptor> {
    set.files().flat_map(|f| f.services().collect::<Vec<_>>()).map(|s| (s.full_name().to_string(), s)).collect()
}

// --- files ---------------------------------------------------------------------------

fn syntax_name(s: Syntax) -> &'static str {
    match s {
        Syntax::Proto3 => "proto3",
        _ => "proto2",
    }
}

type OptionValue = fn(&FileOptions) -> String;

/// The file options buf's FILE category keeps stable: rule, option, field number in FileOptions, value.
const FILE_OPTIONS: &[(&str, &str, i32, OptionValue)] = &[
    ("FILE_SAME_JAVA_PACKAGE", "java_package", 1, |o| o.java_package().into()),
    ("FILE_SAME_JAVA_OUTER_CLASSNAME", "java_outer_classname", 8, |o| o.java_outer_classname().into()),
    ("FILE_SAME_JAVA_MULTIPLE_FILES", "java_multiple_files", 10, |o| o.java_multiple_files().to_string()),
    ("FILE_SAME_GO_PACKAGE", "go_package", 11, |o| o.go_package().into()),
    ("FILE_SAME_OPTIMIZE_FOR", "optimize_for", 9, |o| o.optimize_for().as_str_name().into()),
    ("FILE_SAME_CC_GENERIC_SERVICES", "cc_generic_services", 16, |o| o.cc_generic_services().to_string()),
    ("FILE_SAME_JAVA_GENERIC_SERVICES", "java_generic_services", 17, |o| o.java_generic_services().to_string()),
    ("FILE_SAME_PY_GENERIC_SERVICES", "py_generic_services", 18, |o| o.py_generic_services().to_string()),
    ("FILE_SAME_CC_ENABLE_ARENAS", "cc_enable_arenas", 31, |o| o.cc_enable_arenas().to_string()),
    ("FILE_SAME_OBJC_CLASS_PREFIX", "objc_class_prefix", 36, |o| o.objc_class_prefix().into()),
    ("FILE_SAME_CSHARP_NAMESPACE", "csharp_namespace", 37, |o| o.csharp_namespace().into()),
    ("FILE_SAME_SWIFT_PREFIX", "swift_prefix", 39, |o| o.swift_prefix().into()),
    ("FILE_SAME_PHP_CLASS_PREFIX", "php_class_prefix", 40, |o| o.php_class_prefix().into()),
    ("FILE_SAME_PHP_NAMESPACE", "php_namespace", 41, |o| o.php_namespace().into()),
    ("FILE_SAME_PHP_METADATA_NAMESPACE", "php_metadata_namespace", 44, |o| o.php_metadata_namespace().into()),
    ("FILE_SAME_RUBY_PACKAGE", "ruby_package", 45, |o| o.ruby_package().into()),
];

fn files(sink: &mut Sink, current: &ProtoSet, previous: &ProtoSet) {
    for old in previous.files() {
        let Some(new) =
            current.pool.get_file_by_name(old.name()).filter(|_| current.names.iter().any(|n| n == old.name()))
        else {
            sink.add_file(
                "FILE_NO_DELETE",
                old.name(),
                format!("Previously present file \"{}\" was deleted.", old.name()),
            );
            continue;
        };
        let (op, np) = (old.package_name(), new.package_name());
        if op != np {
            sink.add("FILE_SAME_PACKAGE", &new, &[&[2]], format!("File package changed from \"{op}\" to \"{np}\"."));
        }
        let (os, ns) = (syntax_name(old.syntax()), syntax_name(new.syntax()));
        if os != ns {
            sink.add("FILE_SAME_SYNTAX", &new, &[&[12]], format!("File syntax changed from \"{os}\" to \"{ns}\"."));
        }
        let none = FileOptions::default();
        let oo = old.file_descriptor_proto().options.as_ref().unwrap_or(&none);
        let no = new.file_descriptor_proto().options.as_ref().unwrap_or(&none);
        for (rule, option, number, value) in FILE_OPTIONS {
            let (a, b) = (value(oo), value(no));
            if a != b {
                let msg = format!("File option \"{option}\" changed from \"{a}\" to \"{b}\".");
                sink.add(rule, &new, &[&[8, *number]], msg);
            }
        }
        deleted_in_file(sink, &new, &old);
    }
}

/// Names of a file's messages, enums and extensions relative to its package ("Outer.Inner").
fn nested(file: &FileDescriptor) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let strip = |full: &str| {
        let pkg = file.package_name();
        if pkg.is_empty() {
            full.to_string()
        } else {
            full.strip_prefix(pkg).unwrap_or(full).trim_start_matches('.').to_string()
        }
    };
    let (mut ms, mut es, mut xs) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    fn walk(m: MessageDescriptor, all: &mut Vec<MessageDescriptor>) {
        for c in m.child_messages() {
            walk(c, all);
        }
        all.push(m);
    }
    let mut all = Vec::new();
    for m in file.messages() {
        walk(m, &mut all);
    }
    es.extend(file.enums().map(|e| strip(e.full_name())));
    xs.extend(file.extensions().map(|x| strip(x.full_name())));
    for m in &all {
        ms.insert(strip(m.full_name()));
        es.extend(m.child_enums().map(|e| strip(e.full_name())));
        xs.extend(m.child_extensions().map(|x| strip(x.full_name())));
    }
    (ms, es, xs)
}

/// FILE rules: messages, enums, extensions and services that left a file.
fn deleted_in_file(sink: &mut Sink, new: &FileDescriptor, old: &FileDescriptor) {
    let (nm, ne, nx) = nested(new);
    let (om, oe, ox) = nested(old);
    let prefix = if new.package_name().is_empty() { String::new() } else { format!("{}.", new.package_name()) };
    // The nearest enclosing message that is still in the new file, if any.
    let anchor = |name: &str| -> Vec<i32> {
        let parts: Vec<&str> = name.split('.').collect();
        (1..parts.len())
            .rev()
            .map(|i| parts[..i].join("."))
            .find(|p| nm.contains(p))
            .and_then(|p| new.parent_pool().get_message_by_name(&format!("{prefix}{p}")))
            .map(|m| m.path().to_vec())
            .unwrap_or_default()
    };
    for (rule, kind, olds, news) in [
        ("MESSAGE_NO_DELETE", "message", &om, &nm),
        ("ENUM_NO_DELETE", "enum", &oe, &ne),
        ("EXTENSION_NO_DELETE", "extension", &ox, &nx),
    ] {
        for name in olds.difference(news) {
            let at = anchor(name);
            sink.add(rule, new, &[&at], format!("Previously present {kind} \"{name}\" was deleted from file."));
        }
    }
    let names: BTreeSet<String> = new.services().map(|s| s.name().to_string()).collect();
    for s in old.services() {
        if !names.contains(s.name()) {
            sink.add(
                "SERVICE_NO_DELETE",
                new,
                &[],
                format!("Previously present service \"{}\" was deleted from file.", s.name()),
            );
        }
    }
}

// --- reserved and extension ranges -------------------------------------------------------

/// Merges inclusive ranges that overlap or touch.
fn collapse(mut ranges: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    ranges.sort();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (s, e) in ranges {
        match out.last_mut() {
            Some(last) if s <= last.1 + 1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The parts of `[start, end]` that `covered` (collapsed) leaves out.
fn missing(start: i64, end: i64, covered: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut from = start;
    for &(s, e) in covered {
        if e < from {
            continue;
        }
        if s > end {
            break;
        }
        if s > from {
            out.push((from, s - 1));
        }
        from = e + 1;
        if from > end {
            return out;
        }
    }
    if from <= end {
        out.push((from, end));
    }
    out
}

fn range_text(s: i64, e: i64, max: i64) -> String {
    match () {
        _ if s == e => format!("[{s}]"),
        _ if e == max => format!("[{s},max]"),
        _ => format!("[{s},{e}]"),
    }
}

/// Every old range must still be covered by the new ranges.
#[allow(clippy::too_many_arguments)]
fn ranges_kept(
    sink: &mut Sink,
    rule: &'static str,
    what: &str,
    kind: &str,
    name: &str,
    at: (&FileDescriptor, &[i32]),
    old: Vec<(i64, i64)>,
    new: Vec<(i64, i64)>,
    max: i64,
) {
    let covered = collapse(new);
    for (s, e) in old {
        let gone = missing(s, e, &covered);
        if !gone.is_empty() {
            let removed: Vec<String> = gone.iter().map(|&(a, b)| range_text(a, b, max)).collect();
            let msg = format!(
                "Previously present {what} range \"{}\" on {kind} \"{name}\" is missing values: {} were removed.",
                range_text(s, e, max),
                removed.join(", ")
            );
            sink.add(rule, at.0, &[at.1], msg);
        }
    }
}

// --- messages -------------------------------------------------------------------------

fn json_format_allowed(syntax: Syntax) -> bool {
    syntax == Syntax::Proto3
}

fn message(sink: &mut Sink, new: &MessageDescriptor, old: &MessageDescriptor) {
    let file = new.parent_file();
    let at: &[i32] = new.path();
    let name = new.name();
    let reserved_num = |n: u32| new.reserved_ranges().any(|r| r.contains(&n));
    let reserved_name = |n: &str| new.reserved_names().any(|r| r == n);
    for f in old.fields() {
        if new.get_field(f.number()).is_some() {
            continue;
        }
        let what = format!("field \"{}\" with name \"{}\" on message \"{name}\"", f.number(), f.name());
        sink.add("FIELD_NO_DELETE", &file, &[at], format!("Previously present {what} was deleted."));
        if !reserved_num(f.number()) {
            let msg = format!("Previously present {what} was deleted without reserving the number \"{}\".", f.number());
            sink.add("FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED", &file, &[at], msg);
        }
        if !reserved_name(f.name()) {
            let msg = format!("Previously present {what} was deleted without reserving the name \"{}\".", f.name());
            sink.add("FIELD_NO_DELETE_UNLESS_NAME_RESERVED", &file, &[at], msg);
        }
    }
    for o in old.oneofs().filter(|o| !o.is_synthetic()) {
        if !new.oneofs().any(|n| n.name() == o.name()) {
            let msg = format!("Previously present oneof \"{}\" on message \"{name}\" was deleted.", o.name());
            sink.add("ONEOF_NO_DELETE", &file, &[at], msg);
        }
    }
    required_fields(sink, new, old);
    let ranges = |m: &MessageDescriptor| m.reserved_ranges().map(|r| (r.start as i64, r.end as i64 - 1)).collect();
    ranges_kept(
        sink,
        "RESERVED_MESSAGE_NO_DELETE",
        "reserved",
        "message",
        name,
        (&file, at),
        ranges(old),
        ranges(new),
        MESSAGE_MAX,
    );
    let ext = |m: &MessageDescriptor| {
        m.descriptor_proto().extension_range.iter().map(|r| (r.start() as i64, r.end() as i64 - 1)).collect()
    };
    ranges_kept(
        sink,
        "EXTENSION_MESSAGE_NO_DELETE",
        "extension",
        "message",
        name,
        (&file, at),
        ext(old),
        ext(new),
        MESSAGE_MAX,
    );
    for n in old.reserved_names() {
        if !new.reserved_names().any(|r| r == n) {
            let msg = format!("Previously present reserved name \"{n}\" on message \"{name}\" was deleted.");
            sink.add("RESERVED_MESSAGE_NO_DELETE", &file, &[at], msg);
        }
    }
    let (oj, nj) = (json_format_allowed(old.parent_file().syntax()), json_format_allowed(file.syntax()));
    if oj && !nj {
        let msg = format!("Message \"{name}\" JSON format support changed from ALLOW to LEGACY_BEST_EFFORT.");
        sink.add("MESSAGE_SAME_JSON_FORMAT", &file, &[at], msg);
    }
    let accessor = |m: &MessageDescriptor| {
        m.descriptor_proto().options.as_ref().is_some_and(|o| o.no_standard_descriptor_accessor())
    };
    if !accessor(old) && accessor(new) {
        let msg = "Message option \"no_standard_descriptor_accessor\" changed from \"false\" to \"true\".".to_string();
        sink.add("MESSAGE_NO_REMOVE_STANDARD_DESCRIPTOR_ACCESSOR", &file, &[&sub(at, &[7, 2])], msg);
    }
}

fn required_fields(sink: &mut Sink, new: &MessageDescriptor, old: &MessageDescriptor) {
    use prost_reflect::Cardinality::Required;
    let req = |m: &MessageDescriptor| -> BTreeMap<u32, Vec<i32>> {
        m.fields().filter(|f| f.cardinality() == Required).map(|f| (f.number(), f.path().to_vec())).collect()
    };
    let (o, n) = (req(old), req(new));
    let file = new.parent_file();
    const WHY: &str = "Required fields must always be sent, so if one side does not know about the required field, this will result in a breakage.";
    for num in o.keys().filter(|k| !n.contains_key(k)) {
        let msg = format!("Message \"{}\" had required field \"{num}\" deleted. {WHY}", old.name());
        sink.add("MESSAGE_SAME_REQUIRED_FIELDS", &file, &[new.path()], msg);
    }
    for (num, path) in n.iter().filter(|(k, _)| !o.contains_key(k)) {
        let msg = format!("Message \"{}\" had required field \"{num}\" added. {WHY}", new.name());
        sink.add("MESSAGE_SAME_REQUIRED_FIELDS", &file, &[path], msg);
    }
}

// --- enums ------------------------------------------------------------------------------

fn enumeration(sink: &mut Sink, new: &EnumDescriptor, old: &EnumDescriptor) {
    let file = new.parent_file();
    let at: &[i32] = new.path();
    let name = new.name();
    let by_number = |e: &EnumDescriptor| {
        let mut m: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        for v in e.values() {
            m.entry(v.number()).or_default().push(v.name().to_string());
        }
        m.values_mut().for_each(|v| v.sort());
        m
    };
    let (om, nm) = (by_number(old), by_number(new));
    let quoted = |names: &[String]| names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ");
    for (num, names) in &om {
        let Some(now) = nm.get(num) else {
            let what = format!("Previously present enum value \"{num}\" on enum \"{name}\" was deleted");
            sink.add("ENUM_VALUE_NO_DELETE", &file, &[at], format!("{what}."));
            if !new.reserved_ranges().any(|r| r.contains(num)) {
                let msg = format!("{what} without reserving the number \"{num}\".");
                sink.add("ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED", &file, &[at], msg);
            }
            if !names.iter().all(|n| new.reserved_names().any(|r| r == n)) {
                let s = if names.len() > 1 { "s" } else { "" };
                let msg = format!("{what} without reserving the name{s} {}.", quoted(names));
                sink.add("ENUM_VALUE_NO_DELETE_UNLESS_NAME_RESERVED", &file, &[at], msg);
            }
            continue;
        };
        if !names.iter().all(|n| now.contains(n)) {
            let s = if names.len() > 1 && now.len() > 1 { "s" } else { "" };
            for v in new.values().filter(|v| v.number() == *num) {
                let msg = format!(
                    "Enum value \"{num}\" on enum \"{name}\" changed name{s} from {} to {}.",
                    quoted(names),
                    quoted(now)
                );
                sink.add("ENUM_VALUE_SAME_NAME", &file, &[&sub(v.path(), &[2])], msg);
            }
        }
    }
    let ranges = |e: &EnumDescriptor| e.reserved_ranges().map(|r| (*r.start() as i64, *r.end() as i64)).collect();
    ranges_kept(
        sink,
        "RESERVED_ENUM_NO_DELETE",
        "reserved",
        "enum",
        name,
        (&file, at),
        ranges(old),
        ranges(new),
        ENUM_MAX,
    );
    for n in old.reserved_names() {
        if !new.reserved_names().any(|r| r == n) {
            let msg = format!("Previously present reserved name \"{n}\" on enum \"{name}\" was deleted.");
            sink.add("RESERVED_ENUM_NO_DELETE", &file, &[at], msg);
        }
    }
    let (os, ns) = (old.parent_file().syntax(), file.syntax());
    if json_format_allowed(os) && !json_format_allowed(ns) {
        let msg = format!("Enum \"{name}\" JSON format support changed from ALLOW to LEGACY_BEST_EFFORT.");
        sink.add("ENUM_SAME_JSON_FORMAT", &file, &[at], msg);
    }
    // Open enums keep unknown numbers; closed ones (proto2) move them to unknown fields.
    let closed = |s: Syntax| s != Syntax::Proto3;
    if closed(os) != closed(ns) {
        let (a, b) = if closed(os) { ("closed", "open") } else { ("open", "closed") };
        sink.add("ENUM_SAME_TYPE", &file, &[at], format!("Enum \"{name}\" changed from {a} to {b}."));
    }
}

// --- services ---------------------------------------------------------------------------

fn service(sink: &mut Sink, new: &ServiceDescriptor, old: &ServiceDescriptor) {
    let file = new.parent_file();
    let sname = new.name();
    for om in old.methods() {
        let Some(nm) = new.methods().find(|m| m.name() == om.name()) else {
            let msg = format!("Previously present RPC \"{}\" on service \"{sname}\" was deleted.", om.name());
            sink.add("RPC_NO_DELETE", &file, &[new.path()], msg);
            continue;
        };
        let rpc = format!("RPC \"{}\" on service \"{sname}\"", nm.name());
        let at: &[i32] = nm.path();
        let streaming = |b: bool| if b { "streaming" } else { "unary" };
        for (rule, side, was, is) in [
            ("RPC_SAME_CLIENT_STREAMING", "client", om.is_client_streaming(), nm.is_client_streaming()),
            ("RPC_SAME_SERVER_STREAMING", "server", om.is_server_streaming(), nm.is_server_streaming()),
        ] {
            if was != is {
                let msg = format!("{rpc} changed from {side} {} to {side} {}.", streaming(was), streaming(is));
                sink.add(rule, &file, &[at], msg);
            }
        }
        for (rule, what, tail, was, is) in [
            ("RPC_SAME_REQUEST_TYPE", "request", 2, om.input(), nm.input()),
            ("RPC_SAME_RESPONSE_TYPE", "response", 3, om.output(), nm.output()),
        ] {
            if was.full_name() != is.full_name() {
                let msg = format!("{rpc} changed {what} type from \"{}\" to \"{}\".", was.full_name(), is.full_name());
                sink.add(rule, &file, &[&sub(at, &[tail])], msg);
            }
        }
        let level = |m: &prost_reflect::MethodDescriptor| {
            m.method_descriptor_proto()
                .options
                .as_ref()
                .map_or("IDEMPOTENCY_UNKNOWN", |o| o.idempotency_level().as_str_name())
        };
        let (was, is) = (level(&om), level(&nm));
        if was != is {
            let msg = format!("{rpc} changed option \"idempotency_level\" from \"{was}\" to \"{is}\".");
            sink.add("RPC_SAME_IDEMPOTENCY_LEVEL", &file, &[&sub(at, &[4, 34])], msg);
        }
    }
}
