//! Turning a registered schema into descriptors: a schema is either `.proto`
//! text or a base64 `FileDescriptorProto` (what Confluent's own clients send),
//! and its references are other schemas known by import name. protox
//! compiles the lot, so the registry only ever holds schemas that compile.

use std::collections::BTreeMap;

use base64::Engine;
use prost::Message;
use prost_reflect::{DescriptorPool, FileDescriptor, MessageDescriptor};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

/// The name a schema's own file gets when its text does not name one.
pub const MAIN_FILE: &str = "schema.proto";

/// A compiled schema: its own file, with every import resolved.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub file: FileDescriptor,
}

/// The schema's own descriptor, when it was sent as base64 (a descriptor
/// always has a name; text never decodes as one with the `.proto` suffix).
fn as_descriptor(schema: &str) -> Option<prost_types::FileDescriptorProto> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(schema.trim()).ok()?;
    let proto = prost_types::FileDescriptorProto::decode(bytes.as_slice()).ok()?;
    proto.name.as_deref().is_some_and(|n| n.ends_with(".proto")).then_some(proto)
}

fn open(name: &str, schema: &str) -> Result<File, protox::Error> {
    match as_descriptor(schema) {
        Some(mut proto) => {
            proto.name = Some(name.to_string());
            Ok(File::from_file_descriptor_proto(proto))
        }
        None => File::from_source(name, schema),
    }
}

/// Serves schemas by import name.
struct References(BTreeMap<String, String>);

impl FileResolver for References {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.get(name) {
            Some(schema) => open(name, schema),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// Compiles `schema` with `references` (import name → schema, every level
/// flattened); well-known types resolve without being referenced.
pub fn compile(schema: &str, references: &BTreeMap<String, String>) -> Result<Compiled, String> {
    let name = as_descriptor(schema).and_then(|p| p.name).unwrap_or_else(|| MAIN_FILE.to_string());
    let mut files = references.clone();
    files.insert(name.clone(), schema.to_string());
    let mut chain = ChainFileResolver::new();
    chain.add(References(files));
    chain.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(chain);
    compiler.include_imports(true);
    compiler.open_file(&name).map_err(|e| e.to_string())?;
    let pool: DescriptorPool = compiler.descriptor_pool();
    let file = pool.get_file_by_name(&name).ok_or_else(|| format!("{name} did not compile to a file"))?;
    Ok(Compiled { file })
}

impl Compiled {
    /// The message at `indexes` (top-level index, then nested ones).
    pub fn message(&self, indexes: &[i64]) -> Option<MessageDescriptor> {
        let (first, rest) = indexes.split_first()?;
        let mut msg = self.file.messages().nth(usize::try_from(*first).ok()?)?;
        for i in rest {
            let child = msg.child_messages().nth(usize::try_from(*i).ok()?)?;
            msg = child;
        }
        Some(msg)
    }

    /// The base64 `FileDescriptorProto` (`?format=serialized`).
    pub fn serialized(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.file.file_descriptor_proto().encode_to_vec())
    }
}

/// Where `message` sits in its file, as the Confluent header's indexes.
pub fn indexes_of(message: &MessageDescriptor) -> Vec<i64> {
    let mut path = Vec::new();
    let mut at = message.clone();
    loop {
        match at.parent_message() {
            Some(parent) => {
                path.push(parent.child_messages().position(|m| m.full_name() == at.full_name()).unwrap_or(0) as i64);
                at = parent;
            }
            None => {
                path.push(at.parent_file().messages().position(|m| m.full_name() == at.full_name()).unwrap_or(0) as i64);
                break;
            }
        }
    }
    path.reverse();
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "syntax = \"proto3\";\npackage t.v1;\nimport \"google/protobuf/timestamp.proto\";\nimport \"dep.proto\";\nmessage A { string id = 1; google.protobuf.Timestamp at = 2; D d = 3; message N { int32 x = 1; } }\nmessage B { A.N n = 1; }\n";

    #[test]
    fn text_with_references_and_the_same_as_base64() {
        let refs = BTreeMap::from([(
            "dep.proto".to_string(),
            "syntax = \"proto3\";\npackage t.v1;\nmessage D {}\n".to_string(),
        )]);
        let text = compile(OLD, &refs).unwrap();
        assert_eq!(text.message(&[0]).unwrap().full_name(), "t.v1.A");
        assert_eq!(text.message(&[0, 0]).unwrap().full_name(), "t.v1.A.N");
        assert_eq!(text.message(&[1]).unwrap().full_name(), "t.v1.B");
        assert!(text.message(&[2]).is_none() && text.message(&[]).is_none() && text.message(&[-1]).is_none());
        assert_eq!(indexes_of(&text.message(&[0, 0]).unwrap()), [0, 0]);
        assert_eq!(indexes_of(&text.message(&[1]).unwrap()), [1]);

        let again = compile(&text.serialized(), &refs).unwrap();
        assert_eq!(again.file.file_descriptor_proto(), text.file.file_descriptor_proto());
        assert!(compile(OLD, &BTreeMap::new()).unwrap_err().contains("dep.proto"));
        assert!(compile("message {", &refs).is_err());
    }
}
