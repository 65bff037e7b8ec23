//! The transaction ledger: what chinook's storage layer remembers about
//! Kafka transactions so the embedded broker can finish what tansu 0.6.0
//! starts.
//!
//! tansu's memory storage stages transactional writes, writes COMMIT/ABORT
//! markers and holds the last stable offset while a transaction is open, but
//! nothing in tansu tells a read-committed consumer *which* records were
//! aborted (its Fetch answers always carry an empty aborted-transaction
//! list), and it never aborts a transaction whose producer vanished. The
//! ledger keeps, per transactional id, the open transaction (producer,
//! epoch, first offset per partition, when it started and its timeout), and
//! per partition the aborted transactions (producer, first offset, offset
//! of the ABORT marker). [`super::storage::Corrected`] fills it; the front
//! door's adapter reads it to answer Fetch the way Kafka does.

use std::{
    collections::{BTreeMap, HashMap},
    sync::MutexGuard,
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use tansu_sans_io::{ErrorCode, IsolationLevel, fetch_response::AbortedTransaction};
use tansu_storage::{Error, Result, Storage, TopicId, Topition};

use super::{
    adapter::{TopicRef, Transactions},
    storage::Corrected,
};

/// A transaction that has written data and not ended yet.
#[derive(Clone, Debug)]
pub struct Open {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The first offset it wrote in each partition.
    pub first: BTreeMap<Topition, i64>,
    started: Instant,
    timeout: Duration,
}

/// An aborted transaction in one partition, as Kafka lists it in Fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Aborted {
    pub producer_id: i64,
    pub first_offset: i64,
    /// Offset of the ABORT marker that closed it.
    pub marker_offset: i64,
}

/// Open transactions by transactional id, aborted ones by partition.
#[derive(Debug, Default)]
pub struct Ledger {
    open: HashMap<String, Open>,
    /// Timeout each transactional id announced in InitProducerId.
    timeouts: HashMap<String, Duration>,
    aborted: HashMap<Topition, Vec<Aborted>>,
}

/// Used when a transactional id never announced its timeout (Kafka's default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

impl Ledger {
    /// Remembers the timeout a producer announced for `id`.
    pub fn init(&mut self, id: &str, timeout_ms: i32) {
        let timeout = u64::try_from(timeout_ms).map_or(DEFAULT_TIMEOUT, Duration::from_millis);
        self.timeouts.insert(id.to_string(), timeout);
    }

    /// Records a transactional batch written at `offset`; the first one of a
    /// partition starts (or extends) the open transaction.
    pub fn wrote(&mut self, id: &str, producer_id: i64, producer_epoch: i16, topition: &Topition, offset: i64) {
        let timeout = self.timeouts.get(id).copied().unwrap_or(DEFAULT_TIMEOUT);
        let open = self.open.entry(id.to_string()).or_insert_with(|| Open {
            producer_id,
            producer_epoch,
            first: BTreeMap::new(),
            started: Instant::now(),
            timeout,
        });
        open.first.entry(topition.clone()).or_insert(offset);
    }

    /// The open transaction of `id`, if it wrote anything.
    pub fn open(&self, id: &str) -> Option<&Open> {
        self.open.get(id)
    }

    /// Forgets the open transaction of `id` (it ended).
    pub fn close(&mut self, id: &str) -> Option<Open> {
        self.open.remove(id)
    }

    /// Records an aborted transaction of `topition`.
    pub fn aborted(&mut self, topition: Topition, entry: Aborted) {
        self.aborted.entry(topition).or_default().push(entry);
    }

    /// Whether any transaction was ever aborted (the adapter's fast path).
    pub fn any_aborted(&self) -> bool {
        !self.aborted.is_empty()
    }

    /// The aborted transactions a Fetch of `topition` from `fetch_offset`
    /// must list: those whose marker is at or after the fetch offset (an
    /// earlier one is already behind the consumer, and listing it would hide
    /// that producer's later, committed data).
    pub fn aborted_from(&self, topition: &Topition, fetch_offset: i64) -> Vec<Aborted> {
        self.aborted
            .get(topition)
            .map(|all| all.iter().filter(|a| a.marker_offset >= fetch_offset).copied().collect())
            .unwrap_or_default()
    }

    /// Keeps only the partitions of topics that `keep` accepts (the others were deleted).
    pub fn retain_topics(&mut self, keep: impl Fn(&str) -> bool) {
        self.aborted.retain(|tp, _| keep(tp.topic()));
        for open in self.open.values_mut() {
            open.first.retain(|tp, _| keep(tp.topic()));
        }
    }

    /// Open transactions older than their timeout at `now`.
    pub fn expired(&self, now: Instant) -> Vec<(String, Open)> {
        self.open
            .iter()
            .filter(|(_, open)| now.saturating_duration_since(open.started) > open.timeout)
            .map(|(id, open)| (id.clone(), open.clone()))
            .collect()
    }
}

/// An open transaction about to end, with each partition's high watermark
/// before its marker was written.
pub struct Ending {
    producer_id: i64,
    partitions: Vec<(Topition, i64, i64)>,
}

impl<S: Storage> Corrected<S> {
    pub(super) fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // A poisoned lock only means another request panicked mid-update; the ledger is still usable.
        self.txns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes where the markers of `id`'s open transaction (if any) will go.
    pub(super) async fn before_end(&self, id: &str) -> Result<Option<Ending>> {
        let Some(open) = self.ledger().open(id).cloned() else {
            return Ok(None);
        };
        let mut partitions = Vec::with_capacity(open.first.len());
        for (topition, first) in open.first {
            let high = self.inner.offset_stage(&topition).await?.high_watermark();
            partitions.push((topition, first, high));
        }
        Ok(Some(Ending { producer_id: open.producer_id, partitions }))
    }

    /// Closes `id`'s transaction in the ledger; an abort is recorded per
    /// partition with the offset of the marker tansu wrote.
    pub(super) async fn ended(&self, id: &str, committed: bool, ending: Option<Ending>) -> Result<()> {
        self.ledger().close(id);
        let Some(ending) = ending.filter(|_| !committed) else {
            return Ok(());
        };
        for (topition, first_offset, high) in ending.partitions {
            if let Some(marker_offset) = self.marker_after(&topition, high, ending.producer_id).await? {
                let entry = Aborted { producer_id: ending.producer_id, first_offset, marker_offset };
                self.ledger().aborted(topition, entry);
            }
        }
        Ok(())
    }

    /// The offset of the first control batch of `producer_id` at or after `from`.
    async fn marker_after(&self, topition: &Topition, from: i64, producer_id: i64) -> Result<Option<i64>> {
        let mut offset = from;
        loop {
            let batches = self.inner.fetch(topition, offset, 1, u32::MAX, IsolationLevel::ReadUncommitted).await?;
            if let Some(marker) = batches.iter().find(|b| b.is_control() && b.producer_id == producer_id) {
                return Ok(Some(marker.base_offset));
            }
            match batches.last().map(|b| b.base_offset + i64::from(b.last_offset_delta) + 1) {
                Some(next) if next > offset => offset = next,
                _ => return Ok(None),
            }
        }
    }

    /// Aborts every open transaction older than its timeout and fences its
    /// producer by bumping the epoch (what Kafka's coordinator does), so a
    /// producer that died mid-transaction does not hold read-committed
    /// consumers back forever, and cannot commit if it comes back. Returns
    /// how many.
    pub async fn expire_transactions(&self, now: Instant) -> usize {
        let expired = self.ledger().expired(now);
        for (id, open) in &expired {
            if matches!(self.txn_end(id, open.producer_id, open.producer_epoch, false).await, Ok(ErrorCode::None)) {
                let timeout_ms = i32::try_from(open.timeout.as_millis()).unwrap_or(i32::MAX);
                // A new epoch for the id: the old producer's next request is fenced.
                let _ = self.inner.init_producer(Some(id), timeout_ms, Some(-1), Some(-1)).await;
            } else {
                // Fenced or gone meanwhile: nothing left to abort.
                self.ledger().close(id);
            }
        }
        expired.len()
    }
}

impl<S: Storage> Transactions for Corrected<S> {
    fn end<'a>(
        &'a self,
        id: &'a str,
        producer_id: i64,
        producer_epoch: i16,
        committed: bool,
    ) -> BoxFuture<'a, ErrorCode> {
        Box::pin(async move {
            match self.txn_end(id, producer_id, producer_epoch, committed).await {
                Ok(code) | Err(Error::Api(code)) => code,
                Err(_) => ErrorCode::UnknownServerError,
            }
        })
    }

    fn any_aborted(&self) -> bool {
        self.ledger().any_aborted()
    }

    fn aborted(&self, topic: TopicRef, partition: i32, fetch_offset: i64) -> BoxFuture<'_, Vec<AbortedTransaction>> {
        Box::pin(async move {
            let name = match topic {
                TopicRef::Name(name) => Some(name),
                TopicRef::Id(id) => self
                    .inner
                    .metadata(Some(&[TopicId::Id(uuid::Uuid::from_bytes(id))]))
                    .await
                    .ok()
                    .and_then(|m| m.topics().first().and_then(|t| t.name.clone())),
            };
            let Some(name) = name else {
                return Vec::new();
            };
            self.ledger()
                .aborted_from(&Topition::new(name, partition), fetch_offset)
                .into_iter()
                .map(|a| AbortedTransaction::default().producer_id(a.producer_id).first_offset(a.first_offset))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> Topition {
        Topition::new("t", p)
    }

    #[test]
    fn the_first_write_per_partition_starts_the_transaction() {
        let mut ledger = Ledger::default();
        ledger.wrote("tx", 7, 0, &tp(0), 10);
        ledger.wrote("tx", 7, 0, &tp(0), 15);
        ledger.wrote("tx", 7, 0, &tp(1), 3);
        let open = ledger.open("tx").unwrap();
        assert_eq!(open.first.get(&tp(0)), Some(&10));
        assert_eq!(open.first.get(&tp(1)), Some(&3));
        assert!(ledger.close("tx").is_some());
        assert!(ledger.open("tx").is_none());
    }

    #[test]
    fn a_fetch_lists_only_aborted_transactions_whose_marker_is_ahead() {
        let mut ledger = Ledger::default();
        assert!(!ledger.any_aborted());
        ledger.aborted(tp(0), Aborted { producer_id: 1, first_offset: 0, marker_offset: 5 });
        ledger.aborted(tp(0), Aborted { producer_id: 1, first_offset: 10, marker_offset: 12 });
        assert!(ledger.any_aborted());
        assert_eq!(ledger.aborted_from(&tp(0), 0).len(), 2);
        assert_eq!(ledger.aborted_from(&tp(0), 5).len(), 2);
        assert_eq!(
            ledger.aborted_from(&tp(0), 6),
            vec![Aborted { producer_id: 1, first_offset: 10, marker_offset: 12 }]
        );
        assert!(ledger.aborted_from(&tp(0), 13).is_empty());
        assert!(ledger.aborted_from(&tp(1), 0).is_empty());
        ledger.retain_topics(|topic| topic != "t");
        assert!(!ledger.any_aborted());
    }

    #[test]
    fn transactions_expire_after_the_timeout_they_announced() {
        let mut ledger = Ledger::default();
        ledger.init("short", 1_000);
        ledger.wrote("short", 1, 0, &tp(0), 0);
        ledger.wrote("default", 2, 0, &tp(0), 1);
        let start = ledger.open("short").unwrap().started;
        assert!(ledger.expired(start + Duration::from_millis(900)).is_empty());
        let expired: Vec<String> =
            ledger.expired(start + Duration::from_secs(2)).into_iter().map(|(id, _)| id).collect();
        assert_eq!(expired, vec!["short".to_string()]);
        assert_eq!(ledger.expired(start + Duration::from_secs(61)).len(), 2);
    }
}
