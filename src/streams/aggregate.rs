//! `chinook aggregate`: customer events counted in windows. The topic is read
//! the way one Kafka Streams task reads its partitions: of the partitions'
//! next records, the one with the smallest timestamp goes first, so stream
//! time moves as Kafka Streams would move it; each record counts at its
//! record timestamp (event time).

use std::collections::VecDeque;

use serde::Serialize;

use super::windows::{Count, Windows};
use crate::{
    codec::pb::events::v1::{CustomerEvent, customer_event::Payload},
    sourcing::log::Stored,
};

/// What events are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum By {
    /// The event type (CUSTOMER_EVENT_TYPE_CREATED, …).
    EventType,
    /// The customer (aggregate id).
    Customer,
    /// The customer's country code, from events that carry it ("unknown" otherwise).
    Country,
}

/// The key `e` is counted under.
pub fn key(by: By, e: &CustomerEvent) -> String {
    match by {
        By::EventType => crate::events::route(e).ok().flatten().map_or("unknown".into(), |t| t.as_str_name().into()),
        By::Customer => e.aggregate_id.clone(),
        By::Country => {
            let contact = match &e.payload {
                Some(Payload::CustomerCreated(c)) => c.customer.as_ref().and_then(|c| c.contact.as_ref()),
                Some(Payload::CustomerUpdated(u)) => u.customer.as_ref().and_then(|c| c.contact.as_ref()),
                Some(Payload::ContactUpdated(c)) => c.contact.as_ref(),
                _ => None,
            };
            contact.map(|c| c.country_code.clone()).filter(|c| !c.is_empty()).unwrap_or_else(|| "unknown".into())
        }
    }
}

/// What a run counted.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counted {
    /// Windows that became final, in the order they did.
    pub closed: Vec<Count>,
    /// Windows still open when the input ended (set by [`count`]).
    pub open: Vec<Count>,
    /// Every update, in order (for `--emit update`).
    pub updates: Vec<Count>,
    /// (record, window) drops: records later than the grace period.
    pub dropped: u64,
    /// Records that are not customer events, or have no timestamp.
    pub skipped: u64,
    pub records: u64,
    /// The stream time at the end (ms since the epoch).
    pub stream_time: Option<i64>,
}

impl Counted {
    /// Counts one record in `windows` (a record that is not a customer event,
    /// or has no timestamp, is skipped); returns the windows it changed and
    /// those that became final, and keeps both.
    pub fn add(&mut self, windows: &mut Windows, by: By, s: &Stored) -> (Vec<Count>, Vec<Count>) {
        let (Ok(e), Some(ts)) = (s.event(), s.timestamp) else {
            self.skipped += 1;
            return (Vec::new(), Vec::new());
        };
        self.records += 1;
        let changed = windows.record(&key(by, &e), ts);
        let closed = windows.take_final();
        self.updates.extend(changed.iter().cloned());
        self.closed.extend(closed.iter().cloned());
        self.dropped = windows.dropped;
        self.stream_time = windows.stream_time();
        (changed, closed)
    }
}

/// Counts `stored` (each partition in offset order) in `windows`.
pub fn count(stored: Vec<Stored>, by: By, windows: &mut Windows) -> Counted {
    let mut partitions: Vec<VecDeque<Stored>> = Vec::new();
    for s in stored {
        match partitions.iter_mut().find(|p| p.front().is_some_and(|f| f.partition == s.partition)) {
            Some(p) => p.push_back(s),
            None => partitions.push(VecDeque::from([s])),
        }
    }
    let mut out = Counted::default();
    loop {
        let next = partitions
            .iter_mut()
            .filter(|p| !p.is_empty())
            .min_by_key(|p| p.front().and_then(|s| s.timestamp).unwrap_or(i64::MIN));
        let Some(s) = next.and_then(VecDeque::pop_front) else { break };
        out.add(windows, by, &s);
    }
    out.open = windows.open();
    out.dropped = windows.dropped;
    out.stream_time = windows.stream_time();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::windows::Spec;

    fn stored(partition: i32, offset: i64, ts: i64, id: i64) -> Stored {
        let e = crate::events::created(id);
        Stored { partition, offset, timestamp: Some(ts), value: prost::Message::encode_to_vec(&e) }
    }

    #[test]
    fn partitions_are_merged_by_timestamp_as_one_task_reads_them() {
        // Partition 0 holds 1 s and 12 s, partition 1 holds 4 s: read in time order,
        // 4 s is not late (it would be, read partition by partition with no grace).
        let input = vec![stored(0, 0, 1000, 1), stored(0, 1, 12_000, 2), stored(1, 0, 4000, 3)];
        let mut w = Windows::new(Spec::Time { size: 10_000, advance: 10_000 }, 0);
        let counted = count(input, By::EventType, &mut w);
        assert_eq!(counted.dropped, 0);
        assert_eq!(counted.closed.len(), 1);
        assert_eq!((counted.closed[0].count, counted.closed[0].key.as_str()), (2, "CUSTOMER_EVENT_TYPE_CREATED"));
        assert_eq!(counted.records, 3);
    }
}
