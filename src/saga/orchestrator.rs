//! `chinook saga run`: the reference orchestrator. It reads CreateCustomer
//! commands and the saga's own messages, and answers each one in a Kafka
//! transaction that holds its output records *and* the consumer offset of
//! the message answered (read-process-write). Killed at any point, it is
//! restarted under the same transactional id: the open transaction of the
//! dead instance is rolled back, readers in read_committed never saw it,
//! and the message is answered again — so no step happens twice.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use prost::Message as _;
use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    producer::{BaseProducer, Producer},
};

use super::steps::{Orchestration, Reaction};
use crate::{
    codec::pb::events::v1::{CustomerCommand, SagaMessage, SagaStep},
    kafka::{
        Connection, KafkaError, REQUEST_TIMEOUT,
        producer::{OutRecord, base_record},
    },
};

/// Where the orchestrator reads and writes, and how it behaves.
#[derive(Clone, Debug)]
pub struct Options {
    pub commands_topic: String,
    pub saga_topic: String,
    pub events_topic: String,
    pub group: String,
    pub fail_at: Option<SagaStep>,
    /// A pause inside each transaction, after its records are sent and before
    /// it commits: makes "killed mid-transaction" easy to show.
    pub step_delay: Duration,
}

/// What a run did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    /// Messages answered (one transaction each).
    pub answered: u64,
    /// Records written, saga messages and customer events.
    pub written: u64,
    /// Sagas known when it stopped.
    pub sagas: usize,
}

/// Runs until `stop` is set; `on_answer` sees each reaction as it commits.
pub async fn run(
    conn: &Connection,
    options: &Options,
    stop: Arc<AtomicBool>,
    on_answer: impl FnMut(&Reaction) + Send + 'static,
) -> Result<Summary, KafkaError> {
    conn.probe().await?;
    // What the saga topic already holds: the state a restart continues from.
    let mut orchestration = Orchestration { fail_at: options.fail_at, ..Default::default() };
    for s in crate::sourcing::log::read(conn, &options.saga_topic, None).await? {
        if let Ok(m) = SagaMessage::decode(s.value.as_slice()) {
            orchestration.learn(&m);
        }
    }
    let (conn, options) = (conn.clone(), options.clone());
    tokio::task::spawn_blocking(move || serve(&conn, &options, orchestration, &stop, on_answer))
        .await
        .map_err(|e| KafkaError::request("the orchestrator", e))?
}

fn serve(
    conn: &Connection,
    o: &Options,
    mut orchestration: Orchestration,
    stop: &AtomicBool,
    mut on_answer: impl FnMut(&Reaction),
) -> Result<Summary, KafkaError> {
    let mut config = conn.client_config();
    config
        .set("group.id", &o.group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        // Each answer waits for the one before it: fetch without lingering.
        .set("fetch.wait.max.ms", "20")
        // A killed orchestrator holds its partitions until its session times
        // out: 10 s instead of 45 s before a restarted one takes over.
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000");
    conn.apply_overrides(&mut config);
    let consumer: BaseConsumer = config.create().map_err(fail("creating the consumer"))?;
    consumer.subscribe(&[&o.commands_topic, &o.saga_topic]).map_err(fail("subscribing"))?;
    let mut config = conn.client_config();
    config
        // One orchestrator per group: a restarted one fences the one before.
        .set("transactional.id", format!("chinook-saga.{}", o.group))
        .set("transaction.timeout.ms", "10000")
        .set("partitioner", "murmur2_random");
    conn.apply_overrides(&mut config);
    let producer: BaseProducer = config.create().map_err(fail("creating the producer"))?;
    producer.init_transactions(REQUEST_TIMEOUT).map_err(fail("InitProducerId"))?;

    let mut summary = Summary::default();
    while !stop.load(Ordering::Relaxed) {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else { continue };
        let m = message.map_err(fail("reading"))?;
        let value = m.payload().unwrap_or_default();
        let reaction = if m.topic() == o.saga_topic {
            match SagaMessage::decode(value) {
                Ok(s) => {
                    orchestration.learn(&s);
                    orchestration.on_saga(&s)
                }
                Err(_) => Reaction::default(),
            }
        } else {
            CustomerCommand::decode(value).map(|c| orchestration.on_command(&c)).unwrap_or_default()
        };
        let records = records(o, &reaction);
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(m.topic(), m.partition(), Offset::Offset(m.offset() + 1))
            .map_err(fail("offsets"))?;
        let metadata =
            consumer.group_metadata().ok_or_else(|| KafkaError::request("the group", "no group metadata"))?;
        let committed = (|| {
            producer.begin_transaction()?;
            for r in &records {
                producer.send(base_record(r)).map_err(|(e, _)| e)?;
            }
            if !records.is_empty() && !o.step_delay.is_zero() {
                std::thread::sleep(o.step_delay);
            }
            producer.send_offsets_to_transaction(&offsets, &metadata, REQUEST_TIMEOUT)?;
            producer.commit_transaction(REQUEST_TIMEOUT)
        })();
        if let Err(e) = committed {
            let _ = producer.abort_transaction(REQUEST_TIMEOUT);
            return Err(KafkaError::request("a saga transaction", e));
        }
        summary.answered += 1;
        summary.written += records.len() as u64;
        on_answer(&reaction);
    }
    summary.sagas = orchestration.sagas.len();
    Ok(summary)
}

/// The records of a reaction: saga messages keyed by correlation id, customer
/// events keyed by customer id.
fn fail(operation: &'static str) -> impl Fn(rdkafka::error::KafkaError) -> KafkaError {
    move |e| KafkaError::request(operation, e)
}

fn records(o: &Options, r: &Reaction) -> Vec<OutRecord> {
    let saga = r.saga.iter().map(|m| OutRecord {
        topic: o.saga_topic.clone(),
        key: Some(m.correlation_id.clone().into_bytes()),
        value: m.encode_to_vec(),
        headers: vec![
            ("correlation-id".into(), m.correlation_id.clone().into_bytes()),
            ("causation-id".into(), m.causation_id.clone().into_bytes()),
        ],
        timestamp: m.timestamp.as_ref().map(crate::events::millis),
        partition: None,
    });
    saga.chain(r.events.iter().map(|e| OutRecord::event(&o.events_topic, e))).collect()
}
