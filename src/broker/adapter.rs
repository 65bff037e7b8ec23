//! The tansu adapter: corrections of tansu 0.6.0's Kafka protocol answers,
//! applied by the embedded engine's front door (never in front of Bufstream
//! or an external broker), so every mainstream client works as with Kafka.
//!
//! tansu serves a connection one request at a time, in order, so the door
//! relays each request and reads its answer before taking the next; that is
//! where these corrections happen:
//! - **ApiVersions** (v3+): tansu sends four tagged fields at their default
//!   values, which Kafka leaves out; librdkafka before 2.2 (kcat 1.7.1 in
//!   Debian 12 and Ubuntu 22.04) skips tagged fields one byte short and fails
//!   every connection. We drop them. The list also gains **EndTxn**.
//! - **EndTxn** has no route in tansu (the connection is closed). The door
//!   answers it from the storage's transaction end ([`Transactions::end`]).
//! - **JoinGroup** v0–3 with no member id: tansu answers MEMBER_ID_REQUIRED,
//!   which KIP-394 reserves for v4+, and old clients (sarama 1.22,
//!   kafka-go) give up. The door sends the join again with the id tansu
//!   handed out and passes the second answer on, as Kafka would have.
//! - **OffsetCommit** v1–4 with the "use the broker's default" values Kafka
//!   defines (-1 as v1's commit timestamp: now; -1 as v2–4's retention: the
//!   broker's setting): tansu converts them to unsigned durations, fails,
//!   and answers every partition UNKNOWN_MEMBER_ID (sarama 1.22 never gets a
//!   commit through). We send what -1 stands for.
//! - **SyncGroup** from a follower (no assignments): when the leader was
//!   dropped for missing heartbeats between join and sync (a consumer killed
//!   and restarted at once), tansu makes the follower the leader of a group
//!   with no assignments, and it waits forever on an empty assignment. Sent
//!   as "no assignments" (null) rather than an empty list, the same request
//!   gets REBALANCE_IN_PROGRESS there, and the rejoin elects it properly; on
//!   every other path tansu treats both alike.
//! - **Fetch** read-committed: tansu always lists no aborted transactions,
//!   so consumers deliver aborted records. The door fills the list in from
//!   the transaction ledger.
//!
//! It also counts the produce batches the broker refused as INVALID_RECORD
//! (values that fail schema validation), for `broker status` and `monitor`.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use futures::future::BoxFuture;
use tansu_sans_io::{
    Body, ErrorCode, Frame, Header, api_versions_response::ApiVersion, end_txn_response::EndTxnResponse,
    fetch_response::AbortedTransaction,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::frontdoor::read_frame;

pub(super) const PRODUCE: i16 = 0;
const FETCH: i16 = 1;
const OFFSET_COMMIT: i16 = 8;
const JOIN_GROUP: i16 = 11;
const SYNC_GROUP: i16 = 14;
pub(super) const API_VERSIONS: i16 = 18;
const END_TXN: i16 = 26;
/// The EndTxn versions we answer (v4 only adds an error we never send).
const END_TXN_VERSIONS: (i16, i16) = (0, 3);
const MEMBER_ID_REQUIRED: i16 = 79;
const INVALID_RECORD: i16 = 87;
/// Kafka's default offset retention (`offsets.retention.minutes`, 7 days).
const OFFSET_RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// A topic as a Fetch names it: by name, or by id from v13 on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopicRef {
    Name(String),
    Id([u8; 16]),
}

/// What the adapter needs from the storage behind tansu.
pub trait Transactions: Send + Sync + 'static {
    /// Ends (commits or aborts) a transaction; Kafka's error code.
    fn end<'a>(
        &'a self,
        id: &'a str,
        producer_id: i64,
        producer_epoch: i16,
        committed: bool,
    ) -> BoxFuture<'a, ErrorCode>;
    /// Whether any transaction was ever aborted (nothing to list otherwise).
    fn any_aborted(&self) -> bool;
    /// The aborted transactions a read-committed Fetch of a partition from
    /// `fetch_offset` must list.
    fn aborted(&self, topic: TopicRef, partition: i32, fetch_offset: i64) -> BoxFuture<'_, Vec<AbortedTransaction>>;
}

/// The adapter of one embedded broker, shared by its door's connections.
#[derive(Clone)]
pub struct Adapter {
    transactions: Arc<dyn Transactions>,
    /// Produce batches answered INVALID_RECORD since start.
    rejected: Arc<AtomicU64>,
}

/// A request's api key, version and correlation id.
#[derive(Clone, Copy, Debug)]
pub(super) struct Head {
    pub(super) key: i16,
    pub(super) version: i16,
    pub(super) correlation_id: i32,
}

impl Head {
    pub(super) fn of(frame: &[u8]) -> Option<Self> {
        let at = |i: usize| frame.get(i..i + 2).map(|b| i16::from_be_bytes([b[0], b[1]]));
        let correlation_id = frame.get(8..12).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))?;
        Some(Self { key: at(4)?, version: at(6)?, correlation_id })
    }
}

impl Adapter {
    pub fn new(transactions: Arc<dyn Transactions>) -> Self {
        Self { transactions, rejected: Arc::new(AtomicU64::new(0)) }
    }

    /// Produce batches the broker refused as INVALID_RECORD since start.
    pub fn rejected_batches(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Counts the partitions of a Produce answer that were refused as invalid.
    fn count_rejected(&self, response: &[u8], head: Head) {
        let Ok(Frame { body: Body::ProduceResponse(answer), .. }) =
            Frame::response_from_bytes(response, PRODUCE, head.version)
        else {
            return;
        };
        let refused = answer
            .responses
            .iter()
            .flatten()
            .flat_map(|t| t.partition_responses.iter().flatten())
            .filter(|p| p.error_code == INVALID_RECORD)
            .count();
        self.rejected.fetch_add(refused as u64, Ordering::Relaxed);
    }

    /// Serves one client `request` (a whole frame) through the broker
    /// connection; the answer to write back, if the request has one.
    pub(super) async fn exchange(
        &self,
        request: Vec<u8>,
        broker_rx: &mut (impl AsyncRead + Unpin),
        broker_tx: &mut (impl AsyncWrite + Unpin),
    ) -> std::io::Result<Option<Vec<u8>>> {
        let Some(head) = Head::of(&request) else {
            return Err(std::io::Error::other("a request frame shorter than its header"));
        };
        if head.key == END_TXN {
            return Ok(Some(self.end_txn(&request, head).await));
        }
        let request = match head.key {
            SYNC_GROUP => follower_sync(&request).unwrap_or(request),
            OFFSET_COMMIT if (1..=4).contains(&head.version) => commit_defaults(&request).unwrap_or(request),
            _ => request,
        };
        broker_tx.write_all(&request).await?;
        if head.key == PRODUCE && produce_acks(&request, head.version) == Some(0) {
            return Ok(None); // acks=0: the broker sends nothing back
        }
        let response = read_frame(broker_rx).await?;
        Ok(Some(match head.key {
            API_VERSIONS => api_versions(&response, head).unwrap_or(response),
            JOIN_GROUP if head.version < 4 => match rejoin_request(&request, &response, head) {
                Some(again) => {
                    broker_tx.write_all(&again).await?;
                    read_frame(broker_rx).await?
                }
                None => response,
            },
            FETCH if self.transactions.any_aborted() => self.fetch(&request, &response, head).await.unwrap_or(response),
            PRODUCE => {
                self.count_rejected(&response, head);
                response
            }
            _ => response,
        }))
    }

    /// Answers EndTxn from the storage (tansu has no route for it).
    async fn end_txn(&self, request: &[u8], head: Head) -> Vec<u8> {
        let code = match Frame::request_from_bytes(request) {
            Ok(Frame { body: Body::EndTxnRequest(end), .. }) => {
                let code = self
                    .transactions
                    .end(&end.transactional_id, end.producer_id, end.producer_epoch, end.committed)
                    .await;
                // Before v2 clients do not know PRODUCER_FENCED; Kafka sends INVALID_PRODUCER_EPOCH.
                if code == ErrorCode::ProducerFenced && head.version < 2 {
                    ErrorCode::InvalidProducerEpoch
                } else {
                    code
                }
            }
            _ => ErrorCode::InvalidRequest,
        };
        let body = Body::EndTxnResponse(EndTxnResponse::default().throttle_time_ms(0).error_code(code.into()));
        Frame::response(Header::Response { correlation_id: head.correlation_id }, body, END_TXN, head.version)
            .map(|b| b.to_vec())
            .unwrap_or_default()
    }

    /// Lists the aborted transactions in a read-committed Fetch answer.
    async fn fetch(&self, request: &[u8], response: &[u8], head: Head) -> Option<Vec<u8>> {
        let Frame { body: Body::FetchRequest(fetch), .. } = Frame::request_from_bytes(request).ok()? else {
            return None;
        };
        if fetch.isolation_level != Some(1) {
            return None;
        }
        // What each partition asked for must list, from the request alone:
        // the answer is only decoded when something is to be listed.
        let mut lists = Vec::new();
        for topic in fetch.topics.iter().flatten() {
            let Some(id) = topic_ref(topic.topic.as_deref(), topic.topic_id) else { continue };
            for partition in topic.partitions.iter().flatten() {
                let aborted = self.transactions.aborted(id.clone(), partition.partition, partition.fetch_offset).await;
                if !aborted.is_empty() {
                    lists.push((id.clone(), partition.partition, aborted));
                }
            }
        }
        if lists.is_empty() {
            return None;
        }
        let Frame { header, body: Body::FetchResponse(mut answer), .. } =
            Frame::response_from_bytes(response, FETCH, head.version).ok()?
        else {
            return None;
        };
        for topic in answer.responses.iter_mut().flatten() {
            let Some(id) = topic_ref(topic.topic.as_deref(), topic.topic_id) else { continue };
            for partition in topic.partitions.iter_mut().flatten() {
                if let Some((_, _, aborted)) =
                    lists.iter().find(|(t, p, _)| *t == id && *p == partition.partition_index)
                {
                    partition.aborted_transactions = Some(aborted.clone());
                }
            }
        }
        Frame::response(header, Body::FetchResponse(answer), FETCH, head.version).ok().map(|b| b.to_vec())
    }
}

/// A Fetch topic by name (before v13) or by id.
fn topic_ref(name: Option<&str>, id: Option<[u8; 16]>) -> Option<TopicRef> {
    match (name, id) {
        (Some(name), _) if !name.is_empty() => Some(TopicRef::Name(name.to_string())),
        (_, Some(id)) => Some(TopicRef::Id(id)),
        _ => None,
    }
}

/// The ApiVersions answer without tansu's default-valued tagged fields, and
/// with EndTxn listed.
fn api_versions(response: &[u8], head: Head) -> Option<Vec<u8>> {
    let Frame { header, body: Body::ApiVersionsResponse(mut versions), .. } =
        Frame::response_from_bytes(response, API_VERSIONS, head.version).ok()?
    else {
        return None;
    };
    if versions.error_code != i16::from(ErrorCode::None) {
        return None;
    }
    versions.supported_features = None;
    versions.finalized_features_epoch = None;
    versions.finalized_features = None;
    versions.zk_migration_ready = None;
    let keys = versions.api_keys.get_or_insert_with(Vec::new);
    if !keys.iter().any(|k| k.api_key == END_TXN) {
        let (min, max) = END_TXN_VERSIONS;
        keys.push(ApiVersion::default().api_key(END_TXN).min_version(min).max_version(max));
        keys.sort_by_key(|k| k.api_key);
    }
    Frame::response(header, Body::ApiVersionsResponse(versions), API_VERSIONS, head.version).ok().map(|b| b.to_vec())
}

/// For a JoinGroup v0–3 sent without a member id and answered
/// MEMBER_ID_REQUIRED: the same request carrying the id tansu gave out.
fn rejoin_request(request: &[u8], response: &[u8], head: Head) -> Option<Vec<u8>> {
    let Frame { body: Body::JoinGroupResponse(answer), .. } =
        Frame::response_from_bytes(response, JOIN_GROUP, head.version).ok()?
    else {
        return None;
    };
    if answer.error_code != MEMBER_ID_REQUIRED || answer.member_id.is_empty() {
        return None;
    }
    let Frame { header, body: Body::JoinGroupRequest(mut join), .. } = Frame::request_from_bytes(request).ok()? else {
        return None;
    };
    if !join.member_id.is_empty() {
        return None;
    }
    join.member_id = answer.member_id;
    Frame::request(header, Body::JoinGroupRequest(join)).ok().map(|b| b.to_vec())
}

/// An OffsetCommit with Kafka's "-1: the broker's default" values spelt out.
fn commit_defaults(request: &[u8]) -> Option<Vec<u8>> {
    let Frame { header, body: Body::OffsetCommitRequest(mut commit), .. } = Frame::request_from_bytes(request).ok()?
    else {
        return None;
    };
    let mut changed = false;
    if commit.retention_time_ms == Some(-1) {
        commit.retention_time_ms = Some(OFFSET_RETENTION_MS);
        changed = true;
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    for partition in commit.topics.iter_mut().flatten().flat_map(|t| t.partitions.iter_mut().flatten()) {
        if partition.commit_timestamp == Some(-1) {
            partition.commit_timestamp = Some(now);
            changed = true;
        }
    }
    changed.then(|| Frame::request(header, Body::OffsetCommitRequest(commit)).ok().map(|b| b.to_vec())).flatten()
}

/// A follower's SyncGroup (an empty assignment list) with a null list.
///
/// tansu-sans-io does not encode a null for this field (Kafka's schema says
/// it is never null), but reads one: the list is the request's last field,
/// so its length is the frame's last 4 bytes (i32 0 → -1), or, from v4, the
/// compact length before the empty tag section (`01 00` → `00 00`).
fn follower_sync(request: &[u8]) -> Option<Vec<u8>> {
    let Frame { body: Body::SyncGroupRequest(sync), header, .. } = Frame::request_from_bytes(request).ok()? else {
        return None;
    };
    let Header::Request { api_version, .. } = header else { return None };
    if !sync.assignments.as_ref().is_some_and(Vec::is_empty) {
        return None;
    }
    let mut frame = request.to_vec();
    let tail = if api_version >= 4 { &mut frame[request.len() - 2..] } else { &mut frame[request.len() - 4..] };
    match tail {
        [0x01, 0x00] => tail.copy_from_slice(&[0x00, 0x00]),
        [0, 0, 0, 0] => tail.copy_from_slice(&[0xff; 4]),
        _ => return None,
    }
    Some(frame)
}

/// The `acks` of a Produce request frame (size prefix included), read
/// without decoding its records.
fn produce_acks(frame: &[u8], version: i16) -> Option<i16> {
    let flexible = version >= 9;
    let mut at = 12; // size, api key, api version, correlation id
    let client_id = i16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?);
    at += 2 + usize::try_from(client_id.max(0)).ok()?;
    if flexible {
        at = skip_tags(frame, at)?;
    }
    if version >= 3 {
        // transactional_id: a nullable string (compact when flexible)
        if flexible {
            let (len, used) = uvarint(frame.get(at..)?)?;
            at += used + usize::try_from(len.saturating_sub(1)).ok()?;
        } else {
            let len = i16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?);
            at += 2 + usize::try_from(len.max(0)).ok()?;
        }
    }
    Some(i16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?))
}

/// Skips a tagged-field section starting at `at`; the offset after it.
fn skip_tags(frame: &[u8], mut at: usize) -> Option<usize> {
    let (count, used) = uvarint(frame.get(at..)?)?;
    at += used;
    for _ in 0..count {
        let (_tag, used) = uvarint(frame.get(at..)?)?;
        at += used;
        let (size, used) = uvarint(frame.get(at..)?)?;
        at += used + usize::try_from(size).ok()?;
    }
    Some(at)
}

/// An unsigned varint and the bytes it took.
fn uvarint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use tansu_sans_io::{ProduceRequest, api_versions_response::ApiVersionsResponse};

    use super::*;

    fn produce_frame(version: i16, acks: i16, transactional_id: Option<&str>, client_id: Option<&str>) -> Vec<u8> {
        let header = Header::Request {
            api_key: PRODUCE,
            api_version: version,
            correlation_id: 7,
            client_id: client_id.map(str::to_string),
        };
        let body = ProduceRequest::default()
            .transactional_id(transactional_id.map(str::to_string))
            .acks(acks)
            .timeout_ms(1500)
            .topic_data(Some(Vec::new()));
        Frame::request(header, Body::ProduceRequest(body)).unwrap().to_vec()
    }

    #[test]
    fn acks_are_read_at_every_produce_version() {
        for version in 0..=11 {
            for (acks, txn, client) in [(0, None, None), (-1, Some("tx-1"), Some("chinook")), (1, Some(""), Some(""))] {
                let frame = produce_frame(version, acks, txn, client);
                assert_eq!(produce_acks(&frame, version), Some(acks), "v{version} {txn:?} {client:?}");
            }
        }
        assert_eq!(produce_acks(&[0, 0, 0, 8, 0, 0, 0, 3], 3), None, "a short frame is not read past its end");
    }

    #[test]
    fn a_follower_sync_reaches_tansu_without_an_assignment_list() {
        use tansu_sans_io::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
        for version in 0..=5 {
            let header =
                Header::Request { api_key: SYNC_GROUP, api_version: version, correlation_id: 3, client_id: None };
            let sync = |assignments| {
                let body = SyncGroupRequest::default()
                    .group_id("g".into())
                    .generation_id(1)
                    .member_id("m".into())
                    .protocol_type(Some("consumer".into()))
                    .protocol_name(Some("range".into()))
                    .assignments(assignments);
                Frame::request(header.clone(), Body::SyncGroupRequest(body)).unwrap().to_vec()
            };
            let rewritten = follower_sync(&sync(Some(Vec::new()))).expect("a follower's sync is rewritten");
            let Frame { body: Body::SyncGroupRequest(read), .. } = Frame::request_from_bytes(&rewritten[..]).unwrap()
            else {
                panic!("not a SyncGroup request");
            };
            assert_eq!(read.assignments, None, "v{version}");
            let leader = sync(Some(vec![SyncGroupRequestAssignment::default().member_id("m".into())]));
            assert_eq!(follower_sync(&leader), None, "a leader's sync goes through as it is");
        }
    }

    #[test]
    fn api_versions_lose_default_tags_and_gain_end_txn() {
        let tansu = ApiVersionsResponse::default()
            .error_code(0)
            .api_keys(Some(vec![ApiVersion::default().api_key(FETCH).min_version(0).max_version(17)]))
            .throttle_time_ms(Some(0))
            .supported_features(Some(Vec::new()))
            .finalized_features_epoch(Some(-1))
            .finalized_features(Some(Vec::new()))
            .zk_migration_ready(Some(false));
        let head = Head { key: API_VERSIONS, version: 3, correlation_id: 1 };
        let frame =
            Frame::response(Header::Response { correlation_id: 1 }, Body::ApiVersionsResponse(tansu), API_VERSIONS, 3)
                .unwrap()
                .to_vec();
        assert_eq!(frame[frame.len() - 1], 0, "zk_migration_ready=false is the last tagged byte");
        let fixed = api_versions(&frame, head).unwrap();
        assert_eq!(*fixed.last().unwrap(), 0, "an empty tag section ends the answer");
        let Frame { body: Body::ApiVersionsResponse(read), .. } =
            Frame::response_from_bytes(&fixed[..], API_VERSIONS, 3).unwrap()
        else {
            panic!("not an ApiVersions answer");
        };
        assert_eq!(read.supported_features, None);
        assert_eq!(read.zk_migration_ready, None);
        let keys: Vec<(i16, i16, i16)> =
            read.api_keys.unwrap().iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect();
        assert_eq!(keys, vec![(FETCH, 0, 17), (END_TXN, 0, 3)]);
    }
}
