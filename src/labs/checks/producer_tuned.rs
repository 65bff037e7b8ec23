//! `producer-tuned`: the student's producer runs twice through a private
//! front door that counts the bytes of every Produce request — once with its
//! defaults, once with `CHINOOK_TUNED=1` — each publishing the same number of
//! events to a scratch topic. The tuned run must send the events in
//! `fewer` % fewer bytes, or at a `faster` % higher rate (events over the
//! time from its first Produce request to its last). The rate margin is the
//! wider one: rates of two runs with the same settings differ by up to a
//! quarter on a loaded machine, bytes by about 1 %.

use std::time::Duration;

use super::{Checked, Env, Judged, Role};
use crate::{
    broker::frontdoor::{FrontDoor, ProduceTraffic},
    kafka::{consumer, scratch::Scratch},
};

/// How long one producer run may take (a first `go run` compiles).
const RUN_LIMIT: Duration = Duration::from_secs(180);

/// One run's figures.
struct Run {
    ok: bool,
    stored: usize,
    traffic: ProduceTraffic,
    label: String,
    ending: String,
}

impl Run {
    fn rate(&self) -> f64 {
        let span = self.traffic.span().as_secs_f64();
        if span > 0.0 { self.stored as f64 / span } else { f64::INFINITY }
    }

    fn describe(&self) -> String {
        format!(
            "{} ({}): {} record(s) stored, {} Produce request(s), {} bytes, {:.0} events/s",
            self.label,
            self.ending,
            self.stored,
            self.traffic.requests,
            self.traffic.bytes,
            self.rate()
        )
    }
}

async fn run(
    env: &Env,
    id: &str,
    n: usize,
    topic: &str,
    count: u32,
    tuned: bool,
) -> Result<(Run, crate::labs::programs::Running), super::Failed> {
    let partitions = env.topic(topic)?.partitions;
    let door = FrontDoor::in_front_of(&env.conn).await?;
    let scratch = Scratch::create(&env.conn, "check.tuned", &[("", partitions)]).await?;
    let result = async {
        let mut vars = vec![
            ("CHINOOK_TOPIC", scratch.topic().to_string()),
            ("CHINOOK_COUNT", count.to_string()),
            ("CHINOOK_BROKERS", door.addr().to_string()),
        ];
        if tuned {
            vars.push(("CHINOOK_TUNED", "1".to_string()));
        }
        let mut producer = env.start(id, Role::Producer, n, &vars)?;
        let exit = producer.wait(RUN_LIMIT).await;
        producer.terminate(Duration::from_secs(5)).await;
        let stored = consumer::read_records(&env.conn, scratch.topic()).await?.len();
        let run = Run {
            ok: exit.is_some_and(|s| s.success()),
            stored,
            traffic: door.produce_traffic(),
            label: format!("{} run", if tuned { "tuned" } else { "default" }),
            ending: producer.ending(),
        };
        Ok::<_, super::Failed>((run, producer))
    }
    .await;
    scratch.remove(&env.conn).await;
    result
}

pub async fn check(env: &Env, id: &str, topic: &str, count: u32, (fewer_pc, faster_pc): (u32, u32)) -> Checked {
    let expected = format!(
        "both runs exit 0 with {count} events stored; the tuned run sends at least {fewer_pc} % fewer bytes in Produce requests, or publishes at least {faster_pc} % faster"
    );
    let (default, first) = run(env, id, 1, topic, count, false).await?;
    let (tuned, second) = run(env, id, 2, topic, count, true).await?;
    let fewer = 1.0 - tuned.traffic.bytes as f64 / default.traffic.bytes.max(1) as f64;
    let faster = tuned.rate() / default.rate() - 1.0;
    let complete = |r: &Run| r.ok && r.stored == count as usize;
    let passed = complete(&default)
        && complete(&tuned)
        && (fewer >= f64::from(fewer_pc) / 100.0 || faster >= f64::from(faster_pc) / 100.0);
    let observed = format!(
        "{}; {}; tuned: {:+.0} % bytes, {:+.0} % events/s",
        default.describe(),
        tuned.describe(),
        -fewer * 100.0,
        faster * 100.0
    );
    Ok(Judged::new(passed, expected, observed).with_output(&[first, second]))
}
