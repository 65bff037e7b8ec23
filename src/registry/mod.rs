//! A schema registry that speaks Confluent's Schema Registry REST API
//! (protobuf schemas only): subjects and versions, schemas by id,
//! compatibility levels and checks. The embedded broker serves it next to
//! Kafka, preloaded with the lab schemas, and validates Confluent-framed
//! values of its framed topics against it; `produce`, `consume` and `decode`
//! are its clients.

pub mod client;
pub mod compile;
pub mod http;
mod store;

use std::collections::BTreeMap;

pub use store::{ById, Level, PROTOBUF, Reference, Registered, Registry, Submitted, parse_version};

/// Confluent's default registry port.
pub const DEFAULT_PORT: u16 = 8081;

/// The subject of a topic's values (Confluent's TopicNameStrategy).
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

/// An answer the API gives instead of a result: Confluent's HTTP status,
/// error code and message.
#[derive(Clone, Debug, thiserror::Error, miette::Diagnostic, PartialEq, Eq)]
#[error("{message} (schema registry error {code})")]
pub struct RegistryError {
    pub status: u16,
    pub code: u32,
    pub message: String,
}

impl RegistryError {
    fn new(status: u16, code: u32, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
    pub fn subject_not_found(subject: &str) -> Self {
        Self::new(404, 40401, format!("Subject '{subject}' not found."))
    }
    pub fn version_not_found(version: i32) -> Self {
        Self::new(404, 40402, format!("Version {version} not found."))
    }
    pub fn schema_not_found() -> Self {
        Self::new(404, 40403, "Schema not found")
    }
    pub fn no_subject_level(subject: &str) -> Self {
        Self::new(404, 40408, format!("Subject '{subject}' does not have subject-level compatibility configured"))
    }
    pub fn incompatible(subject: &str, problems: &[String]) -> Self {
        Self::new(
            409,
            409,
            format!(
                "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
                problems.join("; ")
            ),
        )
    }
    pub fn invalid_schema(reason: impl Into<String>) -> Self {
        Self::new(422, 42201, format!("Invalid schema: {}", reason.into()))
    }
    pub fn invalid_version(text: &str) -> Self {
        Self::new(
            422,
            42202,
            format!(
                "The specified version '{text}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
            ),
        )
    }
    pub fn invalid_level(text: &str) -> Self {
        Self::new(
            422,
            42203,
            format!(
                "Invalid compatibility level {text}. Valid values are NONE, BACKWARD, FORWARD, FULL, BACKWARD_TRANSITIVE, FORWARD_TRANSITIVE, and FULL_TRANSITIVE"
            ),
        )
    }
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(400, 400, reason)
    }
    pub fn not_found(path: &str) -> Self {
        Self::new(404, 404, format!("HTTP 404 Not Found: {path}"))
    }
    pub fn storage(reason: impl Into<String>) -> Self {
        Self::new(500, 50001, reason)
    }
}

/// The workshop schema `file` as registry submissions, imports first (each
/// under its import path as subject), the file itself last: its `.proto`
/// text, referencing the chinook files it imports (well-known types resolve
/// by themselves). Reference versions are left at 0 for [`pin`] to fill in.
pub fn builtin_chain(file: &str) -> Option<Vec<(String, Submitted)>> {
    let sources: BTreeMap<&str, &str> = crate::codec::PROTO_SOURCES.into_iter().collect();
    let text = sources.get(file)?;
    let mut chain: Vec<(String, Submitted)> = Vec::new();
    let mut references = Vec::new();
    for import in imports(text) {
        if let Some(deeper) = builtin_chain(&import) {
            chain.extend(deeper.into_iter().filter(|(s, _)| !chain.iter().any(|(c, _)| c == s)).collect::<Vec<_>>());
            references.push(Reference { name: import.clone(), subject: import, version: 0 });
        }
    }
    chain.push((
        file.to_string(),
        Submitted { schema: text.to_string(), schema_type: Some(PROTOBUF.into()), references },
    ));
    Some(chain)
}

/// `schema` with each reference at the version registered for its subject.
pub fn pin(schema: &Submitted, versions: &BTreeMap<String, i32>) -> Submitted {
    let mut out = schema.clone();
    for r in &mut out.references {
        if let Some(v) = versions.get(&r.subject) {
            r.version = *v;
        }
    }
    out
}

fn imports(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("import "))
        .filter_map(|rest| rest.split('"').nth(1))
        .map(str::to_string)
        .collect()
}

/// The built-in file that defines message `type_name`.
pub fn builtin_file(type_name: &str) -> Result<String, crate::codec::CodecError> {
    Ok(crate::codec::Schemas::builtin().message(type_name)?.parent_file().name().to_string())
}

impl Registry {
    /// Registers the lab schemas under `<topic>-value` for every
    /// schema-bound topic of the plan (and their imports under their paths),
    /// where the subject has no version yet.
    pub fn preload(&self) -> Result<(), RegistryError> {
        for topic in crate::labs::topic_plan() {
            let Some(type_name) = &topic.value_type else { continue };
            let subject = value_subject(&topic.name);
            if self.versions(&subject).is_ok() {
                continue;
            }
            let file = builtin_file(type_name).map_err(|e| RegistryError::invalid_schema(e.to_string()))?;
            let chain =
                builtin_chain(&file).ok_or_else(|| RegistryError::invalid_schema(format!("{file} is not built in")))?;
            let mut versions = BTreeMap::new();
            let last = chain.len() - 1;
            for (i, (name, schema)) in chain.into_iter().enumerate() {
                let name = if i == last { subject.clone() } else { name };
                let done = self.register(&name, &pin(&schema, &versions))?;
                versions.insert(name, done.version);
            }
        }
        Ok(())
    }
}
