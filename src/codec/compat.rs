//! Schema compatibility: what a new version of a message changes that old
//! readers would misread (field numbers reused under another name or type,
//! fields removed without being reserved, cardinality changes).

use prost_reflect::{Cardinality, Kind, MessageDescriptor};

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => m.full_name().to_string(),
        Kind::Enum(e) => e.full_name().to_string(),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

/// Every breaking change from `old` to `new`, nested messages included, as
/// sentences naming the message, field number and both sides.
pub fn breaking_changes(old: &MessageDescriptor, new: &MessageDescriptor) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    walk(old, new, &mut out, &mut seen);
    out
}

fn walk(old: &MessageDescriptor, new: &MessageDescriptor, out: &mut Vec<String>, seen: &mut Vec<String>) {
    if seen.contains(&old.full_name().to_string()) {
        return;
    }
    seen.push(old.full_name().to_string());
    for f in old.fields() {
        let at = format!("{} field {}", old.full_name(), f.number());
        let Some(g) = new.get_field(f.number()) else {
            let reserved = new.reserved_ranges().any(|r| r.contains(&f.number()));
            if !reserved {
                out.push(format!(
                    "{at} `{}` was removed without reserving its number: a later field could reuse it",
                    f.name()
                ));
            }
            continue;
        };
        if f.name() != g.name() {
            out.push(format!(
                "{at} was `{}` and is now `{}`: old readers put its value in the wrong field",
                f.name(),
                g.name()
            ));
        }
        let (fk, gk) = (kind_name(&f.kind()), kind_name(&g.kind()));
        if fk != gk {
            out.push(format!("{at} `{}` changed type from {fk} to {gk}", f.name()));
        }
        if (f.cardinality() == Cardinality::Repeated) != (g.cardinality() == Cardinality::Repeated) {
            out.push(format!("{at} `{}` changed between single and repeated", f.name()));
        }
        if let (Kind::Message(a), Kind::Message(b)) = (f.kind(), g.kind()) {
            walk(&a, &b, out, seen);
        }
    }
}
