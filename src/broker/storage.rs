//! A storage adapter that corrects two bugs of tansu 0.6.0's memory storage
//! without forking tansu. Everything is delegated to the wrapped storage
//! except:
//!
//! - `fetch`: tansu returns only batches whose *base* offset is at or after the
//!   requested offset, so a fetch from inside a batch skips the rest of it (a
//!   consumer resuming mid-batch silently loses records). We ask for the batch
//!   that *contains* the offset; Kafka clients drop the records before the
//!   offset they asked for, as they do with any broker.
//! - `list_offsets`: tansu picks the batch object with the newest modification
//!   time, and batches written in the same instant tie, so "latest" goes stale.
//!   Latest and earliest come from the partition's offset stage (the same
//!   figures fetch responses carry); by-timestamp is answered exactly from our
//!   index and the records of the batch it points at.
//!
//! The index holds, per partition, each batch's base offset, last offset
//! delta and max timestamp, recorded as `produce` succeeds.
//!
//! Two more corrections concern producers and transactions:
//! - `init_producer`: tansu's storage serves only a producer id/epoch of
//!   (-1, -1). Before v3 the request has none (tansu passes `None`: every
//!   kafkajs idempotent producer got UNKNOWN_SERVER_ERROR), and from v3 a
//!   producer may send its own to bump its epoch (KIP-360). We send -1.
//! - `update_group`: a group whose forming leader left is written back
//!   without it (`groups.rs`), so the next member to join can lead.
//! - transactional writes, ends and rollbacks are recorded in the
//!   transaction ledger (`txn.rs`), which knows what tansu does not tell a
//!   read-committed consumer: which records were aborted.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use async_trait::async_trait;
use tansu_sans_io::{
    ConfigResource, ErrorCode, IsolationLevel, ListOffset, ScramMechanism,
    create_topics_request::CreatableTopic,
    delete_groups_response::DeletableGroupResult,
    delete_records_request::DeleteRecordsTopic,
    delete_records_response::DeleteRecordsTopicResult,
    describe_cluster_response::DescribeClusterBroker,
    describe_configs_response::DescribeConfigsResult,
    describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic,
    incremental_alter_configs_request::AlterConfigsResource,
    incremental_alter_configs_response::AlterConfigsResourceResponse,
    list_groups_response::ListedGroup,
    record::{Record, deflated},
    to_system_time,
    txn_offset_commit_response::TxnOffsetCommitResponseTopic,
};
use tansu_storage::{
    BrokerRegistrationRequest, GroupDetail, ListOffsetResponse, MetadataResponse, NamedGroupDetail,
    OffsetCommitRequest, OffsetStage, ProducerIdResponse, Result, ScramCredential, Storage, TopicId, Topition,
    TxnAddPartitionsRequest, TxnAddPartitionsResponse, TxnOffsetCommitRequest, UpdateError, Version,
};
use url::Url;
use uuid::Uuid;

use super::{groups::Written, txn::Ledger};

#[derive(Clone, Copy, Debug)]
struct BatchInfo {
    last_offset_delta: i32,
    max_timestamp: i64,
}

type Index = HashMap<Topition, BTreeMap<i64, BatchInfo>>;

/// The wrapped storage plus our per-partition batch index and the
/// transaction ledger.
#[derive(Clone, Debug)]
pub struct Corrected<S> {
    pub(super) inner: S,
    index: Arc<Mutex<Index>>,
    pub(super) txns: Arc<Mutex<Ledger>>,
    pub(super) groups: Arc<Mutex<Written>>,
    /// The framed topics and their registry, when the broker serves one.
    framed: Option<super::framed::Framed>,
}

impl<S: Storage> Corrected<S> {
    pub fn new(inner: S) -> Self {
        Self { inner, index: Arc::default(), txns: Arc::default(), groups: Arc::default(), framed: None }
    }

    /// Refuses values of framed topics that the registry cannot vouch for.
    pub fn with_framed(self, framed: Option<super::framed::Framed>) -> Self {
        Self { framed, ..self }
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        // A poisoned lock only means another request panicked mid-update; the map is still usable.
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Base offset of the batch holding `offset`, if we have seen it.
    fn containing_batch(&self, topition: &Topition, offset: i64) -> Option<i64> {
        let index = self.index();
        let (base, info) = index.get(topition)?.range(..=offset).next_back()?;
        (offset <= base + i64::from(info.last_offset_delta)).then_some(*base)
    }

    /// The first offset whose record timestamp is at or after `at`.
    async fn offset_for_time(&self, topition: &Topition, at: SystemTime) -> Result<Option<(i64, SystemTime)>> {
        let millis = tansu_sans_io::to_timestamp(&at)?;
        let candidate = {
            let index = self.index();
            index
                .get(topition)
                .and_then(|batches| batches.iter().find(|(_, i)| i.max_timestamp >= millis).map(|(b, _)| *b))
        };
        let Some(base) = candidate else {
            return Ok(None);
        };
        for batch in self.inner.fetch(topition, base, 1, u32::MAX, IsolationLevel::ReadUncommitted).await? {
            let base_timestamp = batch.base_timestamp;
            let records = Vec::<Record>::try_from(&batch)?;
            for r in records {
                let ts = base_timestamp + r.timestamp_delta;
                if ts >= millis {
                    return Ok(Some((batch.base_offset + i64::from(r.offset_delta), to_system_time(ts)?)));
                }
            }
        }
        Ok(None)
    }
}

#[async_trait]
impl<S: Storage> Storage for Corrected<S> {
    async fn produce(&self, transaction_id: Option<&str>, topition: &Topition, batch: deflated::Batch) -> Result<i64> {
        if let Some(why) = self.framed.as_ref().and_then(|f| f.refuse(topition.topic(), &batch)) {
            eprintln!("refused a batch for framed topic {}: {why}", topition.topic());
            return Err(tansu_storage::Error::Api(ErrorCode::InvalidRecord));
        }
        let info = BatchInfo { last_offset_delta: batch.last_offset_delta, max_timestamp: batch.max_timestamp };
        let txn = (batch.is_transactional() && !batch.is_control())
            .then_some((batch.producer_id, batch.producer_epoch))
            .zip(transaction_id);
        let base = self.inner.produce(transaction_id, topition, batch).await?;
        self.index().entry(topition.clone()).or_default().insert(base, info);
        if let Some(((producer_id, epoch), id)) = txn {
            self.ledger().wrote(id, producer_id, epoch, topition, base);
        }
        Ok(base)
    }

    async fn fetch(
        &self,
        topition: &'_ Topition,
        offset: i64,
        min_bytes: u32,
        max_bytes: u32,
        isolation: IsolationLevel,
    ) -> Result<Vec<deflated::Batch>> {
        let start = self.containing_batch(topition, offset).unwrap_or(offset);
        self.inner.fetch(topition, start, min_bytes, max_bytes, isolation).await
    }

    async fn list_offsets(
        &self,
        isolation_level: IsolationLevel,
        offsets: &[(Topition, ListOffset)],
    ) -> Result<Vec<(Topition, ListOffsetResponse)>> {
        let mut responses = Vec::with_capacity(offsets.len());
        for (topition, request) in offsets {
            let stage = self.inner.offset_stage(topition).await?;
            let (offset, timestamp) = match request {
                ListOffset::Latest if isolation_level == IsolationLevel::ReadCommitted => (stage.last_stable(), None),
                ListOffset::Latest => (stage.high_watermark(), None),
                ListOffset::Earliest => (stage.log_start(), None),
                ListOffset::Timestamp(at) => match self.offset_for_time(topition, *at).await? {
                    Some((offset, ts)) => (offset, Some(ts)),
                    None => (-1, None),
                },
            };
            let response = ListOffsetResponse { error_code: ErrorCode::None, timestamp, offset: Some(offset) };
            responses.push((topition.clone(), response));
        }
        Ok(responses)
    }

    async fn delete_topic(&self, topic: &TopicId) -> Result<ErrorCode> {
        let code = self.inner.delete_topic(topic).await?;
        // Forget the batches of topics that no longer exist (a topic of the
        // same name may be created again and must start from a clean index).
        let live: Vec<String> =
            self.inner.metadata(None).await?.topics().iter().filter_map(|t| t.name.clone()).collect();
        self.index().retain(|tp, _| live.iter().any(|n| n == tp.topic()));
        self.ledger().retain_topics(|topic| live.iter().any(|n| n == topic));
        Ok(code)
    }

    // Everything below is plain delegation.

    async fn register_broker(&self, r: BrokerRegistrationRequest) -> Result<()> {
        self.inner.register_broker(r).await
    }
    async fn create_topic(&self, topic: CreatableTopic, validate_only: bool) -> Result<Uuid> {
        self.inner.create_topic(topic, validate_only).await
    }
    async fn incremental_alter_resource(&self, r: AlterConfigsResource) -> Result<AlterConfigsResourceResponse> {
        self.inner.incremental_alter_resource(r).await
    }
    async fn delete_records(&self, topics: &[DeleteRecordsTopic]) -> Result<Vec<DeleteRecordsTopicResult>> {
        self.inner.delete_records(topics).await
    }
    async fn brokers(&self) -> Result<Vec<DescribeClusterBroker>> {
        self.inner.brokers().await
    }
    async fn offset_stage(&self, topition: &Topition) -> Result<OffsetStage> {
        self.inner.offset_stage(topition).await
    }
    async fn offset_commit(
        &self,
        group_id: &str,
        retention: Option<Duration>,
        offsets: &[(Topition, OffsetCommitRequest)],
    ) -> Result<Vec<(Topition, ErrorCode)>> {
        self.inner.offset_commit(group_id, retention, offsets).await
    }
    async fn offset_fetch(
        &self,
        group_id: Option<&str>,
        topics: &[Topition],
        require_stable: Option<bool>,
    ) -> Result<BTreeMap<Topition, i64>> {
        self.inner.offset_fetch(group_id, topics, require_stable).await
    }
    async fn committed_offset_topitions(&self, group_id: &str) -> Result<BTreeMap<Topition, i64>> {
        self.inner.committed_offset_topitions(group_id).await
    }
    async fn metadata(&self, topics: Option<&[TopicId]>) -> Result<MetadataResponse> {
        self.inner.metadata(topics).await
    }
    async fn upsert_user_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
        credential: ScramCredential,
    ) -> Result<()> {
        self.inner.upsert_user_scram_credential(user, mechanism, credential).await
    }
    async fn delete_user_scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Result<()> {
        self.inner.delete_user_scram_credential(user, mechanism).await
    }
    async fn user_scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Result<Option<ScramCredential>> {
        self.inner.user_scram_credential(user, mechanism).await
    }
    async fn describe_config(
        &self,
        name: &str,
        resource: ConfigResource,
        keys: Option<&[String]>,
    ) -> Result<DescribeConfigsResult> {
        self.inner.describe_config(name, resource, keys).await
    }
    async fn list_groups(&self, states_filter: Option<&[String]>) -> Result<Vec<ListedGroup>> {
        self.inner.list_groups(states_filter).await
    }
    async fn delete_groups(&self, group_ids: Option<&[String]>) -> Result<Vec<DeletableGroupResult>> {
        self.forget_groups(group_ids.unwrap_or_default());
        self.inner.delete_groups(group_ids).await
    }
    async fn describe_groups(
        &self,
        group_ids: Option<&[String]>,
        include_authorized_operations: bool,
    ) -> Result<Vec<NamedGroupDetail>> {
        self.inner.describe_groups(group_ids, include_authorized_operations).await
    }
    async fn describe_topic_partitions(
        &self,
        topics: Option<&[TopicId]>,
        partition_limit: i32,
        cursor: Option<Topition>,
    ) -> Result<Vec<DescribeTopicPartitionsResponseTopic>> {
        self.inner.describe_topic_partitions(topics, partition_limit, cursor).await
    }
    async fn update_group(
        &self,
        group_id: &str,
        detail: GroupDetail,
        version: Option<Version>,
    ) -> Result<Version, UpdateError<GroupDetail>> {
        self.update_group_corrected(group_id, detail, version).await
    }
    async fn init_producer(
        &self,
        transaction_id: Option<&str>,
        transaction_timeout_ms: i32,
        producer_id: Option<i64>,
        producer_epoch: Option<i16>,
    ) -> Result<ProducerIdResponse> {
        // tansu's storage only serves (-1, -1). Before v3 the request has no
        // producer id/epoch (the protocol's default is -1); from v3 a producer
        // may send its current ones to have its epoch bumped (KIP-360, which
        // librdkafka does after some idempotence errors). Served as (-1, -1):
        // a transactional id gets its next epoch (its open transaction rolled
        // back), an idempotent producer a fresh id, which clients accept.
        let _ = (producer_id, producer_epoch);
        let (producer_id, producer_epoch) = (Some(-1), Some(-1));
        let Some(id) = transaction_id else {
            return self.inner.init_producer(None, transaction_timeout_ms, producer_id, producer_epoch).await;
        };
        // Re-initialising an id whose transaction is open rolls it back (inside tansu).
        let before = self.before_end(id).await?;
        let response = self.inner.init_producer(Some(id), transaction_timeout_ms, producer_id, producer_epoch).await?;
        if response.error == ErrorCode::None {
            self.ended(id, false, before).await?;
            self.ledger().init(id, transaction_timeout_ms);
        }
        Ok(response)
    }
    async fn txn_add_offsets(
        &self,
        transaction_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
    ) -> Result<ErrorCode> {
        self.inner.txn_add_offsets(transaction_id, producer_id, producer_epoch, group_id).await
    }
    async fn txn_add_partitions(&self, partitions: TxnAddPartitionsRequest) -> Result<TxnAddPartitionsResponse> {
        self.inner.txn_add_partitions(partitions).await
    }
    async fn txn_offset_commit(&self, offsets: TxnOffsetCommitRequest) -> Result<Vec<TxnOffsetCommitResponseTopic>> {
        self.inner.txn_offset_commit(offsets).await
    }
    async fn txn_end(
        &self,
        transaction_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        committed: bool,
    ) -> Result<ErrorCode> {
        let before = self.before_end(transaction_id).await?;
        let code = self.inner.txn_end(transaction_id, producer_id, producer_epoch, committed).await?;
        if code == ErrorCode::None {
            self.ended(transaction_id, committed, before).await?;
        }
        Ok(code)
    }
    async fn maintain(&self, now: SystemTime) -> Result<()> {
        self.inner.maintain(now).await
    }
    async fn cluster_id(&self) -> Result<String> {
        self.inner.cluster_id().await
    }
    async fn node(&self) -> Result<i32> {
        self.inner.node().await
    }
    async fn advertised_listener(&self) -> Result<Url> {
        self.inner.advertised_listener().await
    }
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
}
