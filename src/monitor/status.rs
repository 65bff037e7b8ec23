//! Burrow-style consumer status, judged per partition over a window of
//! samples of the group's committed offset and lag (Burrow judges a window of
//! commits; chinook polls, so it judges what each poll saw):
//!
//! 1. Lag zero now, or at any sample in the window: **OK**.
//! 2. The committed offset went backwards: **REWIND**.
//! 3. The offset did not move over the whole window while lag stayed above
//!    zero: **STOP** when the group has no member left (nobody is committing),
//!    **STALL** when members are there (alive, but stuck).
//! 4. The offset moves but the lag never went down between two samples:
//!    **WARN** (the consumer is falling behind).
//! 5. Otherwise **OK**. A window of fewer than two samples is OK.
//!
//! A group is **ERR** when any partition is STOP, STALL or REWIND, **WARN**
//! when any is WARN, **OK** otherwise.

use serde::Serialize;

/// A partition's (or a group's) status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Warn,
    Stall,
    Stop,
    Rewind,
    Err,
}

impl Status {
    /// Every status, in the order the metrics list them.
    pub const ALL: [Status; 6] = [Status::Ok, Status::Warn, Status::Stall, Status::Stop, Status::Rewind, Status::Err];

    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Stall => "STALL",
            Status::Stop => "STOP",
            Status::Rewind => "REWIND",
            Status::Err => "ERR",
        }
    }
}

/// What one poll saw of a partition: the committed offset (none before the
/// first commit) and the lag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub committed: Option<i64>,
    pub lag: i64,
}

/// The status of a partition whose samples (oldest first) are `window`, in a
/// group with `members` members now.
pub fn partition(window: &[Sample], members: usize) -> Status {
    let Some(last) = window.last() else { return Status::Ok };
    if window.len() < 2 || last.lag <= 0 || window.iter().any(|s| s.lag <= 0) {
        return Status::Ok;
    }
    let offsets: Vec<i64> = window.iter().map(|s| s.committed.unwrap_or(-1)).collect();
    if offsets.windows(2).any(|w| w[1] < w[0]) {
        return Status::Rewind;
    }
    if offsets.windows(2).all(|w| w[1] == w[0]) {
        return if members == 0 { Status::Stop } else { Status::Stall };
    }
    if window.windows(2).all(|w| w[1].lag >= w[0].lag) {
        return Status::Warn;
    }
    Status::Ok
}

/// A group's status from its partitions'.
pub fn group(partitions: impl IntoIterator<Item = Status>) -> Status {
    partitions.into_iter().fold(Status::Ok, |worst, s| match s {
        Status::Stall | Status::Stop | Status::Rewind | Status::Err => Status::Err,
        Status::Warn if worst == Status::Ok => Status::Warn,
        _ => worst,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(points: &[(i64, i64)]) -> Vec<Sample> {
        points.iter().map(|&(committed, lag)| Sample { committed: Some(committed), lag }).collect()
    }

    #[test]
    fn each_rule_in_turn() {
        // Lag zero somewhere in the window: OK, however it looks now.
        assert_eq!(partition(&w(&[(10, 0), (10, 5), (10, 9)]), 1), Status::Ok);
        assert_eq!(partition(&w(&[(10, 4), (12, 0)]), 1), Status::Ok);
        // One sample cannot show a trend.
        assert_eq!(partition(&w(&[(10, 50)]), 0), Status::Ok);
        assert_eq!(partition(&w(&[(10, 5), (8, 9)]), 1), Status::Rewind);
        assert_eq!(partition(&w(&[(10, 5), (10, 9), (10, 9)]), 1), Status::Stall);
        assert_eq!(partition(&w(&[(10, 5), (10, 9), (10, 9)]), 0), Status::Stop);
        // Moving, but falling behind at every step (or holding).
        assert_eq!(partition(&w(&[(10, 5), (20, 9), (30, 9)]), 1), Status::Warn);
        // Moving and catching up somewhere: OK.
        assert_eq!(partition(&w(&[(10, 5), (20, 9), (40, 3)]), 1), Status::Ok);
        // Never committed while records wait: the offset does not move.
        let never = [Sample { committed: None, lag: 5 }, Sample { committed: None, lag: 8 }];
        assert_eq!(partition(&never, 2), Status::Stall);
    }

    #[test]
    fn a_group_is_as_bad_as_its_worst_partition() {
        assert_eq!(group([Status::Ok, Status::Ok]), Status::Ok);
        assert_eq!(group([Status::Ok, Status::Warn]), Status::Warn);
        assert_eq!(group([Status::Warn, Status::Stall, Status::Ok]), Status::Err);
        assert_eq!(group([]), Status::Ok);
    }
}
