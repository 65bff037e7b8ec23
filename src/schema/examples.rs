//! Schema changes made on purpose to the workshop's own event schema, for Lab 3's
//! checks and `break registry-break`:
//! a compatible one (a field added with a fresh number) and breaking ones (a
//! field's type changed, a field deleted without reserving it), as `.proto`
//! text derived from the embedded `customer_events.proto`.

use crate::codec::PROTO_SOURCES;

/// The import path of the file every change edits.
pub const FILE: &str = "events/v1/customer_events.proto";
/// The field number the compatible change adds (unused by the schema).
pub const ADDED_FIELD: u32 = 100;

/// How the change edits the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// `string judge_note = 100;` added to CustomerEvent: compatible.
    FieldAdded,
    /// `int64 version = 4` becomes `string version = 4`: breaking.
    TypeChanged,
    /// `string causation_id = 6;` deleted, nothing reserved: breaking.
    FieldDeleted,
}

impl Change {
    pub const ALL: [Change; 3] = [Change::FieldAdded, Change::TypeChanged, Change::FieldDeleted];

    pub fn breaking(self) -> bool {
        self != Change::FieldAdded
    }

    pub fn describe(self) -> &'static str {
        match self {
            Change::FieldAdded => "a field added with a new number",
            Change::TypeChanged => "version changed from int64 to string",
            Change::FieldDeleted => "causation_id deleted without reserving it",
        }
    }

    /// The edited file.
    pub fn apply(self) -> String {
        let text = original(FILE);
        let edited = match self {
            Change::FieldAdded => text.replacen(
                "message CustomerEvent {\n",
                &format!("message CustomerEvent {{\n  // Added by chinook's Lab 3 check: a compatible change.\n  string judge_note = {ADDED_FIELD};\n"),
                1,
            ),
            Change::TypeChanged => text.replacen("  int64 version = 4;", "  string version = 4;", 1),
            Change::FieldDeleted => text.replacen("  string causation_id = 6;\n", "", 1),
        };
        assert_ne!(edited, text, "the embedded schema still has the lines {self:?} edits");
        edited
    }
}

/// An embedded `.proto` file's text.
pub fn original(path: &str) -> &'static str {
    PROTO_SOURCES.iter().find(|(p, _)| *p == path).map(|(_, t)| *t).expect("an embedded schema file")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_edits_the_schema_and_still_compiles() {
        for change in Change::ALL {
            let refs = [("customer/v1/customer.proto".to_string(), original("customer/v1/customer.proto").to_string())]
                .into_iter()
                .collect();
            let compiled = crate::registry::compile::compile(&change.apply(), &refs).unwrap();
            let event = compiled.message(&[0]).unwrap();
            assert_eq!(event.full_name(), "events.v1.CustomerEvent");
            assert_eq!(event.get_field(ADDED_FIELD).is_some(), change == Change::FieldAdded);
        }
    }
}
