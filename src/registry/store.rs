//! The registry's state and rules: schemas by global id, each subject's
//! versions, compatibility levels (global and per subject), and the checks a
//! new version must pass. Saved as JSON after every change when it has a
//! file, so schema ids outlive a broker restart.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};

use super::RegistryError;
use super::compile::{self, Compiled};
use crate::schema::{Category, Direction, ProtoSet};

/// A schema a version depends on, by import name.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

/// What a client sends to register, look up or check a schema.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Submitted {
    pub schema: String,
    #[serde(rename = "schemaType", default, skip_serializing_if = "Option::is_none")]
    pub schema_type: Option<String>,
    #[serde(default)]
    pub references: Vec<Reference>,
}

/// Which earlier versions a new one must stay compatible with, and how.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[clap(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    None,
    #[default]
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Level {
    fn transitive(self) -> bool {
        matches!(self, Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive)
    }
    fn backward(self) -> bool {
        matches!(self, Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive)
    }
    fn forward(self) -> bool {
        matches!(self, Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Stored {
    id: u32,
    schema: String,
    references: Vec<Reference>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Version {
    version: i32,
    id: u32,
    #[serde(default)]
    deleted: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Store {
    schemas: Vec<Stored>,
    subjects: BTreeMap<String, Vec<Version>>,
    compatibility: Level,
    subject_compatibility: BTreeMap<String, Level>,
    #[serde(skip)]
    compiled: HashMap<u32, Compiled>,
}

/// One version of a subject, as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Registered {
    pub subject: String,
    pub id: u32,
    pub version: i32,
    pub schema: String,
    #[serde(rename = "schemaType")]
    pub schema_type: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
}

/// A schema by id: its text (or descriptor) and references.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ById {
    pub schema: String,
    #[serde(rename = "schemaType")]
    pub schema_type: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
}

pub const PROTOBUF: &str = "PROTOBUF";

/// The registry: shared by the HTTP server and the broker's validation.
#[derive(Clone, Debug)]
pub struct Registry {
    store: Arc<Mutex<Store>>,
    path: Option<PathBuf>,
}

/// Which version of a subject: a number or `latest`.
pub fn parse_version(text: &str) -> Result<Option<i32>, RegistryError> {
    match text {
        "latest" | "-1" => Ok(None),
        n => n.parse::<i32>().ok().filter(|v| *v > 0).map(Some).ok_or_else(|| RegistryError::invalid_version(text)),
    }
}

impl Registry {
    /// A registry kept in memory only.
    pub fn in_memory() -> Self {
        Self { store: Arc::default(), path: None }
    }

    /// A registry saved to `path` (read back when it exists).
    pub fn open(path: PathBuf) -> Result<Self, RegistryError> {
        let store = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| RegistryError::storage(format!("{} is not a chinook registry: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Store::default(),
            Err(e) => return Err(RegistryError::storage(format!("reading {}: {e}", path.display()))),
        };
        Ok(Self { store: Arc::new(Mutex::new(store)), path: Some(path) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, store: &Store) -> Result<(), RegistryError> {
        let Some(path) = &self.path else { return Ok(()) };
        let json = serde_json::to_vec_pretty(store).expect("the registry serializes");
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| RegistryError::storage(format!("saving {}: {e}", path.display())))
    }

    /// Every subject with a live version.
    pub fn subjects(&self) -> Vec<String> {
        let store = self.lock();
        store.subjects.iter().filter(|(_, v)| v.iter().any(|v| !v.deleted)).map(|(s, _)| s.clone()).collect()
    }

    /// A subject's live version numbers.
    pub fn versions(&self, subject: &str) -> Result<Vec<i32>, RegistryError> {
        Ok(self.lock().live(subject)?.iter().map(|v| v.version).collect())
    }

    /// A subject's version (`None`: the latest).
    pub fn version(&self, subject: &str, version: Option<i32>) -> Result<Registered, RegistryError> {
        let store = self.lock();
        let v = store.pick(subject, version)?;
        Ok(store.registered(subject, v))
    }

    /// A schema by its global id.
    pub fn by_id(&self, id: u32) -> Result<ById, RegistryError> {
        let store = self.lock();
        let s = store.schemas.iter().find(|s| s.id == id).ok_or_else(RegistryError::schema_not_found)?;
        Ok(ById { schema: s.schema.clone(), schema_type: PROTOBUF.into(), references: s.references.clone() })
    }

    /// The subjects and versions that hold schema `id`.
    pub fn subjects_of(&self, id: u32) -> Result<Vec<(String, i32)>, RegistryError> {
        let store = self.lock();
        let found: Vec<(String, i32)> = store
            .subjects
            .iter()
            .flat_map(|(s, vs)| vs.iter().filter(|v| v.id == id && !v.deleted).map(|v| (s.clone(), v.version)))
            .collect();
        if found.is_empty() {
            return Err(RegistryError::schema_not_found());
        }
        Ok(found)
    }

    /// The compiled schema `id` (compiled once, then kept).
    pub fn compiled(&self, id: u32) -> Result<Compiled, RegistryError> {
        let mut store = self.lock();
        if let Some(c) = store.compiled.get(&id) {
            return Ok(c.clone());
        }
        let s = store.schemas.iter().find(|s| s.id == id).cloned().ok_or_else(RegistryError::schema_not_found)?;
        let compiled = store.compile(&s.schema, &s.references)?;
        store.compiled.insert(id, compiled.clone());
        Ok(compiled)
    }

    /// Registers `schema` under `subject` (the same schema again gives its
    /// existing id and version); refused when the subject's level says it is
    /// incompatible with earlier versions.
    pub fn register(&self, subject: &str, schema: &Submitted) -> Result<Registered, RegistryError> {
        let mut store = self.lock();
        let new = store.validate(schema)?;
        if let Some(v) = store.find(subject, schema) {
            return Ok(store.registered(subject, v));
        }
        let problems = store.incompatibilities(subject, None, &new)?;
        if !problems.is_empty() {
            return Err(RegistryError::incompatible(subject, &problems));
        }
        let id = match store.schemas.iter().find(|s| s.schema == schema.schema && s.references == schema.references) {
            Some(s) => s.id,
            None => {
                let id = store.schemas.iter().map(|s| s.id).max().unwrap_or(0) + 1;
                store.schemas.push(Stored { id, schema: schema.schema.clone(), references: schema.references.clone() });
                store.compiled.insert(id, new);
                id
            }
        };
        let versions = store.subjects.entry(subject.to_string()).or_default();
        let version = versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
        versions.push(Version { version, id, deleted: false });
        let out = store.registered(subject, Version { version, id, deleted: false });
        self.save(&store)?;
        Ok(out)
    }

    /// The version of `subject` that holds exactly `schema`.
    pub fn lookup(&self, subject: &str, schema: &Submitted) -> Result<Registered, RegistryError> {
        let store = self.lock();
        store.live(subject)?;
        let v = store.find(subject, schema).ok_or_else(RegistryError::schema_not_found)?;
        Ok(store.registered(subject, v))
    }

    /// Why `schema` could not be registered after `version` (`None`: every
    /// version the subject's level names); empty when compatible.
    pub fn check(&self, subject: &str, version: Option<i32>, schema: &Submitted) -> Result<Vec<String>, RegistryError> {
        let mut store = self.lock();
        let new = store.validate(schema)?;
        if let Some(v) = version {
            store.pick(subject, Some(v))?;
        }
        store.incompatibilities(subject, version, &new)
    }

    /// Deletes a subject's versions (soft, unless `permanent`); their numbers.
    pub fn delete_subject(&self, subject: &str, permanent: bool) -> Result<Vec<i32>, RegistryError> {
        let mut store = self.lock();
        let versions = store.subjects.get_mut(subject).ok_or_else(|| RegistryError::subject_not_found(subject))?;
        let numbers: Vec<i32> = versions.iter().filter(|v| permanent || !v.deleted).map(|v| v.version).collect();
        if numbers.is_empty() {
            return Err(RegistryError::subject_not_found(subject));
        }
        if permanent {
            store.subjects.remove(subject);
            store.subject_compatibility.remove(subject);
        } else {
            versions.iter_mut().for_each(|v| v.deleted = true);
        }
        self.save(&store)?;
        Ok(numbers)
    }

    /// Deletes one version (soft); its number.
    pub fn delete_version(&self, subject: &str, version: Option<i32>) -> Result<i32, RegistryError> {
        let mut store = self.lock();
        let picked = store.pick(subject, version)?.version;
        if let Some(v) = store.subjects.get_mut(subject).and_then(|vs| vs.iter_mut().find(|v| v.version == picked)) {
            v.deleted = true;
        }
        self.save(&store)?;
        Ok(picked)
    }

    /// The global level, or a subject's own (`None` when it has none).
    pub fn level(&self, subject: Option<&str>) -> Option<Level> {
        let store = self.lock();
        match subject {
            None => Some(store.compatibility),
            Some(s) => store.subject_compatibility.get(s).copied(),
        }
    }

    /// Sets the global level or a subject's (`None` removes a subject's).
    pub fn set_level(&self, subject: Option<&str>, level: Option<Level>) -> Result<(), RegistryError> {
        let mut store = self.lock();
        match (subject, level) {
            (None, Some(l)) => store.compatibility = l,
            (None, None) => store.compatibility = Level::default(),
            (Some(s), Some(l)) => _ = store.subject_compatibility.insert(s.to_string(), l),
            (Some(s), None) => {
                store.subject_compatibility.remove(s).ok_or_else(|| RegistryError::no_subject_level(s))?;
            }
        }
        self.save(&store)
    }
}

impl Store {
    fn live(&self, subject: &str) -> Result<Vec<Version>, RegistryError> {
        let live: Vec<Version> = self
            .subjects
            .get(subject)
            .map(|vs| vs.iter().filter(|v| !v.deleted).copied().collect())
            .unwrap_or_default();
        if live.is_empty() {
            return Err(RegistryError::subject_not_found(subject));
        }
        Ok(live)
    }

    fn pick(&self, subject: &str, version: Option<i32>) -> Result<Version, RegistryError> {
        let live = self.live(subject)?;
        match version {
            None => Ok(*live.last().expect("live is not empty")),
            Some(n) => live.into_iter().find(|v| v.version == n).ok_or_else(|| RegistryError::version_not_found(n)),
        }
    }

    fn find(&self, subject: &str, schema: &Submitted) -> Option<Version> {
        let versions = self.subjects.get(subject)?;
        versions.iter().filter(|v| !v.deleted).copied().find(|v| {
            self.schemas.iter().any(|s| s.id == v.id && s.schema == schema.schema && s.references == schema.references)
        })
    }

    fn registered(&self, subject: &str, v: Version) -> Registered {
        let s = self.schemas.iter().find(|s| s.id == v.id).expect("a version points at a stored schema");
        Registered {
            subject: subject.to_string(),
            id: v.id,
            version: v.version,
            schema: s.schema.clone(),
            schema_type: PROTOBUF.into(),
            references: s.references.clone(),
        }
    }

    /// Every schema `references` reach, by import name.
    fn flatten(&self, references: &[Reference], out: &mut BTreeMap<String, String>) -> Result<(), RegistryError> {
        for r in references {
            if out.contains_key(&r.name) {
                continue;
            }
            let v = self.pick(&r.subject, Some(r.version)).map_err(|_| {
                RegistryError::invalid_schema(format!(
                    "reference {} points at subject {} version {}, which is not registered",
                    r.name, r.subject, r.version
                ))
            })?;
            let s = self.schemas.iter().find(|s| s.id == v.id).expect("a version points at a stored schema");
            out.insert(r.name.clone(), s.schema.clone());
            self.flatten(&s.references.clone(), out)?;
        }
        Ok(())
    }

    fn compile(&self, schema: &str, references: &[Reference]) -> Result<Compiled, RegistryError> {
        let mut files = BTreeMap::new();
        self.flatten(references, &mut files)?;
        compile::compile(schema, &files).map_err(RegistryError::invalid_schema)
    }

    fn validate(&self, schema: &Submitted) -> Result<Compiled, RegistryError> {
        match schema.schema_type.as_deref() {
            Some(PROTOBUF) => self.compile(&schema.schema, &schema.references),
            other => Err(RegistryError::invalid_schema(format!(
                "chinook's registry holds protobuf schemas only; schemaType is {} (send \"schemaType\": \"PROTOBUF\")",
                other.unwrap_or("absent, which means AVRO")
            ))),
        }
    }

    /// What keeps `new` from following the subject's versions (only
    /// `against` when given), by the subject's level.
    fn incompatibilities(
        &mut self,
        subject: &str,
        against: Option<i32>,
        new: &Compiled,
    ) -> Result<Vec<String>, RegistryError> {
        let level = self.subject_compatibility.get(subject).copied().unwrap_or(self.compatibility);
        let live = match self.live(subject) {
            Ok(live) => live,
            Err(_) => return Ok(Vec::new()),
        };
        let olds: Vec<Version> = match (against, level.transitive()) {
            (Some(n), _) => live.into_iter().filter(|v| v.version == n).collect(),
            (None, true) => live,
            (None, false) => live.last().copied().into_iter().collect(),
        };
        let mut problems = Vec::new();
        if level == Level::None {
            return Ok(problems);
        }
        for v in olds {
            let s = self.schemas.iter().find(|s| s.id == v.id).cloned().expect("a version points at a stored schema");
            let old = self.compile(&s.schema, &s.references)?;
            if level.backward() {
                problems.extend(
                    changes(&old, new, Direction::Backward).into_iter().map(|p| format!("version {}: {p}", v.version)),
                );
            }
            if level.forward() {
                problems.extend(
                    changes(&old, new, Direction::Forward)
                        .into_iter()
                        .map(|p| format!("version {} cannot read the new one: {p}", v.version)),
                );
            }
        }
        Ok(problems)
    }
}

/// What breaks between `old` and `new` in `direction`, by the WIRE rules of
/// `chinook schema check` (buf's rule ids): what matters to bytes on a topic.
fn changes(old: &Compiled, new: &Compiled, direction: Direction) -> Vec<String> {
    let set = |c: &Compiled| ProtoSet { pool: c.file.parent_pool().clone(), names: vec![c.file.name().to_string()] };
    crate::schema::check_direction(&set(old), &set(new), Category::Wire, direction)
        .into_iter()
        .map(|v| format!("{} {}", v.rule, v.message))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto(fields: &str) -> Submitted {
        Submitted {
            schema: format!("syntax = \"proto3\";\npackage t.v1;\nmessage M {{\n{fields}\n}}\n"),
            schema_type: Some(PROTOBUF.into()),
            references: Vec::new(),
        }
    }

    #[test]
    fn levels_judge_the_right_versions_in_the_right_direction() {
        let r = Registry::in_memory();
        let v1 = proto("string id = 1;");
        let v2 = proto("string id = 1;\n  int64 at = 2;");
        let v3 = proto("string id = 1;");
        assert_eq!(r.register("s", &v1).unwrap().version, 1);
        assert_eq!(r.register("s", &v1).unwrap().version, 1, "the same schema again is the same version");
        assert_eq!(r.register("s", &v2).unwrap().version, 2);
        // Removing `at` without reserving it breaks both ways under the WIRE rules.
        assert!(!r.check("s", None, &v3).unwrap().is_empty());
        r.set_level(Some("s"), Some(Level::None)).unwrap();
        assert!(r.check("s", None, &v3).unwrap().is_empty());
        assert_eq!(r.level(Some("s")), Some(Level::None));
        r.set_level(Some("s"), None).unwrap();
        assert_eq!(r.level(Some("s")), None);
        assert_eq!(r.set_level(Some("s"), None).unwrap_err().code, 40408);

        // A type change is refused with 409; the subject keeps its two versions.
        let bad = proto("int32 id = 1;\n  int64 at = 2;");
        assert_eq!(r.register("s", &bad).unwrap_err().status, 409);
        assert_eq!(r.versions("s").unwrap(), [1, 2]);
        // The same text under another subject shares the id.
        assert_eq!(r.register("other", &v2).unwrap().id, r.version("s", Some(2)).unwrap().id);
        assert_eq!(r.subjects_of(r.version("s", None).unwrap().id).unwrap().len(), 2);

        // Lookup, soft and permanent deletes, and the errors a client sees.
        assert_eq!(r.lookup("s", &v1).unwrap().version, 1);
        assert_eq!(r.lookup("s", &bad).unwrap_err().code, 40403);
        assert_eq!(r.delete_version("s", Some(1)).unwrap(), 1);
        assert_eq!(r.versions("s").unwrap(), [2]);
        assert_eq!(r.version("s", Some(1)).unwrap_err().code, 40402);
        assert_eq!(r.delete_subject("s", false).unwrap(), [2]);
        assert_eq!(r.versions("s").unwrap_err().code, 40401);
        assert_eq!(r.delete_subject("s", true).unwrap(), [1, 2]);
        assert!(!r.subjects().contains(&"s".to_string()));
        assert_eq!(parse_version("0").unwrap_err().code, 42202);
        let avro = Submitted { schema_type: None, ..v1 };
        assert_eq!(r.register("s", &avro).unwrap_err().code, 42201);
    }

    #[test]
    fn saved_registries_keep_their_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.json");
        let id = Registry::open(path.clone()).unwrap().register("s", &proto("string id = 1;")).unwrap().id;
        let again = Registry::open(path).unwrap();
        assert_eq!(again.version("s", None).unwrap().id, id);
        assert!(again.compiled(id).unwrap().message(&[0]).is_some());
    }
}
