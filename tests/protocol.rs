//! Protocol fidelity of the embedded broker: each tansu 0.6.0 answer the
//! adapter corrects is first shown wrong on tansu's own path (the raw broker,
//! no adapter, no storage corrections), then right through chinook's front
//! door. Transactions are checked end to end with librdkafka (rdkafka crate)
//! and with a transactional copy on confluent-kafka killed mid-transaction.

mod common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{broker, create_topic, raw_broker, root, unique, wait_or_kill};
use rdkafka::{
    ClientConfig, Message, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    error::KafkaError,
    producer::{BaseProducer, BaseRecord, Producer},
};
use tansu_sans_io::{
    Body, Frame, Header,
    api_versions_request::ApiVersionsRequest,
    end_txn_request::EndTxnRequest,
    init_producer_id_request::InitProducerIdRequest,
    join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol},
    sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment},
};

const API_VERSIONS: i16 = 18;
const OFFSET_COMMIT: i16 = 8;
const JOIN_GROUP: i16 = 11;
const SYNC_GROUP: i16 = 14;
const LEAVE_GROUP: i16 = 13;
const INIT_PRODUCER_ID: i16 = 22;
const END_TXN: i16 = 26;

/// Sends one request on a fresh connection; the answer's whole frame, or
/// None when the broker closed the connection instead of answering.
fn call(addr: &str, key: i16, version: i16, body: Body) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let header =
        Header::Request { api_key: key, api_version: version, correlation_id: 42, client_id: Some("probe".into()) };
    stream.write_all(&Frame::request(header, body).unwrap()).unwrap();
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let mut frame = size.to_vec();
    frame.resize(4 + i32::from_be_bytes(size) as usize, 0);
    stream.read_exact(&mut frame[4..]).ok()?;
    Some(frame)
}

fn answer(frame: &[u8], key: i16, version: i16) -> Body {
    Frame::response_from_bytes(frame, key, version).unwrap().body
}

/// What librdkafka before 2.2 (kcat 1.7.1 in Debian 12) does with the tag
/// section at the end of an ApiVersions v3 answer: it skips each tag's value
/// one byte short (`rd_kafka_buf_skip_tags`). Err when it would read past
/// the end, as the client then drops the connection.
fn skip_tags_like_librdkafka_2_0(tags: &[u8]) -> Result<(), String> {
    fn uvarint(b: &[u8], at: &mut usize) -> Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let byte = *b.get(*at).ok_or("underflow reading a varint")?;
            *at += 1;
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }
    let mut at = 0;
    let count = uvarint(tags, &mut at)?;
    for _ in 0..count {
        let _tag = uvarint(tags, &mut at)?;
        let len = uvarint(tags, &mut at)?;
        let skip = len.saturating_sub(1); // the bug: one byte short
        if skip > (tags.len() - at) as u64 {
            return Err(format!("underflow: expected {skip} bytes > {} remaining", tags.len() - at));
        }
        at += skip as usize;
    }
    Ok(())
}

/// The tag section of an ApiVersions v3 answer frame: what follows the
/// correlation id, error code, the api keys (7 bytes each) and the throttle time.
fn api_versions_tags(frame: &[u8]) -> &[u8] {
    let mut at = 4 + 4 + 2; // size, correlation id, error code
    let (mut n, mut shift) = (0usize, 0);
    loop {
        let b = frame[at];
        at += 1;
        n |= usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            break;
        }
    }
    at += (n - 1) * 7 + 4;
    &frame[at..]
}

fn api_versions_v3(addr: &str) -> Vec<u8> {
    let body = ApiVersionsRequest::default()
        .client_software_name(Some("librdkafka".into()))
        .client_software_version(Some("2.0.2".into()));
    call(addr, API_VERSIONS, 3, Body::ApiVersionsRequest(body)).expect("an ApiVersions answer")
}

#[test]
fn api_versions_v3_is_readable_by_librdkafka_before_2_2() {
    let raw = api_versions_v3(&raw_broker().bootstrap);
    let err = skip_tags_like_librdkafka_2_0(api_versions_tags(&raw)).expect_err("tansu's own answer trips it");
    assert!(err.contains("underflow"), "{err}");

    let door = api_versions_v3(&broker().bootstrap);
    assert_eq!(api_versions_tags(&door), [0], "an empty tag section, as Kafka sends");
    skip_tags_like_librdkafka_2_0(api_versions_tags(&door)).unwrap();
}

#[test]
fn a_request_that_is_not_kafka_is_turned_away() {
    // An HTTP request's first four bytes read as a 1.2 GB frame size.
    let mut stream = TcpStream::connect(&broker().bootstrap).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(stream.read(&mut buf).unwrap(), 0, "the door closes the connection");
    // and keeps serving Kafka clients
    assert!(lists_end_txn(&api_versions_v3(&broker().bootstrap)));
}

fn lists_end_txn(frame: &[u8]) -> bool {
    let Body::ApiVersionsResponse(versions) = answer(frame, API_VERSIONS, 3) else { panic!("not ApiVersions") };
    versions.api_keys.unwrap_or_default().iter().any(|k| k.api_key == END_TXN)
}

#[test]
fn end_txn_is_listed_and_answered() {
    let end = || {
        Body::EndTxnRequest(
            EndTxnRequest::default()
                .transactional_id(unique("no-such-txn"))
                .producer_id(1)
                .producer_epoch(0)
                .committed(true),
        )
    };
    let raw = raw_broker();
    assert!(!lists_end_txn(&api_versions_v3(&raw.bootstrap)), "tansu does not list EndTxn");
    assert_eq!(call(&raw.bootstrap, END_TXN, 1, end()), None, "tansu closes the connection on EndTxn");

    let door = broker();
    assert!(lists_end_txn(&api_versions_v3(&door.bootstrap)));
    let frame = call(&door.bootstrap, END_TXN, 1, end()).expect("an EndTxn answer");
    let Body::EndTxnResponse(ended) = answer(&frame, END_TXN, 1) else { panic!("not EndTxn") };
    assert_eq!(ended.error_code, i16::from(tansu_sans_io::ErrorCode::TransactionalIdNotFound));
}

fn join_v1(addr: &str, group: &str) -> (i16, String, i32) {
    let body = JoinGroupRequest::default()
        .group_id(group.into())
        .session_timeout_ms(10_000)
        .rebalance_timeout_ms(Some(60_000))
        .member_id(String::new())
        .protocol_type("consumer".into())
        .protocols(Some(vec![JoinGroupRequestProtocol::default().name("range".into()).metadata(vec![0, 1].into())]));
    let frame = call(addr, JOIN_GROUP, 1, Body::JoinGroupRequest(body)).expect("a JoinGroup answer");
    let Body::JoinGroupResponse(joined) = answer(&frame, JOIN_GROUP, 1) else { panic!("not JoinGroup") };
    (joined.error_code, joined.member_id, joined.generation_id)
}

#[test]
fn join_group_v1_without_member_id_joins_at_once() {
    const MEMBER_ID_REQUIRED: i16 = 79;
    let (code, member, _) = join_v1(&raw_broker().bootstrap, &unique("old-client"));
    assert_eq!(code, MEMBER_ID_REQUIRED, "tansu asks a v1 client for a member id (KIP-394 is v4+)");
    assert!(!member.is_empty());

    let (code, member, generation) = join_v1(&broker().bootstrap, &unique("old-client"));
    assert_eq!(code, 0, "the door re-joins with the id tansu gave out");
    assert!(!member.is_empty());
    assert!(generation >= 0);
}

/// JoinGroup v5 as `member` (empty: a new member) with a 4 s session.
fn join_v5(addr: &str, group: &str, member: &str) -> (i16, String, i32, String) {
    let body = JoinGroupRequest::default()
        .group_id(group.into())
        .session_timeout_ms(4_000)
        .rebalance_timeout_ms(Some(60_000))
        .member_id(member.into())
        .group_instance_id(None)
        .protocol_type("consumer".into())
        .protocols(Some(vec![JoinGroupRequestProtocol::default().name("range".into()).metadata(vec![0, 1].into())]));
    let frame = call(addr, JOIN_GROUP, 5, Body::JoinGroupRequest(body)).expect("a JoinGroup answer");
    let Body::JoinGroupResponse(joined) = answer(&frame, JOIN_GROUP, 5) else { panic!("not JoinGroup") };
    (joined.error_code, joined.member_id, joined.generation_id, joined.leader)
}

/// SyncGroup v3; a leader passes the assignments, a follower none.
fn sync_v3(addr: &str, group: &str, generation: i32, member: &str, assign: bool) -> (i16, usize) {
    let assignments = if assign {
        vec![SyncGroupRequestAssignment::default().member_id(member.into()).assignment(vec![0, 0, 0, 0].into())]
    } else {
        Vec::new()
    };
    let body = SyncGroupRequest::default()
        .group_id(group.into())
        .generation_id(generation)
        .member_id(member.into())
        .group_instance_id(None)
        .assignments(Some(assignments));
    let frame = call(addr, SYNC_GROUP, 3, Body::SyncGroupRequest(body)).expect("a SyncGroup answer");
    let Body::SyncGroupResponse(synced) = answer(&frame, SYNC_GROUP, 3) else { panic!("not SyncGroup") };
    (synced.error_code, synced.assignment.len())
}

/// A leader killed 2 s before a new member joins (4 s sessions): the join
/// still names it (it was alive then); by the follower's sync, after tansu's
/// 3 s follower pause, it has expired. Returns the sync answer.
fn follower_after_dead_leader(addr: &str) -> (i16, usize) {
    let group = unique("dead-leader");
    let (code, a, _, _) = join_v5(addr, &group, "");
    assert_eq!(code, 79);
    let (code, _, generation, leader) = join_v5(addr, &group, &a);
    assert_eq!((code, leader.as_str()), (0, a.as_str()), "the first member leads");
    assert_eq!(sync_v3(addr, &group, generation, &a, true).0, 0);
    // `a` dies; b arrives 2 s later (the scenario, not a synchronisation).
    std::thread::sleep(Duration::from_secs(2));
    let (code, b, _, _) = join_v5(addr, &group, "");
    assert_eq!(code, 79);
    let (code, _, generation, leader) = join_v5(addr, &group, &b);
    assert_eq!((code, leader.as_str()), (0, a.as_str()), "b joins while a still counts as alive");
    sync_v3(addr, &group, generation, &b, false)
}

#[test]
fn a_follower_is_not_stranded_by_a_leader_that_died() {
    const REBALANCE_IN_PROGRESS: i16 = 27;
    let (code, assignment) = follower_after_dead_leader(&raw_broker().bootstrap);
    assert_eq!((code, assignment), (0, 0), "tansu: success with no assignment, and the group stays so");
    let (code, _) = follower_after_dead_leader(&broker().bootstrap);
    assert_eq!(code, REBALANCE_IN_PROGRESS, "the door: the follower rejoins and is elected");
}

/// LeaveGroup v3 for `member`.
fn leave_v3(addr: &str, group: &str, member: &str) -> i16 {
    use tansu_sans_io::leave_group_request::{LeaveGroupRequest, MemberIdentity};
    let body = LeaveGroupRequest::default()
        .group_id(group.into())
        .members(Some(vec![MemberIdentity::default().member_id(member.into()).group_instance_id(None)]));
    let frame = call(addr, LEAVE_GROUP, 3, Body::LeaveGroupRequest(body)).expect("a LeaveGroup answer");
    let Body::LeaveGroupResponse(left) = answer(&frame, LEAVE_GROUP, 3) else { panic!("not LeaveGroup") };
    left.members.unwrap_or_default().first().map_or(left.error_code, |m| m.error_code)
}

/// The leader leaves while a newcomer's join is rebalancing the group; the
/// newcomer's own join then names this leader. Returns (leader named, the
/// newcomer's id, its sync answer).
fn newcomer_after_leader_left(addr: &str) -> (String, String, i16) {
    let group = unique("leader-left");
    let (_, a, _, _) = join_v5(addr, &group, "");
    let (_, _, generation, _) = join_v5(addr, &group, &a);
    assert_eq!(sync_v3(addr, &group, generation, &a, true).0, 0);
    let (code, b, _, _) = join_v5(addr, &group, "");
    assert_eq!(code, 79, "b is known to the group, which starts a rebalance");
    assert_eq!(leave_v3(addr, &group, &a), 0, "the leader leaves cleanly");
    let (code, _, generation, leader) = join_v5(addr, &group, &b);
    assert_eq!(code, 0);
    let sync = sync_v3(addr, &group, generation, &b, leader == b).0;
    (leader, b, sync)
}

#[test]
fn a_group_whose_leader_left_elects_the_next_member() {
    const REBALANCE_IN_PROGRESS: i16 = 27;
    let (leader, b, sync) = newcomer_after_leader_left(&raw_broker().bootstrap);
    assert_ne!(leader, b, "tansu keeps the member that left as the leader");
    assert_eq!(sync, REBALANCE_IN_PROGRESS, "and the newcomer can never sync");
    let (leader, b, sync) = newcomer_after_leader_left(&broker().bootstrap);
    assert_eq!(leader, b, "chinook's storage drops the departed leader: the newcomer leads");
    assert_eq!(sync, 0);
}

/// OffsetCommit v1 of offset 1 on partition 0 with the "now" timestamp
/// (-1), as sarama 1.22 sends it, for a member that has joined; the
/// partition's error code.
fn commit_v1_now(addr: &str, topic: &str) -> i16 {
    use tansu_sans_io::offset_commit_request::{
        OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    let group = unique("sarama-like");
    let (_, member, _, _) = join_v5(addr, &group, "");
    let (_, _, generation, _) = join_v5(addr, &group, &member);
    assert_eq!(sync_v3(addr, &group, generation, &member, true).0, 0);
    let partition = OffsetCommitRequestPartition::default()
        .partition_index(0)
        .committed_offset(1)
        .commit_timestamp(Some(-1))
        .committed_metadata(Some(String::new()));
    let body = OffsetCommitRequest::default()
        .group_id(group)
        .generation_id_or_member_epoch(Some(generation))
        .member_id(Some(member))
        .topics(Some(vec![OffsetCommitRequestTopic::default().name(topic.into()).partitions(Some(vec![partition]))]));
    let frame = call(addr, OFFSET_COMMIT, 1, Body::OffsetCommitRequest(body)).expect("an OffsetCommit answer");
    let Body::OffsetCommitResponse(committed) = answer(&frame, OFFSET_COMMIT, 1) else { panic!("not OffsetCommit") };
    committed.topics.unwrap_or_default()[0].partitions.as_ref().unwrap()[0].error_code
}

#[tokio::test(flavor = "multi_thread")]
async fn offset_commit_v1_with_the_now_timestamp_is_stored() {
    const UNKNOWN_MEMBER_ID: i16 = 25;
    for (b, expected) in [(raw_broker(), UNKNOWN_MEMBER_ID), (broker(), 0)] {
        let topic = unique("commit-v1");
        create_topic(b, &topic, 1).await;
        let addr = b.bootstrap.clone();
        let code = tokio::task::spawn_blocking(move || commit_v1_now(&addr, &topic)).await.unwrap();
        assert_eq!(code, expected, "{}", if expected == 0 { "through the door" } else { "tansu's own path" });
    }
}

/// InitProducerId (no transactional id) at `version`, with the producer's
/// current id and epoch from v3 on; (error code, producer id).
fn init_producer(addr: &str, version: i16, current: (i64, i16)) -> (i16, i64) {
    let body = InitProducerIdRequest::default()
        .transactional_id(None)
        .transaction_timeout_ms(60_000)
        .producer_id(Some(current.0))
        .producer_epoch(Some(current.1));
    let frame = call(addr, INIT_PRODUCER_ID, version, Body::InitProducerIdRequest(body)).expect("an answer");
    let Body::InitProducerIdResponse(init) = answer(&frame, INIT_PRODUCER_ID, version) else {
        panic!("not InitProducerId")
    };
    (init.error_code, init.producer_id)
}

#[test]
fn init_producer_id_serves_old_clients_and_epoch_bumps() {
    // v1 carries no id/epoch (kafkajs); v4 with a current id and epoch asks for an epoch bump (KIP-360).
    for (version, current) in [(1, (-1, -1)), (4, (7, 0))] {
        let (code, _) = init_producer(&raw_broker().bootstrap, version, current);
        assert_eq!(code, -1, "v{version}: tansu's storage answers UNKNOWN_SERVER_ERROR");
        let (code, id) = init_producer(&broker().bootstrap, version, current);
        assert_eq!(code, 0, "v{version}");
        assert!(id >= 0);
    }
}

fn transactional_producer(bootstrap: &str, id: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", id)
        .set("linger.ms", "0")
        .create()
        .unwrap()
}

fn send_all(producer: &BaseProducer, topic: &str, values: &[String]) {
    for v in values {
        producer.send(BaseRecord::<(), _>::to(topic).payload(v.as_str())).unwrap();
    }
    producer.flush(Duration::from_secs(60)).unwrap();
}

/// Every value of `topic` partition 0 a consumer at `isolation` reads before
/// the end of the partition (the last stable offset for read_committed).
fn read_all(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("reader"))
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()),
            Some(Err(KafkaError::PartitionEOF(_))) => return values,
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    panic!("{topic}: no end of partition within 60 s at {isolation} ({} read)", values.len());
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn transactions_commit_and_abort_as_kafka_does() {
    let raw = raw_broker();
    let topic = unique("txn-raw");
    create_topic(raw, &topic, 1).await;
    let raw_bootstrap = raw.bootstrap.clone();
    let raw_topic = topic.clone();
    let raw_commit = tokio::task::spawn_blocking(move || {
        let p = transactional_producer(&raw_bootstrap, &unique("txn"));
        p.init_transactions(Duration::from_secs(30)).unwrap();
        p.begin_transaction().unwrap();
        send_all(&p, &raw_topic, &values("raw", 3));
        p.commit_transaction(Duration::from_secs(30)).map_err(|e| e.to_string())
    })
    .await
    .unwrap();
    let err = raw_commit.expect_err("tansu cannot end a transaction");
    assert!(err.contains("EndTxn"), "{err}");

    let b = broker();
    let topic = unique("txn");
    create_topic(b, &topic, 1).await;
    let (bootstrap, t) = (b.bootstrap.clone(), topic.clone());
    tokio::task::spawn_blocking(move || {
        let p = transactional_producer(&bootstrap, &unique("txn"));
        p.init_transactions(Duration::from_secs(30)).unwrap();
        for (name, n, commit) in [("kept", 10, true), ("dropped", 10, false), ("kept-too", 3, true)] {
            p.begin_transaction().unwrap();
            send_all(&p, &t, &values(name, n));
            if commit {
                p.commit_transaction(Duration::from_secs(30)).unwrap();
            } else {
                p.abort_transaction(Duration::from_secs(30)).unwrap();
            }
        }
        let committed = read_all(&bootstrap, &t, "read_committed");
        assert_eq!(committed, [values("kept", 10), values("kept-too", 3)].concat(), "read_committed");
        let everything = read_all(&bootstrap, &t, "read_uncommitted");
        assert_eq!(
            everything,
            [values("kept", 10), values("dropped", 10), values("kept-too", 3)].concat(),
            "read_uncommitted sees aborted records, as with Kafka"
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_transaction_holds_read_committed_back_until_it_times_out() {
    let b = broker();
    let topic = unique("txn-timeout");
    create_topic(b, &topic, 1).await;
    let (bootstrap, t) = (b.bootstrap.clone(), topic.clone());
    tokio::task::spawn_blocking(move || {
        let p = transactional_producer(&bootstrap, &unique("txn"));
        p.init_transactions(Duration::from_secs(30)).unwrap();
        p.begin_transaction().unwrap();
        send_all(&p, &t, &values("before", 5));
        p.commit_transaction(Duration::from_secs(30)).unwrap();

        // A producer with a short timeout writes and goes silent mid-transaction.
        let silent: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("transactional.id", unique("silent"))
            .set("transaction.timeout.ms", "2000")
            .create()
            .unwrap();
        silent.init_transactions(Duration::from_secs(30)).unwrap();
        silent.begin_transaction().unwrap();
        send_all(&silent, &t, &values("open", 5));
        p.begin_transaction().unwrap();
        send_all(&p, &t, &values("after", 5));
        p.commit_transaction(Duration::from_secs(30)).unwrap();

        // Until the broker aborts the silent one, read_committed stops before it.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = read_all(&bootstrap, &t, "read_committed");
        assert!(seen.len() == 5 || seen.len() == 10, "stops at the open transaction or sees it aborted: {seen:?}");
        while seen.len() < 10 {
            assert!(Instant::now() < deadline, "the silent transaction was never aborted: {seen:?}");
            std::thread::yield_now();
            seen = read_all(&bootstrap, &t, "read_committed");
        }
        assert_eq!(seen, [values("before", 5), values("after", 5)].concat());
        // Like Kafka, the broker fenced it: it cannot commit what was aborted.
        let late = silent.commit_transaction(Duration::from_secs(30)).map_err(|e| e.to_string());
        assert!(late.is_err(), "a producer whose transaction timed out committed it");
    })
    .await
    .unwrap();
}

/// Runs tests/transactions/copy.py with `env`; the child, stdout piped.
fn copy(env: &[(&str, &str)]) -> std::process::Child {
    let python = root().join("target/student-venv/bin/python");
    assert!(python.exists(), "{} is missing: run `bash .ci/students.sh` first", python.display());
    let mut cmd = Command::new(python);
    cmd.arg(root().join("tests/transactions/copy.py")).stdout(Stdio::piped()).stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transactional_copy_killed_mid_transaction_copies_everything_once() {
    let b = broker();
    let (input, output) = (unique("copy-in"), unique("copy-out"));
    create_topic(b, &input, 3).await;
    create_topic(b, &output, 1).await;
    let producer = common::producer(b);
    let futures: Vec<_> = (0..3000)
        .map(|i| {
            let v = format!("event-{i}");
            let record = rdkafka::producer::FutureRecord::to(&input).key(&v).payload(&v).partition(i % 3);
            producer.send_result(record).map_err(|(e, _)| e).unwrap()
        })
        .collect();
    for f in futures {
        f.await.unwrap().unwrap();
    }
    let group = unique("copy");
    let txn = unique("copy-txn");
    let env = |hang: Option<&'static str>| {
        let mut env = vec![
            ("CHINOOK_BROKERS", b.bootstrap.clone()),
            ("IN_TOPIC", input.clone()),
            ("OUT_TOPIC", output.clone()),
            ("GROUP", group.clone()),
            ("TXN_ID", txn.clone()),
        ];
        if let Some(n) = hang {
            env.push(("HANG_AFTER", n.to_string()));
        }
        env
    };
    let run = |env: Vec<(&'static str, String)>| {
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        copy(&pairs)
    };
    let (first_env, second_env) = (env(Some("5")), env(None));
    let bootstrap = b.bootstrap.clone();
    let out = output.clone();
    tokio::task::spawn_blocking(move || {
        // Five batches committed, the sixth written but not committed: kill -9 there.
        let mut first = run(first_env);
        let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
        let hanging = lines.find_map(|l| l.ok().filter(|l| l.starts_with("hanging mid-transaction")));
        let hanging = hanging.expect("the copy never reached its sixth transaction");
        let numbers: Vec<usize> = hanging.split(' ').filter_map(|w| w.parse().ok()).collect();
        let [done, open] = numbers[..] else { panic!("unexpected: {hanging}") };
        assert!(done > 0 && open > 0, "{hanging}");
        first.kill().unwrap(); // SIGKILL
        first.wait().unwrap();
        let committed = read_all(&bootstrap, &out, "read_committed");
        let everything = read_all(&bootstrap, &out, "read_uncommitted");
        assert_eq!(committed.len(), done, "read_committed stops before the open transaction");
        assert_eq!(everything.len(), done + open, "the open transaction's records are in the log");

        // The restart fences the dead producer, aborts its transaction and finishes the copy.
        let mut second = run(second_env);
        let status = wait_or_kill(&mut second, Duration::from_secs(180));
        assert!(status.success(), "the restarted copy failed: {status}");
        let committed = read_all(&bootstrap, &out, "read_committed");
        let mut sorted = committed.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(committed.len(), 3000, "every input once, read committed");
        assert_eq!(sorted.len(), 3000, "no input twice");
        let everything = read_all(&bootstrap, &out, "read_uncommitted");
        assert_eq!(everything.len(), 3000 + open, "the aborted batch stays in the log, as in Kafka");
    })
    .await
    .unwrap();
}
