//! The last few snapshots, and what they show together: rates (records in
//! per topic, committed per group, dead letters and rejected batches per
//! second, over the window), each partition's and group's status
//! ([`super::status`]), lag trends for sparklines, and partition balance.

use std::{collections::VecDeque, time::Instant};

use serde::Serialize;

use super::{
    Snapshot,
    status::{self, Sample, Status},
};

/// A dead-letter topic, by chinook's naming (`customer_events.dlq`).
pub fn is_dead_letters(topic: &str) -> bool {
    topic.ends_with(".dlq")
}

/// Snapshots, newest last, at most `window` of them.
pub struct History {
    window: usize,
    seen: VecDeque<(Instant, Snapshot)>,
}

/// What the window shows.
#[derive(Clone, Debug, Serialize)]
pub struct View {
    /// The newest snapshot.
    #[serde(flatten)]
    pub now: Snapshot,
    /// Samples in the window, and its span in seconds.
    pub samples: usize,
    pub span_secs: f64,
    /// Per topic: rates and balance.
    pub throughput: Vec<TopicView>,
    /// Per group: status, rate and lag trend.
    pub consumers: Vec<GroupView>,
    /// Produce batches the broker refused as INVALID_RECORD: since it started, and per second.
    pub rejected_batches: Option<u64>,
    pub rejected_per_sec: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TopicView {
    pub topic: String,
    /// Records appended per second over the window (none with one sample).
    pub in_per_sec: Option<f64>,
    /// Records held per partition.
    pub per_partition: Vec<i64>,
    pub dead_letters: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupView {
    pub group: String,
    pub status: Status,
    /// Offsets committed per second over the window.
    pub out_per_sec: Option<f64>,
    /// Total lag at each sample, oldest first.
    pub lag_trend: Vec<i64>,
    pub partitions: Vec<PartitionStatus>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PartitionStatus {
    pub topic: String,
    pub partition: i32,
    pub status: Status,
}

impl History {
    pub fn new(window: usize) -> Self {
        Self { window: window.max(2), seen: VecDeque::new() }
    }

    /// Adds `snapshot` (taken now) and returns the view of the window.
    pub fn push(&mut self, snapshot: Snapshot) -> View {
        self.push_at(Instant::now(), snapshot)
    }

    fn push_at(&mut self, at: Instant, snapshot: Snapshot) -> View {
        self.seen.push_back((at, snapshot));
        while self.seen.len() > self.window {
            self.seen.pop_front();
        }
        self.view()
    }

    fn view(&self) -> View {
        let (first_at, first) = self.seen.front().expect("a snapshot was pushed");
        let (last_at, now) = self.seen.back().expect("a snapshot was pushed");
        let span = last_at.duration_since(*first_at).as_secs_f64();
        let rate = |then: i64, now: i64| (span > 0.0).then(|| (now - then).max(0) as f64 / span);
        let topics = now
            .topics
            .iter()
            .map(|t| {
                let high = |s: &Snapshot| -> Option<i64> {
                    s.topics.iter().find(|o| o.name == t.name).map(|o| o.partitions.iter().map(|p| p.high).sum())
                };
                TopicView {
                    topic: t.name.clone(),
                    in_per_sec: high(first).and_then(|then| rate(then, high(now).unwrap_or(then))),
                    per_partition: t.partitions.iter().map(|p| p.high - p.low).collect(),
                    dead_letters: is_dead_letters(&t.name),
                }
            })
            .collect();
        let groups = now
            .groups
            .iter()
            .map(|g| {
                let of = |s: &Snapshot| s.groups.iter().find(|o| o.group == g.group).cloned();
                let windows: Vec<_> = self.seen.iter().filter_map(|(_, s)| of(s)).collect();
                let partitions: Vec<PartitionStatus> = g
                    .partitions
                    .iter()
                    .map(|p| {
                        let samples: Vec<Sample> = windows
                            .iter()
                            .filter_map(|w| {
                                w.partitions.iter().find(|o| o.topic == p.topic && o.partition == p.partition)
                            })
                            .map(|o| Sample { committed: o.committed, lag: o.lag })
                            .collect();
                        PartitionStatus {
                            topic: p.topic.clone(),
                            partition: p.partition,
                            status: status::partition(&samples, g.members.len()),
                        }
                    })
                    .collect();
                let committed = |d: &crate::kafka::groups::GroupDescription| -> i64 {
                    d.partitions.iter().filter_map(|p| p.committed).sum()
                };
                GroupView {
                    group: g.group.clone(),
                    status: status::group(partitions.iter().map(|p| p.status)),
                    out_per_sec: windows.first().and_then(|w| rate(committed(w), committed(g))),
                    lag_trend: windows.iter().map(|w| w.total_lag).collect(),
                    partitions,
                }
            })
            .collect();
        let rejected_per_sec = match (first.rejected_batches, now.rejected_batches) {
            (Some(then), Some(n)) => rate(then as i64, n as i64),
            _ => None,
        };
        View {
            now: now.clone(),
            samples: self.seen.len(),
            span_secs: span,
            throughput: topics,
            consumers: groups,
            rejected_batches: now.rejected_batches,
            rejected_per_sec,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::kafka::{
        admin::{PartitionInfo, TopicInfo},
        groups::{GroupDescription, PartitionLag},
    };

    fn snapshot(high: i64, committed: i64) -> Snapshot {
        Snapshot {
            topics: vec![TopicInfo {
                name: "t".into(),
                partitions: vec![PartitionInfo { id: 0, leader: 1, low: 0, high }],
                configs: vec![],
            }],
            groups: vec![GroupDescription {
                group: "g".into(),
                state: "Stable".into(),
                members: vec![],
                partitions: vec![PartitionLag {
                    topic: "t".into(),
                    partition: 0,
                    committed: Some(committed),
                    high,
                    lag: high - committed,
                    member: None,
                }],
                total_lag: high - committed,
            }],
            rejected_batches: Some(0),
        }
    }

    #[test]
    fn rates_trend_and_status_come_from_the_window() {
        let mut h = History::new(3);
        let t0 = Instant::now();
        let v = h.push_at(t0, snapshot(100, 50));
        assert_eq!((v.throughput[0].in_per_sec, v.consumers[0].status), (None, Status::Ok));
        h.push_at(t0 + Duration::from_secs(1), snapshot(200, 60));
        let v = h.push_at(t0 + Duration::from_secs(2), snapshot(300, 70));
        assert_eq!(v.throughput[0].in_per_sec, Some(100.0));
        assert_eq!(v.consumers[0].out_per_sec, Some(10.0));
        assert_eq!(v.consumers[0].lag_trend, [50, 140, 230]);
        // Moving, but further behind at every sample.
        assert_eq!(v.consumers[0].status, Status::Warn);
        // The window holds three: the first sample falls out.
        let v = h.push_at(t0 + Duration::from_secs(3), snapshot(300, 300));
        assert_eq!((v.samples, v.consumers[0].lag_trend.clone()), (3, vec![140, 230, 0]));
        assert_eq!(v.consumers[0].status, Status::Ok);
    }
}
