//! The reference orchestrator (`chinook saga run`) against the embedded
//! broker: a saga completes with its ids chained, a redelivered command
//! starts nothing, a failing step is compensated in reverse, and a kill -9
//! inside a step's transaction, then a restart, leaves every step done once.

mod common;

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use chinook::saga::history::{self, Outcome, Saga};
use common::*;
use rdkafka::{
    Message,
    consumer::{BaseConsumer, Consumer},
};

struct Lab {
    commands: String,
    saga: String,
    events: String,
    group: String,
}

async fn lab() -> Lab {
    let l = Lab { commands: unique("cmd"), saga: unique("saga"), events: unique("evt"), group: unique("orchestrator") };
    create_topic(broker(), &l.commands, 1).await;
    create_topic(broker(), &l.saga, 3).await;
    create_topic(broker(), &l.events, 3).await;
    l
}

impl Lab {
    fn orchestrator(&self, extra: &[&str]) -> Child {
        Command::new(assert_cmd::cargo::cargo_bin("chinook"))
            .args(["saga", "run", "--brokers", &broker().bootstrap, "--group", &self.group])
            .args(["--commands-topic", &self.commands, "--saga-topic", &self.saga, "--events-topic", &self.events])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn command(&self, id: i64, correlation: &str) {
        let out = chinook()
            .args(["produce", "create-customer", "--id", &id.to_string(), "--correlation-id", correlation])
            .args(["--topic", &self.commands, "--brokers", &broker().bootstrap, "-q"])
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    async fn sagas(&self) -> Vec<Saga> {
        history::read(&connection(broker()), &self.saga).await.unwrap()
    }

    /// Waits (with a deadline) until `done` holds for the sagas.
    async fn until(&self, what: &str, done: impl Fn(&[Saga]) -> bool) -> Vec<Saga> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let sagas = self.sagas().await;
            if done(&sagas) {
                return sagas;
            }
            assert!(Instant::now() < deadline, "{what}: not within 90 s; sagas: {sagas:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn stop(mut child: Child) {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_or_kill(&mut child, Duration::from_secs(30));
    assert!(status.success(), "the orchestrator stops cleanly on SIGTERM: {status:?}");
}

fn finished(sagas: &[Saga], n: usize) -> bool {
    sagas.len() == n && sagas.iter().all(|s| s.outcome != Outcome::Running)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saga_completes_once_with_its_ids_chained() {
    let lab = lab().await;
    let orchestrator = lab.orchestrator(&[]);
    lab.command(41, "onboard-41");
    lab.command(41, "onboard-41"); // redelivered: the same saga, nothing new
    lab.command(42, "onboard-42");
    let sagas = lab.until("two sagas completed", |s| finished(s, 2)).await;
    stop(orchestrator);
    for s in &sagas {
        assert_eq!(s.outcome, Outcome::Completed, "{s:#?}");
        assert_eq!(
            s.trail(),
            [
                "started -",
                "completed create-customer",
                "completed welcome-email",
                "completed billing-setup",
                "saga-completed -"
            ]
        );
        assert!(s.problems.is_empty(), "{:?}", s.problems);
    }
    let projection = chinook::sourcing::project(&connection(broker()), &lab.events, &Default::default(), |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(projection.live().count(), 2, "one customer created per saga");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_step_is_compensated_in_reverse_order() {
    let lab = lab().await;
    let orchestrator = lab.orchestrator(&["--fail-at", "billing-setup"]);
    lab.command(51, "onboard-51");
    let sagas = lab.until("the saga ended", |s| finished(s, 1)).await;
    stop(orchestrator);
    let s = &sagas[0];
    assert_eq!(s.outcome, Outcome::Compensated);
    assert_eq!(
        s.trail(),
        [
            "started -",
            "completed create-customer",
            "completed welcome-email",
            "failed billing-setup",
            "compensated welcome-email",
            "compensated create-customer",
            "saga-failed -"
        ]
    );
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    let projection = chinook::sourcing::project(&connection(broker()), &lab.events, &Default::default(), |_, _, _| {})
        .await
        .unwrap();
    assert_eq!((projection.live().count(), projection.customers.len()), (0, 1), "created, then deleted");
}

/// Every saga message on `topic`, transactions' uncommitted and aborted records included.
fn read_uncommitted(topic: &str) -> Vec<chinook::codec::pb::events::v1::SagaMessage> {
    use prost::Message as _;
    let c: BaseConsumer = connection(broker())
        .client_config()
        .set("group.id", unique("raw"))
        .set("isolation.level", "read_uncommitted")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    let mut ends = std::collections::HashMap::new();
    for p in 0..3 {
        let (_, high) = c.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap();
        if high > 0 {
            tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning).unwrap();
            ends.insert(p, high);
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return out;
    }
    c.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ends.is_empty() {
        assert!(Instant::now() < deadline, "reading {topic} read_uncommitted to its end");
        if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
            out.push(chinook::codec::pb::events::v1::SagaMessage::decode(m.payload().unwrap()).unwrap());
        }
        let position = c.position().unwrap();
        ends.retain(|p, end| {
            !matches!(position.find_partition(topic, *p).map(|e| e.offset()), Some(rdkafka::Offset::Offset(o)) if o >= *end)
        });
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_inside_a_step_and_restarted_the_orchestrator_does_no_step_twice() {
    let lab = lab().await;
    // Each transaction stays open 5 s after its records are sent: ample time
    // to see the record and kill the orchestrator before it commits.
    let mut first = lab.orchestrator(&["--step-delay", "5s"]);
    lab.command(61, "onboard-61");
    // Wait until the welcome email's record is written but not committed: the
    // orchestrator is inside that step's transaction. Then kill -9.
    let deadline = Instant::now() + Duration::from_secs(90);
    let welcome = |m: &chinook::codec::pb::events::v1::SagaMessage| {
        m.step == chinook::codec::pb::events::v1::SagaStep::WelcomeEmail as i32
    };
    loop {
        if read_uncommitted(&lab.saga).iter().any(welcome) {
            break;
        }
        assert!(Instant::now() < deadline, "the welcome step never started");
    }
    let committed = lab.sagas().await;
    assert!(!committed[0].trail().iter().any(|t| t.contains("welcome")), "still uncommitted when killed");
    first.kill().unwrap();
    first.wait().unwrap();

    let second = lab.orchestrator(&["--step-delay", "100ms"]);
    let sagas = lab.until("the saga completed after the restart", |s| finished(s, 1)).await;
    stop(second);
    let s = &sagas[0];
    assert_eq!(s.outcome, Outcome::Completed);
    assert_eq!(
        s.trail(),
        [
            "started -",
            "completed create-customer",
            "completed welcome-email",
            "completed billing-setup",
            "saga-completed -"
        ]
    );
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    // The dead instance's welcome email is on the log, in an aborted transaction.
    assert_eq!(read_uncommitted(&lab.saga).iter().filter(|m| welcome(m)).count(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn correlate_draws_a_saga_as_a_causal_tree_and_flags_an_orphan() {
    let lab = lab().await;
    let orchestrator = lab.orchestrator(&[]);
    lab.command(71, "onboard-71");
    lab.until("the saga completed", |s| finished(s, 1)).await;
    stop(orchestrator);
    let correlate = |id: &str| {
        chinook()
            .args(["correlate", id, "--format", "json", "--brokers", &broker().bootstrap])
            .args(["--events-topic", &lab.events, "--commands-topic", &lab.commands, "--saga-topic", &lab.saga])
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap()
    };
    let out = correlate("onboard-71");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tree: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The command, five saga messages, and the CustomerCreated event.
    assert_eq!(tree["nodes"].as_object().unwrap().len(), 7, "{tree:#}");
    let roots = tree["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 1);
    let root = roots[0].as_str().unwrap();
    assert!(tree["nodes"][root]["kind"].as_str().unwrap().starts_with("command CREATE_CUSTOMER"));
    let started = tree["children"][root][0].as_str().unwrap();
    let under_started: Vec<&str> = tree["children"][started]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| tree["nodes"][c.as_str().unwrap()]["kind"].as_str().unwrap())
        .collect();
    assert!(under_started.contains(&"saga completed create-customer"), "{under_started:?}");
    assert!(under_started.contains(&"event CUSTOMER_EVENT_TYPE_CREATED"), "{under_started:?}");
    assert_eq!((tree["orphans"].as_array().unwrap().len(), tree["cycles"].as_array().unwrap().len()), (0, 0));

    // A message that names a cause nobody sent.
    let stray = chinook::codec::pb::events::v1::SagaMessage {
        message_id: "stray-1".into(),
        correlation_id: "onboard-71".into(),
        causation_id: "never-sent".into(),
        ..Default::default()
    };
    let record = chinook::kafka::producer::OutRecord {
        topic: lab.saga.clone(),
        key: Some(b"onboard-71".to_vec()),
        value: prost::Message::encode_to_vec(&stray),
        ..Default::default()
    };
    let conn = connection(broker());
    chinook::kafka::producer::produce(&conn, &Default::default(), [record], |_| {}).await.unwrap();
    let out = correlate("onboard-71");
    assert_eq!(out.status.code(), Some(1));
    let tree: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tree["orphans"], serde_json::json!(["stray-1"]));
    assert_eq!(correlate("nobody").status.code(), Some(1));
}
