//! The rule ids and the categories they belong to, as `buf breaking` (v1.75)
//! defines them. Every non-deprecated rule of WIRE, WIRE_JSON and FILE is
//! checked; the limits are in the input (see docs/schema-check.md): files
//! with `edition = ...` do not compile, so features are those of proto2/proto3.

use serde::Serialize;

/// A set of rules, named after buf's categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum Category {
    /// Binary compatibility: old and new readers decode each other's bytes.
    Wire,
    /// WIRE, plus proto3 JSON compatibility (names, JSON names, map vs repeated).
    #[value(name = "wire-json")]
    WireJson,
    /// WIRE_JSON, plus source compatibility of generated code (same files, names, options).
    File,
}

impl Category {
    /// buf's name of the category.
    pub fn buf_name(self) -> &'static str {
        match self {
            Category::Wire => "WIRE",
            Category::WireJson => "WIRE_JSON",
            Category::File => "FILE",
        }
    }
}

const W: u8 = 1;
const J: u8 = 2;
const F: u8 = 4;

/// Every rule chinook checks, with the categories (bits W, J, F) buf puts it in.
const RULES: &[(&str, u8)] = &[
    ("ENUM_NO_DELETE", F),
    ("ENUM_SAME_JSON_FORMAT", J | F),
    ("ENUM_SAME_TYPE", F),
    ("ENUM_VALUE_NO_DELETE", F),
    ("ENUM_VALUE_NO_DELETE_UNLESS_NAME_RESERVED", J),
    ("ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED", W | J),
    ("ENUM_VALUE_SAME_NAME", J | F),
    ("EXTENSION_MESSAGE_NO_DELETE", F),
    ("EXTENSION_NO_DELETE", F),
    ("FIELD_NO_DELETE", F),
    ("FIELD_NO_DELETE_UNLESS_NAME_RESERVED", J),
    ("FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED", W | J),
    ("FIELD_SAME_CARDINALITY", F),
    ("FIELD_SAME_CPP_STRING_TYPE", F),
    ("FIELD_SAME_JAVA_UTF8_VALIDATION", F),
    ("FIELD_SAME_DEFAULT", W | J | F),
    ("FIELD_SAME_JSON_NAME", J | F),
    ("FIELD_SAME_JSTYPE", F),
    ("FIELD_SAME_NAME", J | F),
    ("FIELD_SAME_ONEOF", W | J | F),
    ("FIELD_SAME_TYPE", F),
    ("FIELD_SAME_UTF8_VALIDATION", F),
    ("FIELD_WIRE_COMPATIBLE_CARDINALITY", W),
    ("FIELD_WIRE_COMPATIBLE_TYPE", W),
    ("FIELD_WIRE_JSON_COMPATIBLE_CARDINALITY", J),
    ("FIELD_WIRE_JSON_COMPATIBLE_TYPE", J),
    ("FILE_NO_DELETE", F),
    ("FILE_SAME_CC_ENABLE_ARENAS", F),
    ("FILE_SAME_CC_GENERIC_SERVICES", F),
    ("FILE_SAME_CSHARP_NAMESPACE", F),
    ("FILE_SAME_GO_PACKAGE", F),
    ("FILE_SAME_JAVA_GENERIC_SERVICES", F),
    ("FILE_SAME_JAVA_MULTIPLE_FILES", F),
    ("FILE_SAME_JAVA_OUTER_CLASSNAME", F),
    ("FILE_SAME_JAVA_PACKAGE", F),
    ("FILE_SAME_OBJC_CLASS_PREFIX", F),
    ("FILE_SAME_OPTIMIZE_FOR", F),
    ("FILE_SAME_PACKAGE", W | J | F),
    ("FILE_SAME_PHP_CLASS_PREFIX", F),
    ("FILE_SAME_PHP_METADATA_NAMESPACE", F),
    ("FILE_SAME_PHP_NAMESPACE", F),
    ("FILE_SAME_PY_GENERIC_SERVICES", F),
    ("FILE_SAME_RUBY_PACKAGE", F),
    ("FILE_SAME_SWIFT_PREFIX", F),
    ("FILE_SAME_SYNTAX", F),
    ("MESSAGE_NO_DELETE", F),
    ("MESSAGE_NO_REMOVE_STANDARD_DESCRIPTOR_ACCESSOR", F),
    ("MESSAGE_SAME_JSON_FORMAT", J | F),
    ("MESSAGE_SAME_REQUIRED_FIELDS", W | J | F),
    ("ONEOF_NO_DELETE", F),
    ("RESERVED_ENUM_NO_DELETE", W | J | F),
    ("RESERVED_MESSAGE_NO_DELETE", W | J | F),
    ("RPC_NO_DELETE", F),
    ("RPC_SAME_CLIENT_STREAMING", W | J | F),
    ("RPC_SAME_IDEMPOTENCY_LEVEL", W | J | F),
    ("RPC_SAME_REQUEST_TYPE", W | J | F),
    ("RPC_SAME_RESPONSE_TYPE", W | J | F),
    ("RPC_SAME_SERVER_STREAMING", W | J | F),
    ("SERVICE_NO_DELETE", F),
];

fn bit(category: Category) -> u8 {
    match category {
        Category::Wire => W,
        Category::WireJson => J,
        Category::File => F,
    }
}

/// Whether `rule` is one of `category`'s rules that chinook checks.
pub fn enabled(category: Category, rule: &str) -> bool {
    RULES.iter().any(|(id, cats)| *id == rule && cats & bit(category) != 0)
}

/// The rule ids chinook checks for `category`, sorted.
pub fn checked(category: Category) -> Vec<&'static str> {
    RULES.iter().filter(|(_, cats)| cats & bit(category) != 0).map(|(id, _)| *id).collect()
}
