//! `producer-outage`: the student's producer publishes through a private
//! door that cuts every connection right after passing on its first produce
//! request — the broker stores that batch, the answer is lost — and stays
//! shut for a moment. A producer that keeps each event until its delivery
//! report says it is stored, with idempotence on, ends with every event on
//! the topic exactly once and exits 0.

use std::{collections::BTreeSet, time::Duration};

use prost::Message as _;

use super::{Checked, Env, Judged, Role};
use crate::{
    broker::frontdoor::FrontDoor,
    codec::pb::events::v1::CustomerEvent,
    kafka::{consumer, scratch::Scratch},
};

/// How long a producer may take to publish (a first `go run` compiles).
const RUN_LIMIT: Duration = Duration::from_secs(180);

pub async fn check(env: &Env, id: &str, topic: &str, count: u32, outage_ms: u64) -> Checked {
    let expected = format!(
        "the broker cut off for {outage_ms} ms mid-publish; the producer exits 0; all {count} events stored exactly once"
    );
    let partitions = env.topic(topic)?.partitions;
    let scratch = Scratch::create(&env.conn, "check.outage", &[("", partitions)]).await?;
    let result = async {
        let door = FrontDoor::in_front_of(&env.conn).await?;
        door.cut_after_next_produce(Duration::from_millis(outage_ms));
        let mut producer = env.start(
            id,
            Role::Producer,
            1,
            &[
                ("CHINOOK_BROKERS", door.addr().to_string()),
                ("CHINOOK_TOPIC", scratch.topic().to_string()),
                ("CHINOOK_COUNT", count.to_string()),
            ],
        )?;
        producer.wait(RUN_LIMIT).await;
        producer.terminate(Duration::from_secs(5)).await;
        let records = consumer::read_records(&env.conn, scratch.topic()).await?;
        Ok::<_, super::Failed>((producer, records, door.cuts()))
    }
    .await;
    scratch.remove(&env.conn).await;
    let (producer, records, cuts) = result?;
    let ids: BTreeSet<String> = records
        .iter()
        .filter_map(|r| CustomerEvent::decode(r.value.as_slice()).ok())
        .map(|e| e.event_id)
        .filter(|id| !id.is_empty())
        .collect();
    let stored = records.len();
    let twice = stored.saturating_sub(ids.len());
    let passed =
        cuts == 1 && producer.exit.is_some_and(|s| s.success()) && stored == count as usize && ids.len() == stored;
    let observed = format!(
        "{}; {}: {}; {stored} stored, {} distinct event ids{}",
        if cuts == 1 { "cut off after its first produce request" } else { "it never sent a produce request" },
        producer.label,
        producer.ending(),
        ids.len(),
        match (twice, (count as usize).saturating_sub(ids.len())) {
            (0, 0) => String::new(),
            (t, 0) => format!(" ({t} stored twice)"),
            (0, l) => format!(" ({l} lost)"),
            (t, l) => format!(" ({l} lost, {t} stored twice)"),
        }
    );
    Ok(Judged::new(passed, expected, observed).with_output(&[producer]))
}
