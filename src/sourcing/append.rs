//! Appending to one customer's history only if it is at the version the
//! writer expects (optimistic concurrency, EventStoreDB's "expected
//! revision"). Kafka has no conditional write, so the check and the write are
//! made safe by fencing: every guarded writer of customer N uses the
//! transactional id `chinook-expect.<topic>.<N>`. Initialising it fences the
//! writer before (its open transaction is rolled back, and it can no longer
//! commit); only then is the customer's last committed version read, and
//! the new events are written and committed in one transaction. Of writers
//! racing on one version, at most one commits; each other one either read a
//! newer version or was fenced, and reports a conflict.

use std::time::Duration;

use rdkafka::{
    error::KafkaError as RdError,
    producer::{BaseProducer, Producer},
    types::RDKafkaErrorCode,
};

use super::log;
use crate::kafka::{
    Connection, KafkaError, REQUEST_TIMEOUT,
    producer::{OutRecord, base_record},
};

/// Why a guarded append did not happen.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AppendError {
    #[error("customer {aggregate} is at version {actual}, not {expected}: nothing was appended")]
    #[diagnostic(
        code(chinook::produce::conflict),
        help(
            "someone else changed this customer since you read it: rebuild its state (`chinook project customers --id {aggregate}`), decide again, and retry with --expect-version {actual}"
        )
    )]
    Conflict { aggregate: String, expected: i64, actual: i64 },
    #[error("another writer appended to customer {aggregate} while this one was writing: nothing was appended")]
    #[diagnostic(
        code(chinook::produce::conflict),
        help(
            "read the customer's version again (`chinook project customers --id {aggregate}`) and retry with --expect-version"
        )
    )]
    Fenced { aggregate: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Kafka(#[from] KafkaError),
}

/// What a guarded append wrote.
#[derive(Debug, serde::Serialize)]
pub struct Appended {
    pub aggregate: String,
    /// The version the customer was at.
    pub expected: i64,
    /// The versions written, first and last.
    pub versions: (i64, i64),
}

/// Appends the records `build(next_version)` makes to customer `aggregate`'s
/// history on `topic`, if its last committed version is `expected` (0: the
/// customer has no history). `build` numbers its events from `expected + 1`.
pub async fn append_expecting(
    conn: &Connection,
    topic: &str,
    aggregate: &str,
    expected: i64,
    build: impl FnOnce(i64) -> Vec<OutRecord>,
) -> Result<Appended, AppendError> {
    conn.probe().await?;
    let producer = {
        let mut config = conn.client_config();
        config
            .set("transactional.id", format!("chinook-expect.{topic}.{aggregate}"))
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("transaction.timeout.ms", "10000")
            .set("partitioner", "murmur2_random");
        conn.apply_overrides(&mut config);
        let p: BaseProducer = config.create().map_err(|e| KafkaError::request("creating the producer", e))?;
        blocking(move || p.init_transactions(REQUEST_TIMEOUT).map(|()| p))
            .await
            .map_err(|e| rd("InitProducerId", &e, aggregate))?
    };
    // Fenced everyone before: what is committed now is the customer's history.
    let actual = log::read(conn, topic, None)
        .await?
        .into_iter()
        .filter_map(|s| s.event().ok())
        .filter(|e| e.aggregate_id == aggregate)
        .map(|e| e.version)
        .max()
        .unwrap_or(0);
    if actual != expected {
        return Err(AppendError::Conflict { aggregate: aggregate.into(), expected, actual });
    }
    let records = build(expected + 1);
    let count = records.len() as i64;
    let agg = aggregate.to_string();
    blocking(move || {
        producer.begin_transaction()?;
        for r in &records {
            producer.send(base_record(r)).map_err(|(e, _)| e)?;
        }
        producer.commit_transaction(REQUEST_TIMEOUT).inspect_err(|_| {
            let _ = producer.abort_transaction(Duration::from_secs(5));
        })
    })
    .await
    .map_err(|e| rd("the transaction", &e, &agg))?;
    Ok(Appended { aggregate: aggregate.into(), expected, versions: (expected + 1, expected + count) })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, RdError> + Send + 'static) -> Result<T, RdError> {
    tokio::task::spawn_blocking(f).await.unwrap_or(Err(RdError::Canceled))
}

/// A fenced producer lost the race; anything else is a broker problem.
fn rd(operation: &str, e: &RdError, aggregate: &str) -> AppendError {
    use RDKafkaErrorCode::*;
    match e.rdkafka_error_code() {
        Some(Fenced | ProducerFenced | InvalidProducerEpoch | InvalidTransactionalState) => {
            AppendError::Fenced { aggregate: aggregate.into() }
        }
        _ => AppendError::Kafka(KafkaError::request(operation, e)),
    }
}
