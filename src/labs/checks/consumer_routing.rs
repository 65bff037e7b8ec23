//! `consumer-routing`: one event of every kind, one of a type no handler
//! knows, one poison event (valid protobuf whose type and payload disagree,
//! so no handler can process it) and a last ordinary event. The student's
//! consumer must commit past all of them without crashing, skip the unknown
//! one and put the poison one — and only it — in the dead-letter topic.

use std::time::Duration;

use prost::Message as _;

use super::{Checked, Env, Judged, Role, evidence};
use crate::{
    codec::pb::events::v1::{CustomerEvent, CustomerEventType},
    events::{self, EventKind, Facts},
    kafka::{
        consumer,
        producer::{self, OutRecord, ProduceOptions},
        scratch::Scratch,
    },
};

/// How long the consumer may take to start (a first `go run` compiles) and
/// get through the records. (tansu shows no group before its first commit,
/// so joining cannot be waited for on its own.)
const LIMIT: Duration = Duration::from_secs(120);

/// The records the check publishes, and the poison one's event id.
fn records(topic: &str) -> (Vec<OutRecord>, String) {
    let facts = Facts { id: 5, ..Default::default() };
    let mut out: Vec<OutRecord> =
        EventKind::ALL.iter().map(|k| OutRecord::event(topic, &events::event(*k, &facts, 1))).collect();
    // A type from a newer schema: this consumer has no handler for it.
    let unknown = CustomerEvent { event_type: 99, ..events::event(EventKind::CustomerDeleted, &facts, 2) };
    let unknown = CustomerEvent { payload: None, ..unknown };
    out.push(OutRecord::event(topic, &unknown));
    // Says "updated", carries a "created" payload: no handler can process it.
    let poison = CustomerEvent {
        event_type: CustomerEventType::Updated as i32,
        ..events::event(EventKind::CustomerCreated, &Facts { id: 6, ..Default::default() }, 1)
    };
    let poison_id = poison.event_id.clone();
    out.push(OutRecord::event(topic, &poison));
    out.push(OutRecord::event(topic, &events::created(7)));
    (out, poison_id)
}

pub async fn check(env: &Env, id: &str, topic: &str) -> Checked {
    let _ = env.topic(topic)?;
    let scratch = Scratch::create(&env.conn, "check.routing", &[("", 1), (".dlq", 1)]).await?;
    let (records, poison_id) = records(scratch.topic());
    let total = records.len();
    let expected = format!(
        "the consumer commits past all {total} records (5 kinds, 1 unknown type, 1 poison, 1 more) without crashing; the poison event, and only it, dead-lettered"
    );
    let group = events::new_id("chinook-check-routing");
    let result = async {
        producer::produce(&env.conn, &ProduceOptions { idempotent: false, ..Default::default() }, records, |_| {})
            .await?;
        let vars = evidence::consumer_vars(&scratch, &group);
        let mut running = vec![env.start(id, Role::Consumer, 1, &vars)?];
        let topic = &scratch.names[0];
        let watch = evidence::Watch { conn: &env.conn, group: &group, topic, partitions: 1 };
        let progress = watch.drained(&mut running, LIMIT).await?;
        let crashed = running[0].crashed();
        evidence::stop_all(&mut running, Duration::from_secs(10)).await;
        let parked = consumer::read_records(&env.conn, &scratch.names[1]).await?;
        Ok::<_, super::Failed>((progress, crashed, running, parked))
    }
    .await;
    scratch.remove(&env.conn).await;
    let (progress, crashed, running, parked) = result?;
    let parked_ids: Vec<String> = parked
        .iter()
        .map(|r| CustomerEvent::decode(r.value.as_slice()).map(|e| e.event_id).unwrap_or_default())
        .collect();
    let poison_parked = parked_ids.contains(&poison_id);
    let others = parked_ids.iter().filter(|i| **i != poison_id).count();
    let observed = format!(
        "{}{}; dead-letter topic: {}{}",
        progress.describe(),
        if crashed { format!("; {} crashed ({})", running[0].label, running[0].ending()) } else { String::new() },
        if poison_parked { "the poison event" } else { "NOT the poison event" },
        if others > 0 { format!(" and {others} other record(s)") } else { String::new() }
    );
    Ok(Judged::new(progress.done() && !crashed && poison_parked && others == 0, expected, observed)
        .with_output(&running))
}
