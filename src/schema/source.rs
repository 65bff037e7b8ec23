//! Where a finding points: the descriptor path of an element (e.g. message 0,
//! field 2, its type) looked up in the file's SourceCodeInfo, and the sink
//! that collects findings for the rules of one category.

use prost_reflect::FileDescriptor;

use super::{Category, Violation, rules};

/// 1-based line and column of the element at `path` in `file`, if the source info has it.
pub fn position(file: &FileDescriptor, path: &[i32]) -> Option<(u32, u32)> {
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    let loc = info.location.iter().find(|l| l.path == path)?;
    Some((*loc.span.first()? as u32 + 1, *loc.span.get(1)? as u32 + 1))
}

/// Path of a sub-element: `base` followed by `tail`.
pub fn sub(base: &[i32], tail: &[i32]) -> Vec<i32> {
    let mut p = base.to_vec();
    p.extend_from_slice(tail);
    p
}

/// Collects the findings of the rules that belong to one category.
pub struct Sink {
    category: Category,
    out: Vec<Violation>,
}

impl Sink {
    pub fn new(category: Category) -> Self {
        Self { category, out: Vec::new() }
    }

    /// Whether the rule is one of this category's.
    pub fn on(&self, rule: &str) -> bool {
        rules::enabled(self.category, rule)
    }

    /// Records a finding in `file` at the first of `paths` that has a position
    /// (the file's first line, as buf does, when none has).
    pub fn add(&mut self, rule: &'static str, file: &FileDescriptor, paths: &[&[i32]], message: String) {
        if !self.on(rule) {
            return;
        }
        let (line, column) = paths.iter().find_map(|p| position(file, p)).unwrap_or((1, 1));
        self.out.push(Violation { file: file.name().to_string(), line, column, rule, message });
    }

    /// Records a finding about a whole file (gone from the new set): line 1, column 1.
    pub fn add_file(&mut self, rule: &'static str, file: &str, message: String) {
        if self.on(rule) {
            self.out.push(Violation { file: file.to_string(), line: 1, column: 1, rule, message });
        }
    }

    pub fn into_violations(self) -> Vec<Violation> {
        self.out
    }
}
