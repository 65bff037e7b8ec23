//! The lab's consumer, done properly: a consumer group member that decodes
//! every record, routes it by event type to a handler, commits only after the
//! record is processed, parks what cannot be processed in the dead-letter
//! topic (with the reason in headers) and moves on.
//!
//! Offsets are resolved by chinook when partitions are assigned (start, end,
//! committed, last N, or by time), which also gives each partition its end for
//! `--until-end`, inside a group too.
//!
//! The loop and its options live here; [`membership`] owns the group side
//! (offset plan, rebalances), [`processing`] what happens to each record
//! (decode, route, retry, dead-letter).

mod dedupe;
mod membership;
mod processing;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use prost::Message as _;
use rdkafka::{
    Message, TopicPartitionList,
    consumer::{CommitMode, Consumer, StreamConsumer},
    message::BorrowedMessage,
};
use serde::Serialize;

use self::membership::{Assignment, Ctx, plan_offsets};
use self::processing::process;
pub use self::processing::{Decoders, FailRule, Outcome, event_route, to_json};
pub use super::offsets::StartAt;
use super::{Connection, KafkaError, records::RecordJson};
use crate::codec::pb::events::v1::CustomerEvent;

/// How to consume.
#[derive(Clone, Debug)]
pub struct ConsumeOptions {
    pub group: String,
    pub topics: Vec<String>,
    pub start: StartAt,
    pub max: Option<u64>,
    pub until_end: bool,
    /// Where records that cannot be processed go (None: they stop nothing and are only counted).
    pub dead_letters: Option<String>,
    pub fail: Option<FailRule>,
    /// Handler attempts per record before it is dead-lettered.
    pub attempts: u32,
    /// Time the handler takes per record (a slow consumer, on purpose).
    pub handler_delay: Duration,
    /// Read every partition directly, without joining the group or committing
    /// (for read-backs and checks: no rebalance to wait for).
    pub standalone: bool,
    /// Stop once this is set (what was processed is committed, as at the end).
    pub stop: Option<Arc<AtomicBool>>,
    /// Skip records whose id this group handled before, remembered in this directory.
    pub dedupe: Option<std::path::PathBuf>,
}

impl ConsumeOptions {
    /// A group member reading `topics` from committed offsets, with no dead
    /// letters, one handler attempt and no delay: the fields to change follow.
    pub fn new(group: impl Into<String>, topics: Vec<String>) -> Self {
        Self {
            group: group.into(),
            topics,
            start: StartAt::Committed,
            max: None,
            until_end: false,
            dead_letters: None,
            fail: None,
            attempts: 1,
            handler_delay: Duration::ZERO,
            standalone: false,
            stop: None,
            dedupe: None,
        }
    }

    /// Reads all of `topic`, start to end, outside any group.
    pub fn read_all(topic: &str) -> Self {
        Self {
            start: StartAt::Start,
            until_end: true,
            standalone: true,
            ..Self::new(crate::events::new_id("chinook-reader"), vec![topic.to_string()])
        }
    }
}

/// One record as stored: what a check judges a student's program by.
#[derive(Clone, Debug, Default)]
pub struct StoredRecord {
    pub partition: i32,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub value: Vec<u8>,
}

impl StoredRecord {
    /// The value of header `name` (the first, if repeated).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
    }
}

/// Every record on `topic`, partition by partition, without joining a group.
pub async fn read_records(conn: &Connection, topic: &str) -> Result<Vec<StoredRecord>, KafkaError> {
    use rdkafka::message::Headers as _;
    let decoders = Decoders::new(HashMap::new(), None);
    let mut found = Vec::new();
    consume(conn, &ConsumeOptions::read_all(topic), &decoders, |event| {
        if let Event::Record(r, _) = event {
            let m = r.message;
            found.push(StoredRecord {
                partition: m.partition(),
                key: m.key().map(<[u8]>::to_vec),
                headers: m
                    .headers()
                    .map(|hs| hs.iter().map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec())).collect())
                    .unwrap_or_default(),
                value: m.payload().unwrap_or_default().to_vec(),
            });
        }
    })
    .await?;
    Ok(found)
}

/// Every CustomerEvent on `topic`, in the order a consumer reads them
/// (values that are not events are left out).
pub async fn read_events(conn: &Connection, topic: &str) -> Result<Vec<CustomerEvent>, KafkaError> {
    Ok(read_records(conn, topic).await?.iter().filter_map(|r| CustomerEvent::decode(r.value.as_slice()).ok()).collect())
}

/// Counts per route and outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub consumed: u64,
    pub handled: u64,
    pub skipped: u64,
    pub dead_lettered: u64,
    pub handler_retries: u64,
    /// Records skipped by `--dedupe`: handled before by this group.
    pub duplicates: u64,
    pub per_route: BTreeMap<String, u64>,
    /// Where this consumer stopped: "topic/partition" → next offset.
    pub positions: BTreeMap<String, i64>,
}

/// What the consume loop reports as it goes.
pub enum Event<'a> {
    /// A record and what happened to it.
    Record(&'a Received<'a>, &'a Outcome),
    /// This member now owns these partitions ("topic/partition").
    Assigned(Vec<String>),
    /// Nothing arrived for a while (a good moment to flush output).
    Idle,
    /// The group already had this many members: this one follows the
    /// group's committed offsets instead of the start it was given.
    JoinedRunningGroup(usize),
}

/// A record that came in, decoded as far as it goes.
pub struct Received<'a> {
    pub message: &'a BorrowedMessage<'a>,
    pub json: RecordJson,
}

/// Runs the consumer until the end (`until_end`), `max` records, or Ctrl-C;
/// `on_event` sees every record with its outcome (the default handler prints)
/// and every new partition assignment.
pub async fn consume(
    conn: &Connection,
    options: &ConsumeOptions,
    decoders: &Decoders,
    mut on_event: impl FnMut(Event<'_>),
) -> Result<Summary, KafkaError> {
    conn.probe().await?;
    let plan = {
        let (conn, group, topics, start) = (conn.clone(), options.group.clone(), options.topics.clone(), options.start);
        let in_group = !options.standalone;
        tokio::task::spawn_blocking(move || plan_offsets(&conn, &group, &topics, start, in_group))
            .await
            .map_err(|e| KafkaError::request("planning offsets", e))??
    };
    if let Some(members) = plan.joined_running_group {
        on_event(Event::JoinedRunningGroup(members));
    }
    let state = Arc::new(Mutex::new(plan));
    let mut config = conn.client_config();
    config
        .set("group.id", &options.group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "500")
        // Offsets are stored only after a record is processed: auto-commit never commits ahead.
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        // Members notice a rebalance within a quarter second (the default is 3 s).
        .set("heartbeat.interval.ms", "250")
        .set("queued.max.messages.kbytes", "8192");
    conn.apply_overrides(&mut config);
    let consumer: StreamConsumer<Ctx> = config
        .create_with_context(Ctx { state: state.clone() })
        .map_err(|e| KafkaError::request("creating the consumer", e))?;
    let topics: Vec<&str> = options.topics.iter().map(String::as_str).collect();
    if options.standalone {
        let mut tpl = TopicPartitionList::new();
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        for ((topic, partition), from) in state.starts.clone() {
            let _ = tpl.add_partition_offset(&topic, partition, from);
            state.next.insert((topic, partition), from.to_raw().unwrap_or(-1));
        }
        state.assigned_once = true;
        drop(state);
        consumer.assign(&tpl).map_err(|e| KafkaError::request("assigning partitions", e))?;
    } else {
        consumer.subscribe(&topics).map_err(|e| KafkaError::request("subscribing", e))?;
    }
    let dlq = match &options.dead_letters {
        Some(_) => Some(super::producer::ProduceOptions::default().producer(conn)?),
        None => None,
    };

    // Listening from here on: a Ctrl-C that comes while a record is being
    // handled is kept, and the loop stops after that record.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| KafkaError::request("listening for Ctrl-C", e))?;
    let mut summary = Summary::default();
    let mut dedupe = options.dedupe.as_deref().map(|dir| dedupe::Dedupe::open(dir, &options.group)).transpose()?;
    let mut seen_generation = 0;
    loop {
        let assigned = {
            let state = state.lock().unwrap_or_else(|p| p.into_inner());
            (state.generation != seen_generation).then(|| {
                seen_generation = state.generation;
                let mut parts: Vec<String> = state.next.keys().map(|(t, p)| format!("{t}/{p}")).collect();
                parts.sort();
                parts
            })
        };
        if let Some(parts) = assigned {
            on_event(Event::Assigned(parts));
        }
        if options.max.is_some_and(|m| summary.consumed >= m) {
            break;
        }
        if options.until_end && state.lock().unwrap_or_else(|p| p.into_inner()).at_end() {
            break;
        }
        if options.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
            break;
        }
        let message = tokio::select! {
            m = consumer.recv() => m,
            _ = interrupt.recv() => break,
            // Wake now and then to notice a partition that is already at its end.
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                refresh_positions(&consumer, &state);
                on_event(Event::Idle);
                continue;
            }
        };
        let m = match message {
            Ok(m) => m,
            Err(e) => return Err(KafkaError::request("consuming", e)),
        };
        summary.consumed += 1;
        let unframed = decoders.unframe(m.topic(), m.payload().unwrap_or_default()).await;
        let json = processing::to_json_from(&m, unframed.start, decoders);
        let id = dedupe.as_ref().and_then(|_| {
            super::records::record_id(m.payload().unwrap_or_default().get(unframed.start..).unwrap_or_default())
        });
        let outcome = match (&dedupe, id.clone()) {
            (Some(d), Some(id)) if d.seen(&id) => {
                summary.duplicates += 1;
                Outcome::Duplicate { id }
            }
            _ => process(&m, (&json, unframed), decoders.get(m.topic()), options, &mut summary, dlq.as_ref()).await?,
        };
        on_event(Event::Record(&Received { message: &m, json }, &outcome));
        // Handled, and its output out: remembered before the offset is stored.
        if let (Some(d), Some(id)) = (&mut dedupe, id)
            && !matches!(outcome, Outcome::Duplicate { .. })
        {
            d.record(id)?;
        }
        // Processed: now, and only now, the offset may be committed.
        if !options.standalone {
            consumer.store_offset_from_message(&m).map_err(|e| KafkaError::request("storing the offset", e))?;
        }
        let tp = (m.topic().to_string(), m.partition());
        state.lock().unwrap_or_else(|p| p.into_inner()).next.insert(tp, m.offset() + 1);
        summary.positions.insert(format!("{}/{}", m.topic(), m.partition()), m.offset() + 1);
    }
    if summary.consumed > 0 && !options.standalone {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            // Auto-commit already sent everything that was stored: nothing left to commit.
            Err(e) if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::NoOffset) => {}
            other => other.map_err(|e| KafkaError::request("committing offsets", e))?,
        }
    }
    consumer.unsubscribe();
    Ok(summary)
}

/// Updates each assigned partition's next offset from the consumer's fetch
/// position (a partition handed over at its end never delivers a record).
fn refresh_positions(consumer: &StreamConsumer<Ctx>, state: &Mutex<Assignment>) {
    let Ok(positions) = consumer.position() else {
        return;
    };
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    for e in positions.elements() {
        if let (Some(at), Some(next)) =
            (e.offset().to_raw().filter(|o| *o >= 0), state.next.get_mut(&(e.topic().to_string(), e.partition())))
        {
            *next = (*next).max(at);
        }
    }
}
