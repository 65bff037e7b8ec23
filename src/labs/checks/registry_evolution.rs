//! `registry-evolution`: the student's producer frames events through the
//! schema registry (on a framed scratch topic, which the broker validates
//! against the registry), the student's consumer reads them; then chinook
//! registers a compatible new version of the schema — a field added — and
//! publishes events written with it. The same consumer process must read
//! those too, dead-letter nothing and commit to the end.

use std::time::Duration;

use super::{Checked, Env, Judged, Role, evidence};
use crate::{
    codec::framing::{self, Confluent},
    events,
    kafka::{
        consumer,
        producer::{self, OutRecord, ProduceOptions},
        scratch::Scratch,
    },
    registry::{self, client::Client},
    schema::examples::{ADDED_FIELD, Change, FILE},
};

/// How long the producer may take, and the consumer to catch up.
const LIMIT: Duration = Duration::from_secs(120);
/// Events from the student's producer, then from chinook with the new version.
const FIRST: u32 = 20;
const AFTER: u32 = 10;

/// Registers the compatible change under `topic`'s subject and publishes
/// `AFTER` events framed with the new schema id, carrying the new field.
async fn publish_evolved(
    conn: &crate::kafka::Connection,
    client: &Client,
    topic: &str,
    partitions: i32,
) -> Result<u32, super::Failed> {
    let mut chain = registry::builtin_chain(FILE).expect("the events file is built in");
    chain.last_mut().expect("the file itself").1.schema = Change::FieldAdded.apply();
    let id = client.register_chain(&registry::value_subject(topic), chain).await?.id;
    let header = Confluent { schema_id: id, message_indexes: vec![0] };
    let records: Vec<OutRecord> = (0..AFTER as i64)
        .map(|i| {
            let mut record = OutRecord::event(topic, &events::created(1000 + i));
            // The new field, as a writer with the new schema sends it.
            let note = b"written with the new version";
            framing::write_varint(u64::from(ADDED_FIELD) << 3 | 2, &mut record.value);
            framing::write_varint(note.len() as u64, &mut record.value);
            record.value.extend_from_slice(note);
            record.value = registry::client::frame(&header, &record.value);
            OutRecord { partition: Some((i % i64::from(partitions)) as i32), ..record }
        })
        .collect();
    producer::produce(conn, &ProduceOptions { idempotent: false, ..Default::default() }, records, |_| {}).await?;
    Ok(id)
}

pub async fn check(env: &Env, id: &str, topic: &str) -> Checked {
    let partitions = env.topic(topic)?.partitions;
    let expected = format!(
        "the producer exits 0 after framing {FIRST} events through the registry; the consumer reads them, then — not restarted — the {AFTER} chinook writes with a compatible new schema version (a field added): every partition committed to the end, nothing dead-lettered"
    );
    let Some(addr) = env.managed.as_ref().and_then(|s| s.registry) else {
        return Ok(Judged::new(
            false,
            expected,
            "no schema registry: start the broker with `chinook broker start` (it serves one unless --no-registry)",
        ));
    };
    let url = format!("http://{addr}");
    let client = Client::new(&url);
    let scratch = Scratch::create(&env.conn, "check.framed", &[("", partitions), (".dlq", 1)]).await?;
    let group = events::new_id("chinook-check-registry");
    let result = async {
        let mut producer = env.start(
            id,
            Role::Producer,
            1,
            &[
                ("CHINOOK_TOPIC", scratch.names[0].clone()),
                ("CHINOOK_COUNT", FIRST.to_string()),
                ("CHINOOK_SCHEMA_REGISTRY", url.clone()),
            ],
        )?;
        let produced = producer.wait(LIMIT).await;
        producer.terminate(Duration::from_secs(5)).await;
        let stored = consumer::read_records(&env.conn, &scratch.names[0]).await?.len();
        let mut vars = evidence::consumer_vars(&scratch, &group);
        vars.push(("CHINOOK_SCHEMA_REGISTRY", url.clone()));
        let mut running = vec![env.start(id, Role::Consumer, 1, &vars)?];
        let watch = evidence::Watch {
            conn: &env.conn,
            group: &group,
            topic: &scratch.names[0],
            partitions: partitions as usize,
        };
        let before = watch.drained(&mut running, LIMIT).await?;
        let new_id = publish_evolved(&env.conn, &client, &scratch.names[0], partitions).await?;
        let after = watch.drained(&mut running, LIMIT).await?;
        let crashed = running[0].crashed();
        evidence::stop_all(&mut running, Duration::from_secs(10)).await;
        let dead = consumer::read_records(&env.conn, &scratch.names[1]).await?.len();
        running.insert(0, producer);
        Ok::<_, super::Failed>((produced, stored, before, new_id, after, crashed, dead, running))
    }
    .await;
    let _ = client.delete_subject(&registry::value_subject(&scratch.names[0])).await;
    scratch.remove(&env.conn).await;
    let (produced, stored, before, new_id, after, crashed, dead, running) = result?;
    let producer_ok = produced.is_some_and(|s| s.success()) && stored == FIRST as usize;
    let observed = format!(
        "{}: {}, {stored} framed record(s) stored; before the change: {}; after it (schema id {new_id}): {}; {dead} dead-lettered{}",
        running[0].label,
        running[0].ending(),
        before.describe(),
        after.describe(),
        if crashed { format!("; {} crashed ({})", running[1].label, running[1].ending()) } else { String::new() }
    );
    let passed = producer_ok && before.done() && after.done() && dead == 0 && !crashed;
    Ok(Judged::new(passed, expected, observed).with_output(&running))
}
