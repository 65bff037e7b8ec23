//! Reading the input of a check: a directory of `.proto` files (searched
//! recursively, the directory being the import root) or a single file (its
//! directory the root), compiled with protox, source positions kept.

use std::path::{Path, PathBuf};

use miette::Diagnostic;
use prost_reflect::{DescriptorPool, FileDescriptor};
use thiserror::Error;

use crate::exit;

/// What can go wrong before any rule runs.
#[derive(Debug, Error, Diagnostic)]
pub enum SchemaError {
    #[error("cannot read {}: {source}", path.display())]
    #[diagnostic(
        code(chinook::schema::read),
        help("OLD and NEW are directories of .proto files, or single .proto files")
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} holds no .proto file", path.display())]
    #[diagnostic(code(chinook::schema::empty))]
    Empty { path: PathBuf },
    #[error("{side} does not compile: {at}: {message}")]
    #[diagnostic(
        code(chinook::schema::compile),
        help("fix the schema so that protoc (or buf build) accepts it, then check again")
    )]
    Compile {
        /// "OLD" or "NEW".
        side: &'static str,
        /// file:line:column of the first error (or the file alone).
        at: String,
        message: String,
        #[diagnostic_source]
        source: protox::Error,
    },
}

impl SchemaError {
    pub fn exit_code(&self) -> i32 {
        exit::BAD_INPUT
    }
}

/// A compiled set of files: the pool (imports included) and the names of the
/// files that were asked for — only those are checked.
#[derive(Debug, Clone)]
pub struct ProtoSet {
    pub pool: DescriptorPool,
    pub names: Vec<String>,
}

impl ProtoSet {
    /// The checked files, in name order.
    pub fn files(&self) -> impl Iterator<Item = FileDescriptor> + '_ {
        self.names.iter().filter_map(|n| self.pool.get_file_by_name(n))
    }

    /// Compiles `path` (a directory or a `.proto` file); `side` names it in errors.
    pub fn load(path: &Path, side: &'static str) -> Result<Self, SchemaError> {
        let meta = std::fs::metadata(path).map_err(|source| SchemaError::Read { path: path.into(), source })?;
        let (root, names) = if meta.is_dir() {
            let mut names = Vec::new();
            collect(path, path, &mut names)?;
            names.sort();
            (path.to_path_buf(), names)
        } else {
            let root = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            (root, vec![name])
        };
        if names.is_empty() {
            return Err(SchemaError::Empty { path: path.into() });
        }
        let compile = || -> Result<DescriptorPool, protox::Error> {
            let mut compiler = protox::Compiler::new([&root])?;
            compiler.include_imports(true).include_source_info(true);
            compiler.open_files(names.iter().map(|n| root.join(n)))?;
            Ok(compiler.descriptor_pool())
        };
        let pool = compile().map_err(|e| compile_error(side, e))?;
        Ok(Self { pool, names })
    }
}

/// Every `.proto` file under `dir`, as a `/`-separated path relative to `root`.
fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), SchemaError> {
    let read = |p: &Path, e| SchemaError::Read { path: p.into(), source: e };
    for entry in std::fs::read_dir(dir).map_err(|e| read(dir, e))? {
        let path = entry.map_err(|e| read(dir, e))?.path();
        if path.is_dir() {
            collect(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push(rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"));
        }
    }
    Ok(())
}

/// Names the file, line and column of protox's first label, for the one-line message.
fn compile_error(side: &'static str, source: protox::Error) -> SchemaError {
    let file = source.file().unwrap_or("").to_string();
    let mut at = file.clone();
    if let (Some(code), Some(label)) = (source.source_code(), source.labels().and_then(|mut l| l.next()))
        && let Ok(span) = code.read_span(label.inner(), 0, 0)
    {
        let name = span.name().map(str::to_string).unwrap_or(file);
        at = format!("{name}:{}:{}", span.line() + 1, span.column() + 1);
    }
    if at.is_empty() {
        at = "(input)".into();
    }
    SchemaError::Compile { side, at, message: source.to_string(), source }
}
