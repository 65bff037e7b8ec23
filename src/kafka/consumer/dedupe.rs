//! `consume --dedupe`: the ids of the records this group has handled, kept
//! in a file (`.chinook/dedupe/<group>.ids`, one id per line) so that a
//! consumer restarted after a crash skips what it had already handled but
//! not yet committed. An id is written after the record's output is out, so
//! only a crash between those two writes can still handle a record twice.

use std::{
    collections::HashSet,
    io::{BufRead, Write},
    path::{Path, PathBuf},
};

use super::KafkaError;

/// The handled ids of one group, in memory and on disk.
pub struct Dedupe {
    seen: HashSet<String>,
    file: std::fs::File,
    pub path: PathBuf,
}

impl Dedupe {
    /// Opens (or creates) the state of `group` under `dir`.
    pub fn open(dir: &Path, group: &str) -> Result<Self, KafkaError> {
        let io = |e: std::io::Error| KafkaError::request(&format!("opening the dedupe state in {}", dir.display()), e);
        std::fs::create_dir_all(dir).map_err(io)?;
        let name: String =
            group.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
        let path = dir.join(format!("{name}.ids"));
        let file = std::fs::OpenOptions::new().create(true).read(true).append(true).open(&path).map_err(io)?;
        let seen = std::io::BufReader::new(&file).lines().map_while(Result::ok).filter(|l| !l.is_empty()).collect();
        Ok(Self { seen, file, path })
    }

    pub fn seen(&self, id: &str) -> bool {
        self.seen.contains(id)
    }

    /// Remembers `id` as handled, on disk before it returns.
    pub fn record(&mut self, id: String) -> Result<(), KafkaError> {
        writeln!(self.file, "{id}").map_err(|e| KafkaError::request(&format!("writing {}", self.path.display()), e))?;
        self.seen.insert(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Dedupe::open(dir.path(), "billing/eu").unwrap();
        assert!(!d.seen("evt-1"));
        d.record("evt-1".into()).unwrap();
        drop(d);
        let d = Dedupe::open(dir.path(), "billing/eu").unwrap();
        assert!(d.seen("evt-1") && !d.seen("evt-2"));
        assert!(d.path.ends_with("billing_eu.ids"));
    }
}
