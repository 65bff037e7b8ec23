//! Expected vs observed: the one result shape of every judgement chinook
//! makes — a row of a `break` scenario, a lab check, a victory condition.
//! `ui::verdict_table` renders a list of them; `--format json` shows them as
//! they are.

use serde::Serialize;

/// What was expected, what was observed, and whether that is a pass.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Verdict {
    /// What was looked at.
    pub what: String,
    pub expected: String,
    pub observed: String,
    pub passed: bool,
}

impl Verdict {
    /// Passes when the observed value reads exactly as the expected one.
    pub fn equal(what: impl Into<String>, expected: impl ToString, observed: impl ToString) -> Self {
        let (expected, observed) = (expected.to_string(), observed.to_string());
        Self { what: what.into(), passed: expected == observed, expected, observed }
    }

    /// Passes when `holds`; `expected` says in words what has to hold
    /// ("more than 20"), `observed` is the value seen.
    pub fn holds(what: impl Into<String>, expected: impl Into<String>, observed: impl ToString, holds: bool) -> Self {
        Self { what: what.into(), expected: expected.into(), observed: observed.to_string(), passed: holds }
    }
}

/// How many of `verdicts` failed.
pub fn failures<'a>(verdicts: impl IntoIterator<Item = &'a Verdict>) -> usize {
    verdicts.into_iter().filter(|v| !v.passed).count()
}

#[cfg(test)]
mod tests {
    use super::Verdict;

    #[test]
    fn equal_compares_the_text_and_holds_takes_the_condition() {
        assert!(Verdict::equal("acked", 10, "10").passed);
        assert!(!Verdict::equal("acked", 10, 9).passed);
        let v = Verdict::holds("copies", "more than 20", 40, 40 > 20);
        assert!(v.passed);
        assert_eq!(v.observed, "40");
    }
}
