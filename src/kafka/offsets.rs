//! Where a consumer starts, and the one place a start (`start`, `end`,
//! `committed`, `-N`, `@time`) becomes an offset on a partition: used by the
//! consumer's plan and by `group reset`.

use std::time::SystemTime;

use rdkafka::{
    Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer, ConsumerContext},
};

use super::{KafkaError, REQUEST_TIMEOUT};

/// Where a consumer starts on each partition it is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest record kept.
    Start,
    /// Only records produced from now on.
    End,
    /// Where the group left off (the oldest record if it never committed).
    Committed,
    /// The last N records.
    Last(i64),
    /// The first record at or after this time (ms since the epoch).
    Time(i64),
}

impl std::str::FromStr for StartAt {
    type Err = String;

    /// `start`, `end`, `committed`, `-N`, `@2026-11-23T09:00:00Z` or `@-10m`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "start" | "beginning" | "earliest" => Ok(StartAt::Start),
            "end" | "latest" => Ok(StartAt::End),
            "committed" => Ok(StartAt::Committed),
            _ if s.starts_with('@') => parse_time(&s[1..]).map(StartAt::Time),
            _ => match s.strip_prefix('-').and_then(|n| n.parse::<i64>().ok()) {
                Some(n) if n > 0 => Ok(StartAt::Last(n)),
                _ => Err(format!("{s:?}: use start, end, committed, -N (last N records) or @<RFC 3339 time or -10m>")),
            },
        }
    }
}

/// A point in time as milliseconds since the epoch: RFC 3339
/// (`2026-11-23T09:00:00Z`) or an age (`-10m`).
pub fn parse_time(t: &str) -> Result<i64, String> {
    let at = if let Some(ago) = t.strip_prefix('-') {
        let d = humantime::parse_duration(ago).map_err(|e| format!("{t}: {e}"))?;
        SystemTime::now() - d
    } else {
        humantime::parse_rfc3339_weak(t)
            .map_err(|e| format!("{t}: {e} (use RFC 3339, e.g. 2026-11-23T09:00:00Z, or an age such as -10m)"))?
    };
    Ok(at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as i64)
}

impl StartAt {
    /// The offset this start means on `topic`/`partition`, given its log
    /// start `low`, its end `high` and the group's commit there (if any).
    /// A time after the last record means the end.
    pub fn offset<C: ConsumerContext>(
        self,
        client: &BaseConsumer<C>,
        (topic, partition): (&str, i32),
        (low, high): (i64, i64),
        committed: Option<i64>,
    ) -> Result<i64, KafkaError> {
        Ok(match self {
            StartAt::Start => low,
            StartAt::End => high,
            StartAt::Committed => committed.unwrap_or(low),
            StartAt::Last(n) => (high - n).max(low),
            StartAt::Time(ms) => {
                let mut q = TopicPartitionList::new();
                let _ = q.add_partition_offset(topic, partition, Offset::Offset(ms));
                let found = client
                    .offsets_for_times(q, REQUEST_TIMEOUT)
                    .map_err(|e| KafkaError::request("ListOffsets by time", e))?;
                found.elements().first().and_then(|e| e.offset().to_raw()).filter(|o| *o >= 0).unwrap_or(high)
            }
        })
    }
}
