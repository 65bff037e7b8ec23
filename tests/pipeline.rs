//! produce → broker → consume, as students run it: the CLI binary against the
//! embedded broker of this test binary, each test on its own topics and groups.

mod common;

use std::{collections::BTreeSet, process::Output, time::Duration};

use chinook::kafka::producer::{self, OutRecord, ProduceOptions};
use common::*;
use serde_json::Value;

const EVENT: &str = "events.v1.CustomerEvent";
const COMMAND: &str = "events.v1.CustomerCommand";

fn run(args: &[&str]) -> Output {
    chinook().args(args).args(["--brokers", &broker().bootstrap]).timeout(Duration::from_secs(120)).output().unwrap()
}

fn ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(out.status.success(), "chinook {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn header<'a>(record: &'a Value, name: &str) -> Option<&'a str> {
    record["headers"].as_array()?.iter().find(|h| h[0] == name).and_then(|h| h[1].as_str())
}

async fn topic(partitions: i32) -> String {
    let name = unique("t");
    create_topic(broker(), &name, partitions).await;
    name
}

fn consume_all(topic: &str, group: &str, type_name: &str) -> Vec<Value> {
    lines(&ok(&[
        "consume",
        "--topic",
        topic,
        "--group",
        group,
        "--type",
        type_name,
        "--until-end",
        "--format",
        "jsonl",
        "--dlq",
        &format!("{topic}.dlq"),
    ]))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_kind_and_command_round_trips_with_key_and_headers() {
    let events = topic(3).await;
    let kinds = ["customer-created", "customer-updated", "customer-deleted", "status-changed", "contact-updated"];
    for (i, kind) in kinds.iter().enumerate() {
        let id = (10 + i).to_string();
        ok(&[
            "produce",
            kind,
            "--id",
            &id,
            "--topic",
            &events,
            "--correlation-id",
            "corr-1",
            "--reason",
            "because",
            "--by",
            "tester",
        ]);
    }
    let seen = consume_all(&events, &unique("g"), EVENT);
    assert_eq!(seen.len(), 5);
    for (i, kind) in kinds.iter().enumerate() {
        let id = (10 + i).to_string();
        let r = seen.iter().find(|r| r["key"] == id.as_str()).unwrap_or_else(|| panic!("no record for {kind}"));
        let v = &r["value"];
        let expected_type =
            format!("CUSTOMER_EVENT_TYPE_{}", kind.trim_start_matches("customer-").replace('-', "_").to_uppercase());
        assert_eq!(v["eventType"], expected_type.as_str(), "{kind}");
        assert_eq!(header(r, "event-type"), Some(expected_type.as_str()));
        assert_eq!(header(r, "aggregate-type"), Some("customer"));
        assert_eq!(header(r, "content-type"), Some("application/x-protobuf"));
        assert_eq!(header(r, "correlation-id"), Some("corr-1"));
        assert_eq!(header(r, "event-version"), Some(v["version"].as_str().unwrap()));
        assert_eq!(v["aggregateId"], id.as_str());
        assert_eq!(v["correlationId"], "corr-1");
        assert_eq!(r["outcome"], "handled");
        // The record timestamp is the event's timestamp.
        let event_ms = humantime::parse_rfc3339(v["timestamp"].as_str().unwrap())
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert_eq!(r["timestamp"].as_i64().unwrap(), event_ms);
    }
    let created = seen.iter().find(|r| r["key"] == "10").unwrap();
    assert_eq!(created["value"]["version"], "1");
    assert_eq!(created["value"]["customerCreated"]["createdBy"], "tester");
    let deleted = seen.iter().find(|r| r["key"] == "12").unwrap();
    assert_eq!(deleted["value"]["customerDeleted"]["reason"], "because");

    let commands = topic(1).await;
    for (i, kind) in ["create-customer", "update-customer", "delete-customer"].iter().enumerate() {
        ok(&["produce", kind, "--id", &(20 + i).to_string(), "--topic", &commands]);
    }
    let seen = consume_all(&commands, &unique("g"), COMMAND);
    let routes: Vec<&str> = seen.iter().map(|r| header(r, "command-type").unwrap()).collect();
    assert_eq!(routes, ["CREATE_CUSTOMER", "UPDATE_CUSTOMER", "DELETE_CUSTOMER"], "one partition keeps the order");
    assert!(seen[0]["value"]["createCustomer"]["customer"]["name"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_follow_each_customers_history() {
    let events = topic(3).await;
    ok(&["produce", "customer-created", "--id", "7", "--topic", &events]);
    ok(&["produce", "customer-updated", "--id", "7", "--topic", &events, "--count", "3", "--ids", "fixed"]);
    ok(&["produce", "status-changed", "--id", "7", "--topic", &events]);
    let seen = consume_all(&events, &unique("g"), EVENT);
    let versions: Vec<&str> = seen.iter().map(|r| r["value"]["version"].as_str().unwrap()).collect();
    assert_eq!(versions, ["1", "2", "3", "4", "5"], "one key, one partition, versions in order");
}

#[tokio::test(flavor = "multi_thread")]
async fn jsonl_written_by_consume_is_produced_back_losslessly() {
    let a = topic(3).await;
    ok(&["produce", "customer-created", "--count", "20", "--id", "100", "--topic", &a]);
    let first = consume_all(&a, &unique("g"), EVENT);
    // Replay into a second topic with the same partitions.
    let b = topic(3).await;
    let replay: String = first
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r["topic"] = Value::String(b.clone());
            r.to_string() + "\n"
        })
        .collect();
    let out = chinook()
        .args(["produce", "--input", "-", "--type", EVENT, "--brokers", &broker().bootstrap])
        .write_stdin(replay)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let second = consume_all(&b, &unique("g"), EVENT);
    let strip = |rs: &[Value]| -> Vec<Value> {
        let mut v: Vec<Value> = rs
            .iter()
            .map(|r| {
                serde_json::json!([r["partition"], r["offset"], r["key"], r["headers"], r["timestamp"], r["value"]])
            })
            .collect();
        v.sort_by_key(|x| x.to_string());
        v
    };
    assert_eq!(strip(&first), strip(&second));
}

/// A line a group member printed: on stdout (a record, as JSON) or on stderr.
enum Said {
    Out(usize, Value),
    Err(usize, String),
}

/// Starts member `i` of `group` on `topic` as a student runs it in a terminal
/// (`chinook consume --follow -v`, JSON lines); everything it prints arrives
/// on `tx`, stdout and stderr each read by a thread of its own.
fn member(
    i: usize,
    topic: &str,
    group: &str,
    extra: &[&str],
    tx: &std::sync::mpsc::Sender<Said>,
) -> std::process::Child {
    use std::io::BufRead;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("chinook"))
        .args(["consume", "--topic", topic, "--group", group, "--type", EVENT, "--follow", "-v"])
        .args(["--format", "jsonl", "--no-dlq", "--brokers", &broker().bootstrap])
        .args(extra)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (stdout, out_tx) = (child.stdout.take().unwrap(), tx.clone());
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = out_tx.send(Said::Out(i, serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))));
        }
    });
    let (stderr, err_tx) = (child.stderr.take().unwrap(), tx.clone());
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = err_tx.send(Said::Err(i, line));
        }
    });
    child
}

/// (partition, offset) of a record line.
fn at(record: &Value) -> (i64, i64) {
    (record["partition"].as_i64().unwrap(), record["offset"].as_i64().unwrap())
}

/// Produces `n` events spread over 3 partitions and waits for every ack.
async fn produce_spread(topic: &str, n: i32) {
    let value = read(&fixture("events/customer_created.bin"));
    let records: Vec<OutRecord> = (0..n)
        .map(|i| OutRecord {
            topic: topic.to_string(),
            partition: Some(i % 3),
            key: Some(i.to_string().into_bytes()),
            value: value.clone(),
            ..Default::default()
        })
        .collect();
    let report = producer::produce(&connection(broker()), &ProduceOptions::default(), records, |_| {}).await.unwrap();
    assert_eq!(report.acked, n as usize);
}

/// Waits until `group` has committed up to the end of every partition of `topic`.
fn wait_until_committed(group: &str, partitions: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let d: Value =
            serde_json::from_slice(&run(&["group", "describe", group, "--format", "json"]).stdout).unwrap_or_default();
        if d["partitions"].as_array().is_some_and(|p| p.len() == partitions) && d["total_lag"] == 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "group {group} never committed everything: {d}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Three `chinook consume` processes in one group, as three students' terminals:
/// one partition each and every record processed exactly once while the group
/// is stable; every record processed (at least once) across a later rebalance.
#[tokio::test(flavor = "multi_thread")]
async fn three_consumers_in_a_group_share_three_partitions() {
    let name = topic(3).await;
    let group = unique("trio");
    let (tx, rx) = std::sync::mpsc::channel::<Said>();
    let mut children: Vec<_> = (0..3).map(|i| member(i, &name, &group, &[], &tx)).collect();
    drop(tx); // the readers hold the senders: the channel ends when every member's output does
    // Wait until the group has settled, as each member reports its assignment,
    // before producing: one partition each, the three together covering all.
    let mut latest = [String::new(), String::new(), String::new()];
    while !(latest.iter().all(|a| !a.is_empty() && !a.contains(',') && a != "nothing")
        && latest.iter().collect::<BTreeSet<_>>().len() == 3)
    {
        match rx.recv_timeout(Duration::from_secs(120)).expect("the consumers report their assignments") {
            Said::Err(i, line) => {
                if let Some(parts) = line.split("assigned: ").nth(1) {
                    latest[i] = parts.trim().to_string();
                }
            }
            Said::Out(_, r) => panic!("a record before any was produced: {r}"),
        }
    }
    produce_spread(&name, 300).await;
    let mut seen = Seen::default();
    // Until every record has reached a member, and the group has committed them all.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while seen.all.len() < 300 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let said = rx.recv_timeout(left).unwrap_or_else(|_| panic!("only {} of 300 records arrived", seen.all.len()));
        seen.take(said);
    }
    wait_until_committed(&group, 3);
    // Leaving members rebalance the others: only a rebalance before this point counts.
    let rebalanced = seen.rebalanced;
    for child in &mut children {
        // SAFETY: signalling a child process this test started.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        assert!(wait_or_kill(child, Duration::from_secs(120)).success(), "a member failed");
    }
    rx.into_iter().for_each(|said| seen.take(said));
    let expected: BTreeSet<(i64, i64)> = (0..3).flat_map(|p| (0..100).map(move |o| (p, o))).collect();
    assert_eq!(seen.all, expected, "every record reached a member");
    if !rebalanced {
        assert!(seen.twice.is_empty(), "records seen twice while the group was stable: {:?}", seen.twice);
        assert!(seen.spans.iter().all(|p| p.len() == 1), "each member reads one partition: {:?}", seen.spans);
    }
}

/// What the members of a group printed: records (once and again), the
/// partitions each read, and whether the group rebalanced.
#[derive(Default)]
struct Seen {
    all: BTreeSet<(i64, i64)>,
    twice: Vec<(i64, i64)>,
    spans: [BTreeSet<i64>; 3],
    rebalanced: bool,
}

impl Seen {
    fn take(&mut self, said: Said) {
        match said {
            Said::Out(i, r) => {
                self.spans[i].insert(at(&r).0);
                if !self.all.insert(at(&r)) {
                    self.twice.push(at(&r));
                }
            }
            Said::Err(_, line) => self.rebalanced |= line.contains("assigned: "),
        }
    }
}

/// Two terminals in one group, both `--offset start`: the second joins after the
/// first has processed and committed everything, and nobody reads anything again
/// (the rebalance neither rewinds the first member nor the newcomer).
#[tokio::test(flavor = "multi_thread")]
async fn a_member_joining_a_running_group_reads_nothing_twice() {
    let name = topic(3).await;
    let group = unique("joiner");
    produce_spread(&name, 30).await;
    let (tx, rx) = std::sync::mpsc::channel::<Said>();
    let mut first = member(0, &name, &group, &["--offset", "start"], &tx);
    let mut records = Vec::new();
    let mut said_by = [Vec::new(), Vec::new()];
    let next = |records: &mut Vec<(usize, (i64, i64))>, said_by: &mut [Vec<String>; 2]| match rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the members keep reporting")
    {
        Said::Out(i, r) => records.push((i, at(&r))),
        Said::Err(i, line) => said_by[i].push(line),
    };
    while records.len() < 30 {
        next(&mut records, &mut said_by);
    }
    wait_until_committed(&group, 3);
    let mut second = member(1, &name, &group, &["--offset", "start"], &tx);
    // The newcomer is in once it reports partitions of its own.
    while !said_by[1].iter().any(|l| l.contains("assigned: ") && !l.contains("assigned: nothing")) {
        next(&mut records, &mut said_by);
    }
    produce_spread(&name, 30).await;
    while records.len() < 60 {
        next(&mut records, &mut said_by);
    }
    wait_until_committed(&group, 3);
    for child in [&mut first, &mut second] {
        // SAFETY: signalling a child process this test started.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        assert!(wait_or_kill(child, Duration::from_secs(120)).success());
    }
    drop(tx);
    for said in rx {
        match said {
            Said::Out(i, r) => records.push((i, at(&r))),
            Said::Err(i, line) => said_by[i].push(line),
        }
    }
    let unique: BTreeSet<(i64, i64)> = records.iter().map(|(_, at)| *at).collect();
    let expected: BTreeSet<(i64, i64)> = (0..3).flat_map(|p| (0..20).map(move |o| (p, o))).collect();
    assert_eq!(unique, expected, "every record processed");
    assert_eq!(records.len(), 60, "nothing read twice: {records:?}");
    assert!(
        said_by[1].iter().any(|l| l.contains("already has 1 member")),
        "the newcomer says it follows the group: {:?}",
        said_by[1]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_consumer_resumes_after_its_last_commit() {
    let name = topic(1).await;
    ok(&["produce", "customer-created", "--count", "50", "--id", "1", "--topic", &name]);
    let group = unique("resume");
    let first = lines(&ok(&[
        "consume", "--topic", &name, "--group", &group, "--type", EVENT, "--max", "20", "--format", "jsonl",
    ]));
    let second = consume_all(&name, &group, EVENT);
    let offsets = |rs: &[Value]| rs.iter().map(|r| r["offset"].as_i64().unwrap()).collect::<Vec<_>>();
    assert_eq!(offsets(&first), (0..20).collect::<Vec<_>>());
    assert_eq!(offsets(&second), (20..50).collect::<Vec<_>>(), "no record twice, none lost");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_undecodable_record_goes_to_the_dead_letter_topic_and_the_consumer_goes_on() {
    let b = broker();
    let name = topic(1).await;
    let dlq = format!("{name}.dlq");
    create_topic(b, &dlq, 1).await;
    let good = read(&fixture("events/customer_created.bin"));
    let records: Vec<OutRecord> = [good.clone(), b"\x0a\xff\xff".to_vec(), good]
        .into_iter()
        .map(|value| OutRecord {
            topic: name.clone(),
            partition: Some(0),
            key: Some(b"1".to_vec()),
            value,
            ..Default::default()
        })
        .collect();
    // Not a schema-bound topic: the broker lets the bad bytes through, the consumer must cope.
    assert_eq!(producer::produce(&connection(b), &ProduceOptions::default(), records, |_| {}).await.unwrap().acked, 3);
    let seen = consume_all(&name, &unique("g"), EVENT);
    let outcomes: Vec<&str> = seen.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["handled", "dead_lettered", "handled"]);
    let parked = lines(&ok(&[
        "consume",
        "--topic",
        &dlq,
        "--group",
        &unique("g"),
        "--until-end",
        "--format",
        "jsonl",
        "--no-dlq",
    ]));
    assert_eq!(parked.len(), 1);
    assert!(header(&parked[0], "dlq-reason").unwrap().contains("undecodable"), "{}", parked[0]);
    assert_eq!(header(&parked[0], "dlq-original-offset"), Some("1"));
    assert_eq!(header(&parked[0], "dlq-original-topic"), Some(name.as_str()));
    assert_eq!(parked[0]["value_bytes"], serde_json::json!({"base64": "Cv//"}), "the bad bytes, unchanged");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handler_that_keeps_failing_dead_letters_after_its_attempts() {
    let b = broker();
    let name = topic(1).await;
    create_topic(b, &format!("{name}.dlq"), 1).await;
    for id in ["1", "2", "3"] {
        ok(&["produce", "customer-created", "--id", id, "--topic", &name]);
    }
    let out = ok(&[
        "consume",
        "--topic",
        &name,
        "--group",
        &unique("g"),
        "--type",
        EVENT,
        "--until-end",
        "--format",
        "jsonl",
        "--dlq",
        &format!("{name}.dlq"),
        "--handler-fail",
        "key=2",
        "--attempts",
        "3",
    ]);
    let outcomes: Vec<String> = lines(&out)
        .iter()
        .map(|r| format!("{}:{}", r["key"].as_str().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(outcomes, ["1:handled", "2:dead_lettered", "3:handled"]);
    let reason = lines(&out)[1]["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("failed 3 times"), "{reason}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lag_and_resets() {
    let name = topic(1).await;
    ok(&["produce", "customer-created", "--count", "40", "--id", "1", "--topic", &name]);
    let group = unique("lag");
    ok(&["consume", "--topic", &name, "--group", &group, "--type", EVENT, "--max", "10", "--format", "jsonl"]);
    let describe =
        || -> Value { serde_json::from_slice(&ok(&["group", "describe", &group, "--format", "json"]).stdout).unwrap() };
    let d = describe();
    assert_eq!(d["total_lag"], 30);
    assert_eq!(d["partitions"][0]["committed"], 10);
    consume_all(&name, &group, EVENT);
    assert_eq!(describe()["total_lag"], 0);

    let plan: Value = serde_json::from_slice(
        &ok(&["group", "reset", &group, "--to", "start", "--topic", &name, "--format", "json"]).stdout,
    )
    .unwrap();
    assert_eq!(plan[0]["from"], 40);
    assert_eq!(plan[0]["to"], 0);
    assert_eq!(describe()["total_lag"], 0, "a dry run changes nothing");
    ok(&["group", "reset", &group, "--to", "start", "--topic", &name, "--execute"]);
    assert_eq!(describe()["total_lag"], 40);
    ok(&["group", "reset", &group, "--to", "25", "--topic", &name, "--execute"]);
    assert_eq!(describe()["partitions"][0]["committed"], 25);
}

#[test]
fn producing_to_an_unreachable_broker_fails_clearly() {
    let port = free_port();
    let out = chinook()
        .args(["produce", "customer-created", "--brokers", &format!("127.0.0.1:{port}")])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")) && err.contains("chinook broker start"), "{err}");
}

/// A `chinook consume --follow` member of `group` reading `topic` from the start,
/// printing JSON lines on a pipe.
fn follow(topic: &str, group: &str) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("chinook"))
        .args(["consume", "--topic", topic, "--group", group, "--type", EVENT, "--offset", "start", "--follow"])
        .args(["--format", "jsonl", "--no-dlq", "--brokers", &broker().bootstrap])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Offsets move only while nobody consumes: a reset of a group with a live member is refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_reset_is_refused_while_the_group_has_members() {
    let name = topic(1).await;
    ok(&["produce", "customer-created", "--count", "5", "--topic", &name]);
    let group = unique("busy");
    let mut member = follow(&name, &group);
    // Wait for the member to have processed all five (then its commits make the group visible).
    let stdout = member.stdout.take().unwrap();
    let read = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout).lines().take(5).count()
    });
    assert_eq!(read.join().unwrap(), 5);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let refused = loop {
        let out = run(&["group", "reset", &group, "--to", "start", "--topic", &name, "--execute"]);
        let err = String::from_utf8_lossy(&out.stderr).split_whitespace().collect::<Vec<_>>().join(" ");
        if !out.status.success() && err.contains("active member") {
            break err;
        }
        assert!(std::time::Instant::now() < deadline, "the reset was never refused: {err}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(refused.contains("stop the group's consumers first"), "{refused}");
    let _ = member.kill();
    let _ = member.wait();
}

/// Ctrl-C: the record in hand is finished, its offset committed, and the
/// consumer leaves; a restart in the same group goes on from there. The
/// interrupt comes mid-stream (a slow handler, three records in), so what is
/// committed is the final commit's work, not auto-commit's.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_commits_what_was_processed_and_leaves() {
    let name = topic(1).await;
    ok(&["produce", "customer-created", "--count", "20", "--topic", &name]);
    let group = unique("interrupted");
    let mut member = std::process::Command::new(assert_cmd::cargo::cargo_bin("chinook"))
        .args(["consume", "--topic", &name, "--group", &group, "--type", EVENT, "--follow", "--format", "human"])
        .args(["--handler-delay", "300ms", "--no-dlq", "--brokers", &broker().bootstrap])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = member.stderr.take().unwrap();
    let summary = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    // Human lines are flushed one by one: read three, then interrupt.
    let stdout = member.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut printed = 0;
        for _ in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            printed += 1;
            let _ = tx.send(printed);
        }
        printed
    });
    while rx.recv_timeout(Duration::from_secs(120)).expect("the consumer prints records") < 3 {}
    // SAFETY: signalling the child process this test started.
    unsafe { libc::kill(member.id() as libc::pid_t, libc::SIGINT) };
    let status = wait_or_kill(&mut member, Duration::from_secs(120));
    assert!(status.success(), "Ctrl-C is a clean exit: {status}");
    let printed = reader.join().unwrap();
    assert!((3..20).contains(&printed), "interrupted mid-stream: {printed} of 20 processed");
    let summary = summary.join().unwrap();
    assert!(
        summary.contains(&format!("consumed {printed} · handled {printed} ·")),
        "the summary of what was done is printed: {summary}"
    );
    let d: Value = serde_json::from_slice(&ok(&["group", "describe", &group, "--format", "json"]).stdout).unwrap();
    assert_eq!(d["partitions"][0]["committed"], printed, "every processed record committed, nothing more: {d}");
    assert_eq!(d["members"].as_array().map(Vec::len), Some(0), "it left the group: {d}");
    // A restart goes on where the interrupted one stopped.
    let rest = consume_all(&name, &group, EVENT);
    assert_eq!(rest.first().map(|r| r["offset"].as_i64().unwrap()), Some(printed as i64));
    assert_eq!(rest.len(), 20 - printed);
}
