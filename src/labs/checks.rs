//! The checks behind steps and victory conditions, by name. Each runs against
//! the live broker and returns what it expected and what it observed; the
//! topics and groups it makes for itself are removed again.

use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use rdkafka::{
    producer::{FutureProducer, FutureRecord},
    types::RDKafkaErrorCode,
};

use crate::{
    broker::{Paths, State},
    codec::pb::events::v1::CustomerEvent,
    events::{self, EventKind, Facts},
    faults::{self, BrokerDown},
    kafka::{
        Connection, KafkaError, admin,
        consumer::{self, ConsumeOptions, Decoders, Event, StartAt},
        producer::{self, OutRecord, ProduceOptions},
        scratch::{self, Scratch},
        topics::{EVENTS, PLAN},
    },
    verdict::Verdict,
};

/// Every check a lab manifest may name.
pub const NAMES: [&str; 6] =
    ["broker-reachable", "topics-planned", "schema-enforced", "group-parallel", "retries-outage", "routing"];

/// What checks run against.
pub struct Env {
    pub conn: Connection,
    pub managed: Option<State>,
    pub paths: Paths,
    /// The student's own consumer group, checked too when given.
    pub group: Option<String>,
}

/// A check's verdict, built before the condition's statement is known.
fn verdict(passed: bool, expected: impl Into<String>, observed: impl Into<String>) -> Verdict {
    Verdict::holds("", expected, observed.into(), passed)
}

/// Runs the check called `name`.
pub async fn run(name: &str, env: &Env) -> Verdict {
    let result = match name {
        "broker-reachable" => broker_reachable(env).await,
        "topics-planned" => topics_planned(env).await,
        "schema-enforced" => schema_enforced(env).await,
        "group-parallel" => group_parallel(env).await,
        "retries-outage" => retries_outage(env).await,
        "routing" => routing(env).await,
        other => Ok(verdict(false, "a known check", format!("unknown check `{other}`"))),
    };
    result.unwrap_or_else(|e| verdict(false, "the check to run", format!("it could not: {e}")))
}

type Checked = Result<Verdict, Box<dyn std::error::Error + Send + Sync>>;

async fn broker_reachable(env: &Env) -> Checked {
    let expected = format!("a broker answering at {}", env.conn.brokers);
    Ok(match admin::list_topics(&env.conn).await {
        Ok(topics) => {
            let engine = env.managed.as_ref().map_or("external".to_string(), |s| s.engine.to_string());
            verdict(true, expected, format!("answers ({engine}, {} topics)", topics.len()))
        }
        Err(e) => verdict(false, expected, e.to_string()),
    })
}

async fn topics_planned(env: &Env) -> Checked {
    let topics = admin::list_topics(&env.conn).await?;
    let expected: Vec<String> = PLAN.iter().map(|t| format!("{} ({})", t.name, t.partitions)).collect();
    let observed: Vec<String> = PLAN
        .iter()
        .map(|t| match topics.iter().find(|i| i.name == t.name) {
            Some(i) => format!("{} ({})", t.name, i.partitions.len()),
            None => format!("{} (missing)", t.name),
        })
        .collect();
    Ok(verdict(expected == observed, expected.join(", "), observed.join(", ")))
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

async fn schema_enforced(env: &Env) -> Checked {
    let planned = topics_planned(env).await?;
    if !planned.passed {
        return Ok(verdict(false, format!("topics {}", planned.expected), format!("topics {}", planned.observed)));
    }
    let expected = "topics as planned; a valid CustomerEvent accepted; a malformed value rejected (INVALID_RECORD)";
    // Both values go to the schema-bound stand-in of customer_events: the
    // student's topic stays as it was, enforcement or not.
    let bufstream = env.managed.as_ref().is_some_and(|s| s.engine == crate::broker::Engine::Bufstream);
    let stand_in = scratch::stand_in(&env.conn, EVENTS, bufstream).await?;
    let malformed_rejected = !accepted(&env.conn, &stand_in, b"\x0a\xff\xff").await?;
    let event = events::event(EventKind::CustomerCreated, &Facts { id: 1, ..Default::default() }, 1);
    let valid_accepted = accepted(&env.conn, &stand_in, &prost::Message::encode_to_vec(&event)).await?;
    let observed = format!(
        "topics as planned; valid event {}; malformed value {}",
        if valid_accepted { "accepted" } else { "REJECTED" },
        if malformed_rejected { "rejected (INVALID_RECORD)" } else { "ACCEPTED: no enforcement" }
    );
    Ok(verdict(valid_accepted && malformed_rejected, expected, observed))
}

async fn group_parallel(env: &Env) -> Checked {
    let scratch = Scratch::create(&env.conn, "check.parallel", &[("", 3)]).await?;
    let result = three_members(env, scratch.topic()).await;
    scratch.remove(&env.conn).await;
    let (own_ok, own_text) = match &env.group {
        Some(g) => {
            let d = crate::kafka::groups::describe(&env.conn, g).await?;
            let done = !d.partitions.is_empty() && d.total_lag == 0;
            let committed = d.partitions.iter().filter(|p| p.committed.is_some()).count();
            let text = if d.partitions.is_empty() {
                format!("; group {g} has committed nothing")
            } else {
                format!("; group {g} committed {committed} of {} partitions, lag {}", d.partitions.len(), d.total_lag)
            };
            (done, text)
        }
        None => (true, String::new()),
    };
    let (each_one, all_once, detail) = result?;
    let expected = format!(
        "3 members with one partition each; every event processed and committed{}",
        env.group.as_ref().map(|g| format!("; group {g} committed up to the end")).unwrap_or_default()
    );
    Ok(verdict(each_one && all_once && own_ok, expected, format!("{detail}{own_text}")))
}

/// Three in-process members of one group on `topic`, then 60 events across
/// its partitions: (the group settled with one partition each; every event
/// processed and committed to the end; what was seen).
async fn three_members(env: &Env, topic: &str) -> Result<(bool, bool, String), KafkaError> {
    const PER_PARTITION: i64 = 20;
    const TOTAL: usize = 3 * PER_PARTITION as usize;
    let group = events::new_id("chinook-check-group");
    let assigned: Arc<Mutex<[Vec<String>; 3]>> = Arc::default();
    let seen: Arc<Mutex<Vec<(i32, i64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let decoders = Arc::new(Decoders::new(Default::default(), None));
    let mut members = Vec::new();
    for i in 0..3 {
        let (conn, assigned, seen, decoders, stop) =
            (env.conn.clone(), assigned.clone(), seen.clone(), decoders.clone(), stop.clone());
        let options = ConsumeOptions {
            start: StartAt::Start,
            stop: Some(stop.clone()),
            ..ConsumeOptions::new(group.clone(), vec![topic.to_string()])
        };
        members.push(tokio::spawn(async move {
            consumer::consume(&conn, &options, &decoders, |event| match event {
                Event::Assigned(parts) => assigned.lock().unwrap_or_else(|p| p.into_inner())[i] = parts,
                Event::Record(r, _) => {
                    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                    seen.push((rdkafka::Message::partition(r.message), rdkafka::Message::offset(r.message)));
                    // Every event processed by the group: all members stop (and commit).
                    if seen.iter().collect::<BTreeSet<_>>().len() == TOTAL {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                Event::Idle | Event::JoinedRunningGroup(_) => {}
            })
            .await
        }));
    }
    // Produce only once the group has settled: one partition per member.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let settled = loop {
        let settled = {
            let a = assigned.lock().unwrap_or_else(|p| p.into_inner());
            a.iter().all(|p| p.len() == 1) && a.iter().collect::<BTreeSet<_>>().len() == 3
        };
        if settled || std::time::Instant::now() > deadline {
            break settled;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if settled {
        let records: Vec<OutRecord> = (0..TOTAL as i64)
            .map(|i| OutRecord {
                topic: topic.to_string(),
                partition: Some((i % 3) as i32),
                value: b"check".to_vec(),
                ..Default::default()
            })
            .collect();
        // Check data on a scratch topic: no producer id to wait for (about half a second).
        let options = ProduceOptions { idempotent: false, ..Default::default() };
        producer::produce(&env.conn, &options, records, |_| {}).await?;
    } else {
        stop.store(true, Ordering::Relaxed);
    }
    // Members stop by themselves once every event is processed; past the deadline they are told to.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for mut m in members {
        let joined = match tokio::time::timeout_at(deadline, &mut m).await {
            Ok(joined) => joined,
            Err(_) => {
                // Told to stop, a member commits and leaves within moments; one that cannot is cut off.
                stop.store(true, Ordering::Relaxed);
                match tokio::time::timeout(Duration::from_secs(30), &mut m).await {
                    Ok(joined) => joined,
                    Err(_) => {
                        m.abort();
                        let _ = m.await;
                        continue;
                    }
                }
            }
        };
        joined.map_err(|e| KafkaError::request("a check consumer", e))??;
    }
    let d = crate::kafka::groups::describe(&env.conn, &group).await?;
    let committed_all = d.partitions.len() == 3 && d.partitions.iter().all(|p| p.committed == Some(p.high));
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let processed = seen.iter().collect::<BTreeSet<_>>().len();
    let again = seen.len() - processed;
    let detail = if settled {
        format!(
            "3 members joined, one partition each; {processed} of {TOTAL} events processed{}; {}",
            if again > 0 { format!(" ({again} again after a rebalance)") } else { String::new() },
            if committed_all { "committed to the end of every partition" } else { "commits short of the end" }
        )
    } else {
        format!("the group did not settle in 60 s: {:?}", assigned.lock().unwrap_or_else(|p| p.into_inner()))
    };
    Ok((settled, processed == TOTAL && committed_all, detail))
}

async fn retries_outage(env: &Env) -> Checked {
    let expected = "1000 events acknowledged across a 0.5 s outage, each stored exactly once";
    let fault_env = faults::Env { conn: env.conn.clone(), managed: env.managed.clone(), paths: env.paths.clone() };
    // On a private door of its own: the outage disturbs no other check, so it runs alongside them.
    let scenario = BrokerDown {
        count: 1000,
        after: 300,
        down_for: Duration::from_millis(500),
        rate: 5000.0,
        hard: false,
        private_door: true,
    };
    let report = scenario.run(&fault_env).await?;
    let f = |k: &str| report.figures.get(k).copied().unwrap_or(-1);
    let observed = format!("{} acknowledged, {} lost, {} stored twice", f("acked"), f("lost"), f("duplicates"));
    Ok(verdict(f("acked") == 1000 && f("lost") == 0 && f("duplicates") == 0, expected, observed))
}

async fn routing(env: &Env) -> Checked {
    let scratch = Scratch::create(&env.conn, "check.routing", &[("", 1)]).await?;
    let topic = scratch.topic().to_string();
    let mut values: Vec<Vec<u8>> = EventKind::ALL
        .iter()
        .map(|k| prost::Message::encode_to_vec(&events::event(*k, &Facts { id: 5, ..Default::default() }, 1)))
        .collect();
    // And one event of no known type.
    values
        .push(prost::Message::encode_to_vec(&CustomerEvent { event_id: events::new_id("evt"), ..Default::default() }));
    let records: Vec<OutRecord> = values
        .into_iter()
        .map(|value| OutRecord { topic: topic.clone(), key: Some(b"5".to_vec()), value, ..Default::default() })
        .collect();
    let result = async {
        producer::produce(&env.conn, &ProduceOptions::default(), records, |_| {}).await?;
        let options = ConsumeOptions::read_all(&topic);
        let decoders = Decoders::lab(Some(crate::codec::EVENT_TYPE)).expect("built-in type");
        consumer::consume(&env.conn, &options, &decoders, |_| {}).await
    }
    .await;
    scratch.remove(&env.conn).await;
    let summary = result?;
    let routes =
        EventKind::ALL.iter().filter(|k| summary.per_route.get(k.event_type().as_str_name()) == Some(&1)).count();
    let expected = "5 event types each routed to their handler once; 1 unknown type skipped";
    let observed = format!(
        "{routes} of 5 types routed once; {} skipped; {} dead-lettered",
        summary.skipped, summary.dead_lettered
    );
    Ok(verdict(routes == 5 && summary.skipped == 1 && summary.dead_lettered == 0, expected, observed))
}
