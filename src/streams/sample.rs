//! A sample stream for windowed counting: customer events of several types,
//! in order, out of order within the grace period, late beyond it, and one
//! far ahead that closes every earlier window. Lab 4's aggregator check
//! publishes it and judges the student's counts against [`expected`].

use super::{
    aggregate::{self, By},
    windows::{Count, Spec, Windows},
};
use crate::{
    codec::pb::events::v1::CustomerEvent,
    events::{self, EventKind, Facts},
};

/// 2026-01-01T00:00:00Z: a fixed past, so the windows are the same on every run.
const BASE_MS: i64 = 1_767_225_600_000;

/// Which event, and when (tenths of a window after the first window's start).
const SHAPE: [(EventKind, i64); 13] = [
    (EventKind::CustomerCreated, 1),
    (EventKind::CustomerUpdated, 3),
    (EventKind::CustomerCreated, 12),
    // Out of order: its window is still open (within the grace period).
    (EventKind::ContactUpdated, 7),
    (EventKind::CustomerCreated, 14),
    (EventKind::StatusChanged, 16),
    (EventKind::CustomerCreated, 22),
    // Late beyond the grace period (for a grace under 0.4 windows): dropped.
    (EventKind::CustomerUpdated, 8),
    (EventKind::CustomerUpdated, 19),
    (EventKind::CustomerDeleted, 25),
    (EventKind::CustomerCreated, 34),
    (EventKind::ContactUpdated, 15),
    // Far ahead: every window before it closes.
    (EventKind::CustomerCreated, 100),
];

/// The events, each with its record timestamp, for tumbling windows of `window_ms`.
pub fn events(window_ms: i64) -> Vec<(CustomerEvent, i64)> {
    let base = BASE_MS - BASE_MS % window_ms;
    SHAPE
        .iter()
        .enumerate()
        .map(|(i, (kind, tenths))| {
            let e = events::event(*kind, &Facts { id: 100 + i as i64, ..Default::default() }, 1);
            (e, base + window_ms * tenths / 10)
        })
        .collect()
}

/// The final counts per event type that Kafka Streams' rules give for
/// `input` (in order) in tumbling windows of `window_ms` with `grace_ms`,
/// and how many records were dropped as late.
pub fn expected(input: &[(CustomerEvent, i64)], window_ms: i64, grace_ms: i64) -> (Vec<Count>, u64) {
    let mut windows = Windows::new(Spec::Time { size: window_ms, advance: window_ms }, grace_ms);
    let mut finals = Vec::new();
    for (e, ts) in input {
        windows.record(&aggregate::key(By::EventType, e), *ts);
        finals.extend(windows.take_final());
    }
    (finals, windows.dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_has_late_records_within_and_beyond_grace() {
        let input = events(10_000);
        let (finals, dropped) = expected(&input, 10_000, 5_000);
        // 0.8 and 1.5 windows arrive after their windows closed.
        assert_eq!(dropped, 2);
        // [0, 1) holds created, updated and the out-of-order contact update.
        let first: Vec<_> = finals.iter().filter(|c| c.start == input[0].1 - 1_000).collect();
        assert_eq!(first.len(), 3, "{finals:?}");
        // Only the far-ahead record's window stays open.
        assert!(finals.iter().all(|c| c.end <= input[12].1));
    }
}
