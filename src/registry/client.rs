//! The registry's client side, for `produce`, `consume` and `decode`:
//! registers the workshop schemas (imports first, as Confluent's serializers
//! do), and turns a Confluent-framed value back into its message type by
//! fetching the writer's schema by id. Works with chinook's registry and
//! with Confluent's own (plain HTTP).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use prost_reflect::MessageDescriptor;
use serde::de::DeserializeOwned;

use super::{
    ById, Registered, RegistryError, Submitted, builtin_chain, builtin_file,
    compile::{self, Compiled},
    pin, value_subject,
};
use crate::codec::framing::{self, Confluent};

/// Why the registry could not be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ClientError {
    #[error("the schema registry at {url} did not answer: {reason}")]
    #[diagnostic(
        code(chinook::registry::unreachable),
        help("start the broker (`chinook broker start` serves a registry) or pass --schema-registry http://HOST:PORT")
    )]
    Unreachable { url: String, reason: String },
    #[error("the schema registry at {url} refused {what}: {source}")]
    #[diagnostic(code(chinook::registry::refused))]
    Refused {
        url: String,
        what: String,
        #[source]
        source: RegistryError,
    },
    #[error("schema {id} from the registry does not compile: {reason}")]
    #[diagnostic(code(chinook::registry::schema))]
    Schema { id: u32, reason: String },
    #[error("schema {id} has no message at indexes {indexes:?}")]
    #[diagnostic(
        code(chinook::registry::message_index),
        help("the Confluent header's message indexes point into the schema's file")
    )]
    NoMessage { id: u32, indexes: Vec<i64> },
}

/// A registry client with a cache of the schemas it fetched.
#[derive(Clone, Debug)]
pub struct Client {
    url: String,
    http: reqwest::Client,
    schemas: Arc<Mutex<HashMap<u32, Compiled>>>,
}

impl Client {
    pub fn new(url: &str) -> Self {
        let http =
            reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("a plain HTTP client builds");
        Self { url: url.trim_end_matches('/').to_string(), http, schemas: Arc::default() }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn call<T: DeserializeOwned>(&self, what: &str, request: reqwest::RequestBuilder) -> Result<T, ClientError> {
        let unreachable = |e: reqwest::Error| ClientError::Unreachable { url: self.url.clone(), reason: e.to_string() };
        let response =
            request.header("accept", "application/vnd.schemaregistry.v1+json").send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if status >= 300 {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let source = RegistryError {
                status,
                code: v["error_code"].as_u64().unwrap_or(status as u64) as u32,
                message: v["message"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into()),
            };
            return Err(ClientError::Refused { url: self.url.clone(), what: what.to_string(), source });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Unreachable {
            url: self.url.clone(),
            reason: format!("{what}: the answer is not the JSON expected ({e})"),
        })
    }

    fn path(&self, segments: &[&str]) -> String {
        let encoded: Vec<String> = segments
            .iter()
            .map(|s| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string())
            .collect();
        format!("{}/{}", self.url, encoded.join("/"))
    }

    /// Registers `schema` under `subject` (idempotent); its id and version.
    pub async fn register(&self, subject: &str, schema: &Submitted) -> Result<Registered, ClientError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            id: u32,
        }
        let what = format!("registering a schema under {subject}");
        let url = self.path(&["subjects", subject, "versions"]);
        let Answer { id } = self.call(&what, self.http.post(&url).json(schema)).await?;
        // The version: ask for the registered schema back (older registries answer only the id).
        let url = self.path(&["subjects", subject]);
        let mut found: Registered = self.call(&what, self.http.post(url).json(schema)).await?;
        found.id = id;
        Ok(found)
    }

    /// Registers the workshop schema of `type_name` for `topic`'s values (its
    /// imports under their paths first); the schema id and the message's
    /// indexes, ready for the Confluent header.
    pub async fn register_builtin(&self, topic: &str, type_name: &str) -> Result<Confluent, ClientError> {
        let file = builtin_file(type_name).map_err(|e| ClientError::Schema { id: 0, reason: e.to_string() })?;
        let chain = builtin_chain(&file).expect("a built-in type lives in a built-in file");
        let id = self.register_chain(&value_subject(topic), chain).await?.id;
        let message = crate::codec::Schemas::builtin()
            .message(type_name)
            .map_err(|e| ClientError::Schema { id, reason: e.to_string() })?;
        Ok(Confluent { schema_id: id, message_indexes: compile::indexes_of(&message) })
    }

    /// Registers a chain from [`builtin_chain`] (imports first, each under its
    /// path), the last one under `subject`; that last registration.
    pub async fn register_chain(
        &self,
        subject: &str,
        chain: Vec<(String, Submitted)>,
    ) -> Result<Registered, ClientError> {
        let mut versions = BTreeMap::new();
        let last = chain.len().saturating_sub(1);
        let mut done = None;
        for (i, (name, schema)) in chain.into_iter().enumerate() {
            let name = if i == last { subject.to_string() } else { name };
            let registered = self.register(&name, &pin(&schema, &versions)).await?;
            versions.insert(name, registered.version);
            done = Some(registered);
        }
        Ok(done.expect("a chain holds at least the schema itself"))
    }

    /// Sets `subject`'s compatibility level.
    pub async fn set_compatibility(&self, subject: &str, level: super::Level) -> Result<(), ClientError> {
        let url = self.path(&["config", subject]);
        let body = serde_json::json!({ "compatibility": level });
        let _: serde_json::Value = self.call(&format!("setting {subject}'s compatibility"), self.http.put(url).json(&body)).await?;
        Ok(())
    }

    /// Deletes `subject` and its versions for good (soft, then permanent, as
    /// Confluent's registry requires).
    pub async fn delete_subject(&self, subject: &str) -> Result<(), ClientError> {
        let url = self.path(&["subjects", subject]);
        let what = format!("deleting {subject}");
        let _: Vec<i32> = self.call(&what, self.http.delete(&url)).await?;
        let _: Vec<i32> = self.call(&what, self.http.delete(format!("{url}?permanent=true"))).await?;
        Ok(())
    }

    /// Schema `id`, compiled with its references (fetched once, then cached).
    pub async fn schema(&self, id: u32) -> Result<Compiled, ClientError> {
        if let Some(c) = self.schemas.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            return Ok(c.clone());
        }
        let what = format!("schema {id}");
        let url = format!("{}?format=serialized", self.path(&["schemas", "ids", &id.to_string()]));
        let top: ById = self.call(&what, self.http.get(url)).await?;
        let mut files = BTreeMap::new();
        let mut pending = top.references.clone();
        while let Some(r) = pending.pop() {
            if files.contains_key(&r.name) {
                continue;
            }
            let url = format!(
                "{}?format=serialized",
                self.path(&["subjects", &r.subject, "versions", &r.version.to_string()])
            );
            let dep: Registered = self.call(&format!("reference {} of {what}", r.name), self.http.get(url)).await?;
            pending.extend(dep.references.iter().cloned());
            files.insert(r.name.clone(), dep.schema);
        }
        let compiled = compile::compile(&top.schema, &files).map_err(|reason| ClientError::Schema { id, reason })?;
        self.schemas.lock().unwrap_or_else(|p| p.into_inner()).insert(id, compiled.clone());
        Ok(compiled)
    }

    /// The writer's message type of a framed value.
    pub async fn message(&self, header: &Confluent) -> Result<MessageDescriptor, ClientError> {
        self.schema(header.schema_id)
            .await?
            .message(&header.message_indexes)
            .ok_or_else(|| ClientError::NoMessage { id: header.schema_id, indexes: header.message_indexes.clone() })
    }
}

/// `payload` behind a Confluent header.
pub fn frame(header: &Confluent, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 6);
    framing::write_confluent(header, &mut out);
    out.extend_from_slice(payload);
    out
}
