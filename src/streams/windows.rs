//! Windowed counting with Kafka Streams' semantics, written from its rules:
//!
//! - **Time windows** (tumbling: advance = size; hopping: advance < size) are
//!   epoch-aligned `[start, start + size)`. A record at `ts` falls in every
//!   window with `start ≤ ts < start + size`, starts never negative.
//! - **Stream time** is the largest record timestamp seen so far, the current
//!   record included.
//! - A record is **dropped for a window** when `windowEnd ≤ streamTime − grace`;
//!   it still counts in the newer windows that are open (hopping), and every
//!   such drop is counted, as Kafka's dropped-records sensor counts them.
//! - **Sliding windows** (`SlidingWindows`, time difference `d`) are
//!   `[start, start + d]`, both ends inclusive. The windows that exist are each
//!   record's left window `[ts − d, ts]` (`[0, d]` for a record earlier than
//!   `d`: starts are never negative) and its right window `[ts + 1, ts + 1 + d]`
//!   when a record falls in it; each counts the records in its range. A record
//!   is dropped when `ts + 1 + d ≤ streamTime − grace` (even its right window
//!   has closed); a window ending before `streamTime − grace` is not updated
//!   (a drop for that window) and is final.
//! - **Session windows** merge every session of the key whose end ≥ ts − gap
//!   and start ≤ ts + gap with the record into `[min start, max end]`; the
//!   record is dropped when that merged end < streamTime − grace − gap.
//! - **Final** results: a time window is final once `windowEnd ≤ streamTime −
//!   grace`, a session once its end < streamTime − grace − gap.

use std::collections::BTreeMap;

use serde::Serialize;

/// Which windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spec {
    /// Size and advance, in milliseconds.
    Time { size: i64, advance: i64 },
    /// Time difference, in milliseconds.
    Sliding { difference: i64 },
    /// Inactivity gap, in milliseconds.
    Session { gap: i64 },
}

impl std::str::FromStr for Spec {
    type Err = String;

    /// `tumbling:1m`, `hopping:1m/10s`, `sliding:1m`, `session:30s`.
    fn from_str(s: &str) -> Result<Self, String> {
        let ms = |t: &str| -> Result<i64, String> {
            let d = humantime::parse_duration(t).map_err(|e| format!("{t:?}: {e}"))?;
            let ms = d.as_millis() as i64;
            if ms <= 0 { Err(format!("{t:?}: a window needs a length above 0 ms")) } else { Ok(ms) }
        };
        let usage = || {
            format!(
                "{s:?}: use tumbling:SIZE, hopping:SIZE/ADVANCE, sliding:DIFFERENCE or session:GAP (e.g. tumbling:1m, hopping:1m/10s, sliding:1m, session:30s)"
            )
        };
        match s.split_once(':') {
            Some(("tumbling", size)) => ms(size).map(|size| Spec::Time { size, advance: size }),
            Some(("hopping", rest)) => {
                let (size, advance) = rest.split_once('/').ok_or_else(usage)?;
                let (size, advance) = (ms(size)?, ms(advance)?);
                if advance > size {
                    return Err(format!("{s:?}: the advance must not be larger than the size"));
                }
                Ok(Spec::Time { size, advance })
            }
            Some(("sliding", difference)) => ms(difference).map(|difference| Spec::Sliding { difference }),
            Some(("session", gap)) => ms(gap).map(|gap| Spec::Session { gap }),
            _ => Err(usage()),
        }
    }
}

impl std::fmt::Display for Spec {
    /// The form `--window` takes: `tumbling:1m`, `hopping:1m 10s/10s`, `sliding:1m`, `session:30s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = |ms: i64| humantime::format_duration(std::time::Duration::from_millis(ms.max(0) as u64));
        match *self {
            Spec::Time { size, advance } if size == advance => write!(f, "tumbling:{}", d(size)),
            Spec::Time { size, advance } => write!(f, "hopping:{}/{}", d(size), d(advance)),
            Spec::Sliding { difference } => write!(f, "sliding:{}", d(difference)),
            Spec::Session { gap } => write!(f, "session:{}", d(gap)),
        }
    }
}

/// A window's count, as it is emitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Count {
    pub key: String,
    /// Milliseconds since the epoch; time windows end exclusive, sliding windows and sessions inclusive.
    pub start: i64,
    pub end: i64,
    pub count: u64,
}

/// The counting state of one stream.
#[derive(Clone, Debug)]
pub struct Windows {
    spec: Spec,
    grace: i64,
    stream_time: Option<i64>,
    /// (key, start) → (end, count).
    open: BTreeMap<(String, i64), (i64, u64)>,
    /// Sliding windows: (key, timestamp) → records accepted at that time, kept
    /// while a new window could still hold them.
    seen: BTreeMap<(String, i64), u64>,
    /// (record, window) drops.
    pub dropped: u64,
}

impl Windows {
    pub fn new(spec: Spec, grace_ms: i64) -> Self {
        Self {
            spec,
            grace: grace_ms.max(0),
            stream_time: None,
            open: BTreeMap::new(),
            seen: BTreeMap::new(),
            dropped: 0,
        }
    }

    pub fn stream_time(&self) -> Option<i64> {
        self.stream_time
    }

    /// Counts a record of `key` at `ts`; returns the windows it changed, as they now stand.
    pub fn record(&mut self, key: &str, ts: i64) -> Vec<Count> {
        let stream_time = self.stream_time.map_or(ts, |t| t.max(ts));
        self.stream_time = Some(stream_time);
        match self.spec {
            Spec::Time { size, advance } => {
                let close = stream_time - self.grace;
                let mut changed = Vec::new();
                let mut start = ((ts - size + advance).max(0) / advance) * advance;
                while start <= ts {
                    let end = start + size;
                    if end > close {
                        let entry = self.open.entry((key.to_string(), start)).or_insert((end, 0));
                        entry.1 += 1;
                        changed.push(Count { key: key.to_string(), start, end, count: entry.1 });
                    } else {
                        self.dropped += 1;
                    }
                    start += advance;
                }
                changed
            }
            Spec::Sliding { difference } => self.slide(key, ts, difference, stream_time - self.grace),
            Spec::Session { gap } => {
                let close = stream_time - self.grace - gap;
                let merging: Vec<(i64, i64, u64)> = self
                    .open
                    .range((key.to_string(), i64::MIN)..=(key.to_string(), i64::MAX))
                    .filter(|((_, start), (end, _))| *end >= ts - gap && *start <= ts + gap)
                    .map(|((_, start), (end, count))| (*start, *end, *count))
                    .collect();
                let start = merging.iter().map(|m| m.0).min().unwrap_or(ts).min(ts);
                let end = merging.iter().map(|m| m.1).max().unwrap_or(ts).max(ts);
                if end < close {
                    self.dropped += 1;
                    return Vec::new();
                }
                for (s, _, _) in &merging {
                    self.open.remove(&(key.to_string(), *s));
                }
                let count = merging.iter().map(|m| m.2).sum::<u64>() + 1;
                self.open.insert((key.to_string(), start), (end, count));
                vec![Count { key: key.to_string(), start, end, count }]
            }
        }
    }

    /// A record of `key` at `ts` in sliding windows of difference `d`, with
    /// windows ending before `close` closed.
    fn slide(&mut self, key: &str, ts: i64, d: i64, close: i64) -> Vec<Count> {
        if ts + 1 + d <= close {
            self.dropped += 1;
            return Vec::new();
        }
        // Nothing older than this can fall in a window that may still change.
        let keep = close - 2 * d - 2;
        self.seen.retain(|(_, t), _| *t >= keep);
        *self.seen.entry((key.to_string(), ts)).or_insert(0) += 1;
        let times: Vec<i64> = self
            .seen
            .range((key.to_string(), ts - d - 1)..=(key.to_string(), ts + d + 1))
            .map(|((_, t), _)| *t)
            .collect();
        // The windows that hold `ts`: the left windows of records in [ts, ts + d]
        // (an early record's is [0, d]) and the right windows of records in
        // [ts − 1 − d, ts − 1]. Then this record's own right window, if a later
        // record falls in it.
        let mut starts: Vec<i64> = times
            .iter()
            .filter_map(|&t| {
                if (ts..=ts + d).contains(&t) {
                    Some((t - d).max(0))
                } else if (ts - 1 - d..ts).contains(&t) {
                    Some(t + 1)
                } else {
                    None
                }
            })
            .collect();
        starts.sort_unstable();
        starts.dedup();
        let mut changed = Vec::new();
        for start in starts {
            let end = start + d;
            if end < close {
                self.dropped += 1;
                continue;
            }
            let k = (key.to_string(), start);
            let count = match self.open.get(&k) {
                Some((_, count)) => count + 1,
                None => self.seen_between(key, start, end),
            };
            self.open.insert(k, (end, count));
            changed.push(Count { key: key.to_string(), start, end, count });
        }
        let right = (key.to_string(), ts + 1);
        if !self.open.contains_key(&right) && times.iter().any(|&t| t > ts && t <= ts + 1 + d) {
            let count = self.seen_between(key, ts + 1, ts + 1 + d);
            self.open.insert(right, (ts + 1 + d, count));
            changed.push(Count { key: key.to_string(), start: ts + 1, end: ts + 1 + d, count });
        }
        changed
    }

    /// Records of `key` accepted with `start ≤ ts ≤ end`.
    fn seen_between(&self, key: &str, start: i64, end: i64) -> u64 {
        self.seen.range((key.to_string(), start)..=(key.to_string(), end)).map(|(_, n)| n).sum()
    }

    /// Whether a window ending at `end` is final at the current stream time.
    fn is_final(&self, end: i64) -> bool {
        let Some(now) = self.stream_time else { return false };
        match self.spec {
            Spec::Time { .. } => end <= now - self.grace,
            Spec::Sliding { .. } => end < now - self.grace,
            Spec::Session { gap } => end < now - self.grace - gap,
        }
    }

    /// Takes the windows that became final (each once, oldest first).
    pub fn take_final(&mut self) -> Vec<Count> {
        let done: Vec<(String, i64)> =
            self.open.iter().filter(|(_, (end, _))| self.is_final(*end)).map(|(k, _)| k.clone()).collect();
        let mut out: Vec<Count> = done
            .into_iter()
            .filter_map(|k| self.open.remove(&k).map(|(end, count)| Count { key: k.0, start: k.1, end, count }))
            .collect();
        out.sort_by_key(|c| (c.end, c.start, c.key.clone()));
        out
    }

    /// Every window not yet final, as it stands.
    pub fn open(&self) -> Vec<Count> {
        self.open
            .iter()
            .map(|((key, start), (end, count))| Count { key: key.clone(), start: *start, end: *end, count: *count })
            .collect()
    }
}
