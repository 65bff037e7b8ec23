//! `group-parallel`: several instances of the student's consumer in one
//! group share a topic's partitions. chinook starts them, publishes events
//! across every partition, and judges the group on the broker: every member
//! seen in it, and its committed offsets at the end of every partition.

use std::time::Duration;

use super::{Checked, Env, Judged, Role, evidence};
use crate::{
    events,
    kafka::{
        producer::{self, OutRecord, ProduceOptions},
        scratch::Scratch,
    },
};

/// How long the members may take to join (a first `go run` compiles; the
/// embedded broker holds each joining member for 3 s) and commit everything.
const LIMIT: Duration = Duration::from_secs(120);

pub async fn check(env: &Env, id: &str, topic: &str, members: u32, count: u32) -> Checked {
    let partitions = env.topic(topic)?.partitions;
    let expected = format!(
        "{members} consumer instances join one group; all {count} events committed to the end of each of the {partitions} partitions; none crashes"
    );
    let scratch = Scratch::create(&env.conn, "check.parallel", &[("", partitions), (".dlq", 1)]).await?;
    let group = events::new_id("chinook-check-group");
    let result = async {
        let vars = [
            ("CHINOOK_TOPIC", scratch.names[0].clone()),
            ("CHINOOK_GROUP", group.clone()),
            ("CHINOOK_DLQ_TOPIC", scratch.names[1].clone()),
        ];
        let mut running = Vec::new();
        for n in 1..=members as usize {
            running.push(env.start(id, Role::Consumer, n, &vars)?);
        }
        // Published at once: a member that joins late still finds work after the rebalance.
        // (tansu shows a group's members only once it has committed something, so
        // membership is judged at the end, not waited for first.)
        let records: Vec<OutRecord> = (0..count as i64)
            .map(|i| OutRecord {
                partition: Some((i % i64::from(partitions)) as i32),
                ..OutRecord::event(&scratch.names[0], &events::created(i + 1))
            })
            .collect();
        // Check data on a scratch topic: no producer id to wait for.
        producer::produce(&env.conn, &ProduceOptions { idempotent: false, ..Default::default() }, records, |_| {})
            .await?;
        let all_in = |p: &evidence::Progress| p.done() && p.most_members >= members as usize;
        let progress = evidence::watch_group(
            &env.conn,
            &group,
            &scratch.names[0],
            partitions as usize,
            &mut running,
            LIMIT,
            all_in,
        )
        .await?;
        let crashed: Vec<String> = running.iter_mut().filter_map(|r| r.crashed().then(|| r.label.clone())).collect();
        evidence::stop_all(&mut running, Duration::from_secs(10)).await;
        Ok::<_, super::Failed>((progress, crashed, running))
    }
    .await;
    scratch.remove(&env.conn).await;
    let (progress, crashed, running) = result?;
    let joined = progress.most_members >= members as usize;
    let observed = format!(
        "{} of {members} seen in the group{}; {}",
        progress.most_members.min(members as usize),
        if crashed.is_empty() { String::new() } else { format!("; crashed: {}", crashed.join(", ")) },
        progress.describe()
    );
    Ok(Judged::new(joined && progress.done() && crashed.is_empty(), expected, observed).with_output(&running))
}
