//! The student's journal: dated entries appended to JOURNAL.md in the
//! working directory, created from the workshop template
//! (`labs/journal-template.md`, built in) when missing. The template is
//! never the file written: running in the checkout leaves it as it is.

use std::path::Path;

use super::LabError;

const TEMPLATE: &str = include_str!("../../labs/journal-template.md");
const ENTRIES: &str = "## My entries";

/// Appends an entry; returns the text written.
pub fn add(root: &Path, lab: Option<u32>, step: Option<usize>, text: &str) -> Result<String, LabError> {
    let path = root.join("JOURNAL.md");
    let io = |e: std::io::Error| LabError::Io { what: path.display().to_string(), reason: e.to_string() };
    let mut journal = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => TEMPLATE.to_string(),
        Err(e) => return Err(io(e)),
    };
    let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let place = match (lab, step) {
        (Some(l), Some(s)) => format!(" · Lab {l}, step {s}"),
        (Some(l), None) => format!(" · Lab {l}"),
        _ => String::new(),
    };
    let entry = format!("\n### {}{place}\n\n{}\n", &date[..10], text.trim());
    if !journal.ends_with('\n') {
        journal.push('\n');
    }
    journal.push_str(&entry);
    std::fs::write(&path, journal).map_err(io)?;
    Ok(entry)
}

/// The entries written so far (everything after the "My entries" heading).
pub fn entries(root: &Path) -> Result<String, LabError> {
    let path = root.join("JOURNAL.md");
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(t.split_once(ENTRIES).map_or(t.clone(), |(_, rest)| rest.to_string()).trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(LabError::Io { what: path.display().to_string(), reason: e.to_string() }),
    }
}
