//! `group-parallel`: several instances of the student's consumer in one
//! group share a topic's partitions. chinook starts them, publishes events
//! across every partition, and judges the group on the broker: every member
//! seen in it, and its committed offsets at the end of every partition.

use std::time::Duration;

use super::{Checked, Env, Judged, Role, evidence};
use crate::{events, kafka::scratch::Scratch};

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
        let vars = evidence::consumer_vars(&scratch, &group);
        let mut running = Vec::new();
        for n in 1..=members as usize {
            running.push(env.start(id, Role::Consumer, n, &vars)?);
        }
        // Published at once: a member that joins late still finds work after the rebalance.
        // (tansu shows a group's members only once it has committed something, so
        // membership is judged at the end, not waited for first.)
        evidence::publish_spread(&env.conn, &scratch.names[0], partitions, count).await?;
        let all_in = |p: &evidence::Progress| p.done() && p.most_members >= members as usize;
        let watch = evidence::Watch {
            conn: &env.conn,
            group: &group,
            topic: &scratch.names[0],
            partitions: partitions as usize,
        };
        let progress = watch.until(&mut running, LIMIT, all_in).await?;
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
