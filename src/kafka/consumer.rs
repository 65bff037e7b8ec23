//! The lab's consumer, done properly: a consumer group member that decodes
//! every record, routes it by event type to a handler, commits only after the
//! record is processed, parks what cannot be processed in the dead-letter
//! topic (with the reason in headers) and moves on.
//!
//! Offsets are resolved by chinook when partitions are assigned (start, end,
//! committed, last N, or by time), which also gives each partition its end for
//! `--until-end`, inside a group too.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use prost::Message as _;
use rdkafka::{
    ClientContext, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, StreamConsumer},
    message::{BorrowedMessage, Headers},
    types::RDKafkaRespErr,
};
use serde::Serialize;
use serde_json::value::RawValue;

use super::{
    Connection, KafkaError, REQUEST_TIMEOUT,
    producer::OutRecord,
    records::{Bytes, RecordJson},
};
use crate::codec::{
    Transcoder,
    pb::events::v1::{CustomerEvent, CustomerEventType, customer_event::Payload},
};

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
            _ if s.starts_with('@') => {
                let t = &s[1..];
                let at = if let Some(ago) = t.strip_prefix('-') {
                    let d = humantime::parse_duration(ago).map_err(|e| format!("{t}: {e}"))?;
                    SystemTime::now() - d
                } else {
                    humantime::parse_rfc3339_weak(t)
                        .map_err(|e| format!("{t}: {e} (use RFC 3339, e.g. @2026-11-23T09:00:00Z, or @-10m)"))?
                };
                Ok(StartAt::Time(at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as i64))
            }
            _ => match s.strip_prefix('-').and_then(|n| n.parse::<i64>().ok()) {
                Some(n) if n > 0 => Ok(StartAt::Last(n)),
                _ => Err(format!("{s:?}: use start, end, committed, -N (last N records) or @<RFC 3339 time or -10m>")),
            },
        }
    }
}

/// A rule that makes the handler fail on purpose (for the `break` scenarios).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailRule {
    Key(String),
    EventId(String),
    Type(String),
    /// Every n-th record this consumer sees.
    Every(u64),
}

impl std::str::FromStr for FailRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (k, v) = s.split_once('=').ok_or_else(|| format!("{s:?}: use key=K, event-id=ID, type=TYPE or every=N"))?;
        match k {
            "key" => Ok(FailRule::Key(v.into())),
            "event-id" => Ok(FailRule::EventId(v.into())),
            "type" => Ok(FailRule::Type(v.to_ascii_uppercase())),
            "every" => v
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .map(FailRule::Every)
                .ok_or_else(|| format!("every={v}: give a positive number")),
            _ => Err(format!("{k}: use key=K, event-id=ID, type=TYPE or every=N")),
        }
    }
}

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
    /// Stop at this moment (what was processed is committed, as at the end).
    pub deadline: Option<tokio::time::Instant>,
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
            deadline: None,
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

/// Every CustomerEvent on `topic`, in the order a consumer reads them
/// (values that are not events are left out).
pub async fn read_events(conn: &Connection, topic: &str) -> Result<Vec<CustomerEvent>, KafkaError> {
    let decoders = Decoders::new(HashMap::new(), None);
    let mut found = Vec::new();
    consume(conn, &ConsumeOptions::read_all(topic), &decoders, |event| {
        if let Event::Record(r, _) = event
            && let Ok(e) = CustomerEvent::decode(r.message.payload().unwrap_or_default())
        {
            found.push(e);
        }
    })
    .await?;
    Ok(found)
}

/// What happened to one record.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A handler processed it (route = event type or message kind).
    Handled { route: String, attempts: u32 },
    /// No handler for it (unspecified or unknown type): counted and committed.
    Skipped { route: String },
    /// Sent to the dead-letter topic, with the reason.
    DeadLettered { reason: String },
}

/// Counts per route and outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub consumed: u64,
    pub handled: u64,
    pub skipped: u64,
    pub dead_lettered: u64,
    pub handler_retries: u64,
    pub per_route: BTreeMap<String, u64>,
    /// Where this consumer stopped: "topic/partition" → next offset.
    pub positions: BTreeMap<String, i64>,
}

#[derive(Default)]
struct Assignment {
    /// (topic, partition) → offset to stop at: the high watermark when the consumer started.
    ends: HashMap<(String, i32), i64>,
    /// (topic, partition) → where to start, used for this member's first
    /// assignment only: every later one (after a rebalance) continues from
    /// the group's committed offsets, so nothing is rewound or read twice.
    starts: HashMap<(String, i32), Offset>,
    /// The group already had this many members when this one planned: it
    /// follows the group's commits rather than the requested start.
    joined_running_group: Option<usize>,
    /// (topic, partition) → next offset to process, for the partitions assigned now.
    next: HashMap<(String, i32), i64>,
    assigned_once: bool,
    /// Bumped on every assignment, so the consume loop can report rebalances.
    generation: u64,
}

/// The consumer's context. Its rebalance callback must not wait on anything
/// slow: it runs inside `recv()` on the async runtime, and a member stuck there
/// holds up the whole group's rebalance. So offsets are resolved before
/// subscribing; the one round trip it makes is the commit on revocation.
struct Ctx {
    state: Arc<Mutex<Assignment>>,
}

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let first = !state.assigned_once;
                state.assigned_once = true;
                state.generation += 1;
                let mut assigned = TopicPartitionList::new();
                // Planned starts used now, stored as this member's position so a
                // rebalance before any record arrives hands the same position on.
                let mut planned = TopicPartitionList::new();
                for e in tpl.elements() {
                    let tp = (e.topic().to_string(), e.partition());
                    // The planned start in the first assignment; afterwards the group's commit.
                    let from = if first { state.starts.get(&tp).copied() } else { None }.unwrap_or(Offset::Stored);
                    let _ = assigned.add_partition_offset(e.topic(), e.partition(), from);
                    if matches!(from, Offset::Offset(_)) {
                        let _ = planned.add_partition_offset(e.topic(), e.partition(), from);
                    }
                    // Known starts count at once; a committed start is learnt from the position.
                    state.next.insert(tp, from.to_raw().filter(|o| *o >= 0).unwrap_or(-1));
                }
                drop(state);
                let _ = consumer.assign(&assigned);
                if planned.count() > 0 {
                    let _ = consumer.store_offsets(&planned);
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // Hand over what was processed before the partitions go to someone else,
                // and wait for it: the next owner starts from this commit (a short
                // round trip, the way Kafka's Java clients commit on revocation).
                let _ = consumer.commit_consumer_state(CommitMode::Sync);
                state.next.clear();
                state.generation += 1;
                drop(state);
                let _ = consumer.unassign();
            }
            _ => {}
        }
    }
}

impl Assignment {
    fn at_end(&self) -> bool {
        self.assigned_once && self.next.iter().all(|(tp, next)| self.ends.get(tp).is_none_or(|end| *next >= *end))
    }
}

/// Resolves where each partition of `topics` starts and ends, before joining
/// the group. A committed start is the group's offset now (or the oldest
/// record); if another member commits further before we are handed the
/// partition, a few records are read twice — at-least-once, never lost.
///
/// A member joining a group that already has members shares its work: it
/// follows the group's commits whatever start was asked for, or every new
/// terminal of a `--offset start` group would redo what the others did.
fn plan_offsets(
    conn: &Connection,
    group: &str,
    topics: &[String],
    mut start: StartAt,
    in_group: bool,
) -> Result<Assignment, KafkaError> {
    let mut config = conn.client_config();
    config.set("group.id", group).set("enable.auto.commit", "false");
    let c: BaseConsumer = config.create().map_err(|e| KafkaError::request("creating a metadata client", e))?;
    let mut plan = Assignment::default();
    if in_group && start != StartAt::Committed {
        let groups =
            c.fetch_group_list(Some(group), REQUEST_TIMEOUT).map_err(|e| KafkaError::request("DescribeGroups", e))?;
        let members = groups.groups().iter().find(|g| g.name() == group).map_or(0, |g| g.members().len());
        if members > 0 {
            plan.joined_running_group = Some(members);
            start = StartAt::Committed;
        }
    }
    for topic in topics {
        let metadata =
            c.fetch_metadata(Some(topic), REQUEST_TIMEOUT).map_err(|e| KafkaError::request("Metadata", e))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(KafkaError::NoTopic { topic: topic.clone() });
        }
        let mut all = TopicPartitionList::new();
        for p in &partitions {
            all.add_partition(topic, *p);
        }
        let committed = match start {
            StartAt::Committed => {
                Some(c.committed_offsets(all, REQUEST_TIMEOUT).map_err(|e| KafkaError::request("OffsetFetch", e))?)
            }
            _ => None,
        };
        for p in partitions {
            let (low, high) =
                c.fetch_watermarks(topic, p, REQUEST_TIMEOUT).map_err(|e| KafkaError::request("ListOffsets", e))?;
            let from = match start {
                StartAt::Start => Offset::Offset(low),
                StartAt::End => Offset::Offset(high),
                StartAt::Committed => Offset::Offset(
                    committed
                        .as_ref()
                        .and_then(|c| c.find_partition(topic, p))
                        .and_then(|e| e.offset().to_raw())
                        .filter(|o| *o >= 0)
                        .unwrap_or(low),
                ),
                StartAt::Last(n) => Offset::Offset((high - n).max(low)),
                StartAt::Time(ms) => {
                    let mut q = TopicPartitionList::new();
                    let _ = q.add_partition_offset(topic, p, Offset::Offset(ms));
                    let found = c
                        .offsets_for_times(q, REQUEST_TIMEOUT)
                        .map_err(|e| KafkaError::request("ListOffsets by time", e))?;
                    Offset::Offset(
                        found.elements().first().and_then(|e| e.offset().to_raw()).filter(|o| *o >= 0).unwrap_or(high),
                    )
                }
            };
            plan.ends.insert((topic.clone(), p), high);
            plan.starts.insert((topic.clone(), p), from);
        }
    }
    Ok(plan)
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

/// Which message type each topic's values are: the lab plan's, or one type
/// for every topic (`--type`).
pub struct Decoders {
    by_topic: HashMap<String, Transcoder>,
    every_topic: Option<Transcoder>,
}

impl Decoders {
    pub fn new(by_topic: HashMap<String, Transcoder>, every_topic: Option<Transcoder>) -> Self {
        Self { by_topic, every_topic }
    }

    /// The lab plan's type for each lab topic, or `every_topic` for all topics.
    pub fn lab(every_topic: Option<&str>) -> Result<Self, crate::codec::CodecError> {
        use super::topics::{COMMANDS, DEAD_LETTERS, EVENTS};
        use crate::codec::{COMMAND_TYPE, EVENT_TYPE, JsonOptions, Schemas};
        let schemas = Schemas::builtin();
        let t = |name: &str| schemas.message(name).map(|d| Transcoder::new(d, JsonOptions::default()));
        let by_topic = [(EVENTS, EVENT_TYPE), (COMMANDS, COMMAND_TYPE), (DEAD_LETTERS, EVENT_TYPE)]
            .into_iter()
            .map(|(topic, ty)| t(ty).map(|d| (topic.to_string(), d)))
            .collect::<Result<_, _>>()?;
        Ok(Self::new(by_topic, every_topic.map(t).transpose()?))
    }

    pub fn get(&self, topic: &str) -> Option<&Transcoder> {
        self.every_topic.as_ref().or_else(|| self.by_topic.get(topic))
    }
}

/// The handler route of a record: its event type (events), its action
/// (commands) or its topic (anything else). `Ok(None)`: no handler for it.
fn route_of(topic: &str, decoder: Option<&Transcoder>, value: &[u8]) -> Result<Option<String>, String> {
    let type_name = decoder.map(|d| d.descriptor().full_name().to_string());
    match type_name.as_deref() {
        Some(crate::codec::EVENT_TYPE) => event_route(value),
        Some(crate::codec::COMMAND_TYPE) => command_route(value),
        Some(other) => decoder
            .expect("a type name comes from a decoder")
            .decode(value, 0)
            .map(|_| Some(other.to_string()))
            .map_err(|e| format!("undecodable {other}: {e}")),
        None => Ok(Some(topic.to_string())),
    }
}

fn command_route(value: &[u8]) -> Result<Option<String>, String> {
    use crate::codec::pb::events::v1::{CustomerCommand, customer_command::Action};
    let command = CustomerCommand::decode(value).map_err(|e| format!("undecodable CustomerCommand: {e}"))?;
    Ok(match command.action {
        Some(Action::CreateCustomer(_)) => Some("CREATE_CUSTOMER".into()),
        Some(Action::UpdateCustomer(_)) => Some("UPDATE_CUSTOMER".into()),
        Some(Action::DeleteCustomer(_)) => Some("DELETE_CUSTOMER".into()),
        None => None,
    })
}

fn event_route(value: &[u8]) -> Result<Option<String>, String> {
    let event = CustomerEvent::decode(value).map_err(|e| format!("undecodable CustomerEvent: {e}"))?;
    let declared = CustomerEventType::try_from(event.event_type).ok();
    let carried = match &event.payload {
        Some(Payload::CustomerCreated(_)) => Some(CustomerEventType::Created),
        Some(Payload::CustomerUpdated(_)) => Some(CustomerEventType::Updated),
        Some(Payload::CustomerDeleted(_)) => Some(CustomerEventType::Deleted),
        Some(Payload::StatusChanged(_)) => Some(CustomerEventType::StatusChanged),
        Some(Payload::ContactUpdated(_)) => Some(CustomerEventType::ContactUpdated),
        None => None,
    };
    match (declared, carried) {
        (Some(CustomerEventType::Unspecified) | None, _) | (_, None) => Ok(None),
        (Some(d), Some(c)) if d == c => Ok(Some(d.as_str_name().to_string())),
        (Some(d), Some(c)) => {
            Err(format!("event_type says {} but the payload is {}", d.as_str_name(), c.as_str_name()))
        }
    }
}

fn fails(rule: &Option<FailRule>, seen: u64, key: &Option<Bytes>, payload: &[u8], route: &str) -> bool {
    match rule {
        None => false,
        Some(FailRule::Every(n)) => seen.is_multiple_of(*n),
        Some(FailRule::Key(k)) => key.as_ref() == Some(&Bytes::Text(k.clone())),
        Some(FailRule::Type(t)) => route.ends_with(t.as_str()),
        Some(FailRule::EventId(id)) => CustomerEvent::decode(payload).is_ok_and(|e| e.event_id == *id),
    }
}

/// Turns a message into its JSON form, decoding the value with the topic's decoder.
pub fn to_json(m: &BorrowedMessage<'_>, decoders: &Decoders) -> RecordJson {
    let headers = m
        .headers()
        .map(|hs| hs.iter().map(|h| (h.key.to_string(), Bytes::from_slice(h.value.unwrap_or_default()))).collect())
        .unwrap_or_default();
    let payload = m.payload().unwrap_or_default();
    let (value, value_bytes, error) = match decoders.get(m.topic()) {
        Some(t) => {
            let mut text = Vec::with_capacity(payload.len() * 3);
            match t.json_line(payload, 0, &mut text) {
                Ok(()) => {
                    let text = String::from_utf8(text).expect("JSON text is UTF-8");
                    (Some(RawValue::from_string(text).expect("the codec writes valid JSON")), None, None)
                }
                Err(e) => (None, Some(Bytes::from_slice(payload)), Some(e.to_string())),
            }
        }
        None => (None, Some(Bytes::from_slice(payload)), None),
    };
    RecordJson {
        topic: m.topic().to_string(),
        partition: Some(m.partition()),
        offset: Some(m.offset()),
        key: m.key().map(Bytes::from_slice),
        headers,
        timestamp: m.timestamp().to_millis(),
        value,
        value_bytes,
        error,
    }
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
        if options.deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
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
        let json = to_json(&m, decoders);
        let outcome = process(&m, &json, decoders.get(m.topic()), options, &mut summary, dlq.as_ref()).await?;
        on_event(Event::Record(&Received { message: &m, json }, &outcome));
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

async fn process(
    m: &BorrowedMessage<'_>,
    json: &RecordJson,
    decoder: Option<&Transcoder>,
    options: &ConsumeOptions,
    summary: &mut Summary,
    dlq: Option<&rdkafka::producer::FutureProducer>,
) -> Result<Outcome, KafkaError> {
    let payload = m.payload().unwrap_or_default();
    let outcome = match route_of(m.topic(), decoder, payload) {
        Err(reason) => Outcome::DeadLettered { reason },
        Ok(None) => Outcome::Skipped { route: "unknown or unspecified type".into() },
        Ok(Some(route)) => {
            if !options.handler_delay.is_zero() {
                tokio::time::sleep(options.handler_delay).await;
            }
            let mut attempts = 0;
            loop {
                attempts += 1;
                if !fails(&options.fail, summary.consumed, &json.key, payload, &route) {
                    break Outcome::Handled { route, attempts };
                }
                if attempts >= options.attempts.max(1) {
                    break Outcome::DeadLettered {
                        reason: format!("handler for {route} failed {attempts} times (--handler-fail)"),
                    };
                }
                summary.handler_retries += 1;
                tokio::time::sleep(Duration::from_millis(20 * 2u64.pow(attempts))).await;
            }
        }
    };
    match &outcome {
        Outcome::Handled { route, .. } => {
            summary.handled += 1;
            *summary.per_route.entry(route.clone()).or_default() += 1;
        }
        Outcome::Skipped { route } => {
            summary.skipped += 1;
            *summary.per_route.entry(route.clone()).or_default() += 1;
        }
        Outcome::DeadLettered { reason } => {
            summary.dead_lettered += 1;
            *summary.per_route.entry("dead-lettered".into()).or_default() += 1;
            if let (Some(producer), Some(topic)) = (dlq, &options.dead_letters) {
                dead_letter(producer, topic, m, reason).await?;
            }
        }
    }
    Ok(outcome)
}

/// Copies the record to the dead-letter topic with the reason, and waits for the ack.
async fn dead_letter(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    m: &BorrowedMessage<'_>,
    reason: &str,
) -> Result<(), KafkaError> {
    let mut headers: Vec<(String, Vec<u8>)> = m
        .headers()
        .map(|hs| hs.iter().map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec())).collect())
        .unwrap_or_default();
    headers.extend([
        ("dlq-reason".to_string(), reason.as_bytes().to_vec()),
        ("dlq-original-topic".into(), m.topic().as_bytes().to_vec()),
        ("dlq-original-partition".into(), m.partition().to_string().into_bytes()),
        ("dlq-original-offset".into(), m.offset().to_string().into_bytes()),
    ]);
    let record = OutRecord {
        topic: topic.to_string(),
        partition: None,
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().unwrap_or_default().to_vec(),
        headers,
        timestamp: m.timestamp().to_millis(),
    };
    let report = super::producer::send_all(producer, &[record]).await;
    match report.into_iter().next() {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => {
            Err(KafkaError::request(&format!("dead-lettering {}/{}@{}", m.topic(), m.partition(), m.offset()), e))
        }
        None => Ok(()),
    }
}
