//! `producer-events`: the lab's topics exist as planned and the broker
//! enforces the topic's schema (a malformed value is refused on the topic's
//! schema-bound stand-in, never the student's topic), and the student's
//! producer writes valid events, keyed by aggregate id, with the lab's
//! headers and unique event ids (on a scratch topic shaped like the lab's).

use std::{collections::BTreeSet, time::Duration};

use prost::Message as _;
use rdkafka::{
    producer::{FutureProducer, FutureRecord},
    types::RDKafkaErrorCode,
};

use super::{Checked, Env, Judged, Role, setup};
use crate::{
    codec::pb::events::v1::{CustomerEvent, CustomerEventType},
    events::{self, EventKind, Facts},
    kafka::{
        Connection, KafkaError,
        consumer::{self, StoredRecord},
        scratch::{self, Scratch},
    },
};

/// How long a producer may take to publish (a first `go run` compiles).
const RUN_LIMIT: Duration = Duration::from_secs(180);

pub async fn check(env: &Env, id: &str, topic: &str, count: u32) -> Checked {
    let expected = format!(
        "topics as planned; {topic} refuses a malformed value; the producer exits 0 after {count} valid events, keyed by aggregate id, with the 3 headers and unique event ids"
    );
    let (planned, _, observed) = setup::planned(env).await?;
    if !planned {
        return Ok(Judged::new(false, expected, format!("topics {observed}")));
    }
    let enforced = enforced(env, topic).await?;
    let plan = env.topic(topic)?;
    let scratch = Scratch::create(&env.conn, "check.produce", &[("", plan.partitions)]).await?;
    let result = async {
        let mut producer = env.start(
            id,
            Role::Producer,
            1,
            &[("CHINOOK_TOPIC", scratch.topic().to_string()), ("CHINOOK_COUNT", count.to_string())],
        )?;
        producer.wait(RUN_LIMIT).await;
        producer.terminate(Duration::from_secs(5)).await;
        let records = consumer::read_records(&env.conn, scratch.topic()).await?;
        Ok::<_, super::Failed>((producer, records))
    }
    .await;
    scratch.remove(&env.conn).await;
    let (producer, records) = result?;
    let problems = judge(&records, count as usize);
    let passed = enforced.is_ok() && producer.exit.is_some_and(|s| s.success()) && problems.is_empty();
    let observed = format!(
        "{}; {}: {}; {} record(s){}",
        enforced.unwrap_or_else(|e| e),
        producer.label,
        producer.ending(),
        records.len(),
        if problems.is_empty() { ", all as expected".to_string() } else { format!("; {}", problems.join("; ")) }
    );
    Ok(Judged::new(passed, expected, observed).with_output(&[producer]))
}

/// Ok("… enforced") when the broker refuses a malformed value on `topic`'s
/// schema-bound stand-in and accepts a valid event; Err(what it saw) if not.
async fn enforced(env: &Env, topic: &str) -> Result<Result<String, String>, super::Failed> {
    let bufstream = env.managed.as_ref().is_some_and(|s| s.engine == crate::broker::Engine::Bufstream);
    let stand_in = scratch::stand_in(&env.conn, topic, bufstream).await?;
    let malformed_rejected = !accepted(&env.conn, &stand_in, b"\x0a\xff\xff").await?;
    let event = events::event(EventKind::CustomerCreated, &Facts { id: 1, ..Default::default() }, 1);
    let valid_accepted = accepted(&env.conn, &stand_in, &event.encode_to_vec()).await?;
    Ok(match (malformed_rejected, valid_accepted) {
        (true, true) => Ok("schema enforced".into()),
        (false, _) => Err("a malformed value was ACCEPTED: no schema enforcement".into()),
        (true, false) => Err("a valid event was REJECTED".into()),
    })
}

/// Sends one value in its own batch with a plain producer: Ok(true) if stored.
async fn accepted(conn: &Connection, topic: &str, value: &[u8]) -> Result<bool, KafkaError> {
    let producer: FutureProducer = conn
        .client_config()
        .set("linger.ms", "0")
        .create()
        .map_err(|e| KafkaError::request("creating a producer", e))?;
    match producer
        .send(FutureRecord::<str, [u8]>::to(topic).key("chinook-check").payload(value), Duration::from_secs(10))
        .await
    {
        Ok(_) => Ok(true),
        Err((e, _)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::InvalidRecord) => Ok(false),
        Err((e, _)) => Err(KafkaError::request(&format!("producing to {topic}"), e)),
    }
}

/// What is wrong with the records a producer wrote, one line per kind of
/// problem with its count and first example; empty when all is well.
fn judge(records: &[StoredRecord], count: usize) -> Vec<String> {
    let mut problems: Vec<(String, usize, usize)> = Vec::new();
    let mut note = |what: &str, index: usize| match problems.iter_mut().find(|(w, _, _)| w == what) {
        Some((_, n, _)) => *n += 1,
        None => problems.push((what.to_string(), 1, index)),
    };
    let mut ids = BTreeSet::new();
    for (i, r) in records.iter().enumerate() {
        let Ok(e) = CustomerEvent::decode(r.value.as_slice()) else {
            note("not a CustomerEvent", i);
            continue;
        };
        if crate::kafka::consumer::event_route(&r.value).ok().flatten().is_none() {
            note("event_type unknown or not matching the payload", i);
        }
        if e.aggregate_id.is_empty() || r.key.as_deref() != Some(e.aggregate_id.as_bytes()) {
            note("key is not the aggregate id", i);
        }
        let type_name = CustomerEventType::try_from(e.event_type).map(|t| t.as_str_name()).unwrap_or("");
        let headers_ok = r.header("event-type") == Some(type_name.as_bytes())
            && r.header("aggregate-type") == Some(e.aggregate_type.as_bytes())
            && r.header("event-version") == Some(e.version.to_string().as_bytes());
        if !headers_ok {
            note("headers missing or not matching the event", i);
        }
        if e.event_id.is_empty() || !ids.insert(e.event_id) {
            note("event id empty or repeated", i);
        }
    }
    let mut lines: Vec<String> =
        problems.into_iter().map(|(what, n, first)| format!("{n} with {what} (first: record {first})")).collect();
    if records.len() != count {
        lines.insert(0, format!("{} records instead of {count}", records.len()));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::producer::OutRecord;

    fn stored(r: OutRecord) -> StoredRecord {
        StoredRecord { partition: 0, key: r.key, headers: r.headers, value: r.value }
    }

    #[test]
    fn a_good_record_passes_and_each_fault_is_named() {
        let good = stored(OutRecord::event("t", &events::created(7)));
        assert!(judge(std::slice::from_ref(&good), 1).is_empty());
        let unkeyed = StoredRecord { key: None, ..good.clone() };
        assert_eq!(judge(&[unkeyed], 1), ["1 with key is not the aggregate id (first: record 0)"]);
        let bare = StoredRecord { headers: vec![], ..good.clone() };
        assert_eq!(judge(&[bare], 1), ["1 with headers missing or not matching the event (first: record 0)"]);
        let twice = judge(&[good.clone(), good.clone()], 2);
        assert_eq!(twice, ["1 with event id empty or repeated (first: record 1)"]);
        let short = judge(std::slice::from_ref(&good), 2);
        assert_eq!(short, ["1 records instead of 2"]);
        let junk = StoredRecord { value: b"\x0a\xff\xff".to_vec(), ..good };
        assert_eq!(judge(&[junk], 1), ["1 with not a CustomerEvent (first: record 0)"]);
    }
}
