//! `lag-drains`: the student's consumer joins a group, chinook publishes a
//! burst of events across every partition at once, and the group's lag must
//! come back to zero — every partition committed to its end — as `chinook
//! monitor` then shows it: lag 0, Burrow-style status OK.

use std::time::Duration;

use tokio::time::Instant;

use super::{Checked, Env, Judged, Role, evidence};
use crate::{
    events,
    kafka::scratch::Scratch,
    monitor::{self, History, status::Status},
};

/// How long the consumer may take to start (a first `go run` compiles) and drain the burst.
const LIMIT: Duration = Duration::from_secs(120);

pub async fn check(env: &Env, id: &str, topic: &str, count: u32) -> Checked {
    let partitions = env.topic(topic)?.partitions;
    let expected = format!(
        "after a burst of {count} events over {partitions} partitions, the group's lag returns to 0 (every partition committed to its end) and chinook monitor shows it: lag 0, status OK"
    );
    let scratch = Scratch::create(&env.conn, "check.lag", &[("", partitions), (".dlq", 1)]).await?;
    let group = events::new_id("chinook-check-lag");
    let result = async {
        let vars = evidence::consumer_vars(&scratch, &group);
        let mut running = vec![env.start(id, Role::Consumer, 1, &vars)?];
        evidence::publish_spread(&env.conn, &scratch.names[0], partitions, count).await?;
        let burst_done = Instant::now();
        let watch = evidence::Watch {
            conn: &env.conn,
            group: &group,
            topic: &scratch.names[0],
            partitions: partitions as usize,
        };
        let progress = watch.drained(&mut running, LIMIT).await?;
        let drained_in = burst_done.elapsed();
        // What the monitor shows now, judged over two samples as `chinook monitor` does.
        let mut history = History::new(2);
        history.push(monitor::snapshot(&env.conn, None).await?);
        let view = history.push(monitor::snapshot(&env.conn, None).await?);
        let shown = view.now.groups.iter().zip(&view.consumers).find(|(g, _)| g.group == group);
        let shown = shown.map(|(g, v)| (g.total_lag, v.status));
        let crashed = running[0].crashed();
        evidence::stop_all(&mut running, Duration::from_secs(10)).await;
        Ok::<_, super::Failed>((progress, drained_in, shown, crashed, running))
    }
    .await;
    scratch.remove(&env.conn).await;
    let (progress, drained_in, shown, crashed, running) = result?;
    let monitor = match shown {
        Some((lag, status)) => format!("chinook monitor shows lag {lag}, status {}", status.name()),
        None => "chinook monitor does not list the group (it never committed)".into(),
    };
    let observed = format!(
        "lag peaked at {}{}; {}; {monitor}{}",
        progress.peak_lag,
        if progress.done() {
            format!(", back to 0 {:.1} s after the burst", drained_in.as_secs_f64())
        } else {
            String::new()
        },
        progress.describe(),
        if crashed { format!("; {} crashed ({})", running[0].label, running[0].ending()) } else { String::new() }
    );
    let passed = progress.done() && shown == Some((0, Status::Ok)) && !crashed;
    Ok(Judged::new(passed, expected, observed).with_output(&running))
}
