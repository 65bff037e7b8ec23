"""Compatibility checks for kafka-python (pure Python, no librdkafka) against a Kafka broker.

What it checks, in this order, each on its own (one failing or timing out does not stop the
others), printing one JSON line per check on stdout:
  metadata        brokers (KafkaAdminClient.describe_cluster) and topics (list_topics)
  produce         100 keyed records (enable_idempotence=False) into a new 3-partition topic
                  <prefix>-plain, read back by assigning every partition from the beginning (no
                  group) up to the end offsets; counts must match
  idempotent      the same with enable_idempotence=True, into <prefix>-idempotent (kafka-python
                  has had the idempotent producer since 2.1 and turns it on by default in 3.x)
  invalid_record  the value bytes 0a ff ff alone into the schema-bound topic (customer_events):
                  ok when the send fails with InvalidRecordError (87)
  group           three consumers join one group on <prefix>-group (3 partitions); once each
                  holds a partition, 60 keyed records are produced; the members read them
                  together and commit; ok when all 60 distinct keys were seen and the committed
                  offsets (KafkaConsumer.committed) equal the end offsets
  transactions    a transactional producer (transactional_id, kafka-python >= 2.1) commits 10
                  records and aborts 10 others; a read_committed reader must see exactly the 10
Each line: {"client", "version", "check", "ok", "detail", "secs"} (+ "na": true when the client
cannot do the check).

Run:   CHINOOK_BROKERS=127.0.0.1:9092 CLIENT_PREFIX=kp1 target/clients-venv/bin/python tests/clients/kafka_python.py
Env:   CHINOOK_BROKERS (bootstrap, default localhost:9092), CLIENT_PREFIX (prefix of the topics and
       groups created here; a fresh one per run), CLIENT_SCHEMA_TOPIC (default customer_events),
       CLIENT_CHECK_TIMEOUT (seconds per check, default 60).
Needs: kafka-python (.ci/clients.sh installs it in target/clients-venv). Exit code 0 when every
       check ran (whatever its result), 2 on a usage error.
"""

import os
import sys
import threading
import time

import kafka
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka import errors as Errors
from harness import CHECK_TIMEOUT, SCHEMA_TOPIC, Failed, NotApplicable, left, main

CLIENT = "kafka-python"
VERSION = kafka.__version__
BROKERS = (os.environ.get("CHINOOK_BROKERS") or "localhost:9092").split(",")
PREFIX = os.environ.get("CLIENT_PREFIX") or f"kafka-python-{os.getpid()}-{int(time.time())}"


def ms(seconds):
    return int(seconds * 1000)


def common(**extra):
    conf = {"bootstrap_servers": BROKERS, "client_id": f"{PREFIX}-compat", "request_timeout_ms": 15000}
    conf.update(extra)
    return conf


def create_topic(name, partitions, deadline):
    """Create the topic with the admin API (an existing one is fine), then wait until the
    metadata shows every partition."""
    admin = KafkaAdminClient(**common())
    try:
        try:
            admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1}},
                                timeout_ms=ms(left(deadline, 15)))
        except Errors.TopicAlreadyExistsError:
            pass
        while True:
            described = admin.describe_topics([name])
            if described and described[0].get("error_code", 0) == 0 and len(described[0].get("partitions", [])) == partitions:
                return
            if time.monotonic() > deadline:
                raise Failed(f"topic {name} never showed {partitions} partitions in metadata")
            time.sleep(0.2)
    finally:
        admin.close()


def produce_keyed(topic, count, deadline, key_prefix, **producer_conf):
    """Produce count records keyed key_prefix<i>; every send must be acknowledged."""
    producer = KafkaProducer(**common(linger_ms=5, max_block_ms=ms(left(deadline, 20)), **producer_conf))
    try:
        futures = [producer.send(topic, key=f"{key_prefix}{i}".encode(), value=f"value-{i}".encode())
                   for i in range(count)]
        producer.flush(timeout=left(deadline, 30))
        errors = []
        for f in futures:
            try:
                f.get(timeout=left(deadline, 5))
            except Exception as e:
                errors.append(e)
        if errors:
            raise Failed(f"{len(errors)} of {count} not acknowledged, first error: {type(errors[0]).__name__}: {errors[0]}")
        return count
    finally:
        producer.close(timeout=5)


def read_all(topic, partitions, deadline, isolation="read_uncommitted"):
    """Read every partition from the beginning (assign, no group) up to the end offsets
    (the last stable offsets for read_committed). Returns the keys read."""
    consumer = KafkaConsumer(**common(group_id=None, enable_auto_commit=False, isolation_level=isolation))
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps, timeout_ms=ms(left(deadline, 15)))
        keys = []
        while any(consumer.position(tp, timeout_ms=ms(left(deadline, 10))) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise Failed(f"read back {len(keys)} records when the time ran out (end offsets {[ends[tp] for tp in tps]})")
            for batch in consumer.poll(timeout_ms=300).values():
                keys.extend(r.key.decode() if r.key is not None else None for r in batch)
        return keys
    finally:
        consumer.close()


def produce_and_read_back(topic, deadline, **producer_conf):
    create_topic(topic, 3, deadline)
    produce_keyed(topic, 100, deadline, "k", **producer_conf)
    keys = read_all(topic, 3, deadline)
    if len(keys) != 100 or len(set(keys)) != 100:
        raise Failed(f"produced 100, read back {len(keys)} records ({len(set(keys))} distinct keys)")
    return f"100 acknowledged, 100 read back from 3 partitions ({len(set(keys))} distinct keys)"


# --- the checks ------------------------------------------------------------------------


def check_metadata(deadline):
    admin = KafkaAdminClient(**common())
    try:
        cluster = admin.describe_cluster()
        topics = admin.list_topics()
    finally:
        admin.close()
    brokers = cluster.get("brokers") or []
    if not brokers:
        raise Failed(f"metadata lists no broker: {cluster}")
    listed = ", ".join(f"{b.get('node_id', b.get('broker_id'))}@{b.get('host')}:{b.get('port')}" for b in brokers)
    return f"brokers [{listed}], {len(topics)} topics"


def check_produce(deadline):
    return produce_and_read_back(f"{PREFIX}-plain", deadline, enable_idempotence=False)


def check_idempotent(deadline):
    return produce_and_read_back(f"{PREFIX}-idempotent", deadline, enable_idempotence=True)


def check_invalid_record(deadline):
    producer = KafkaProducer(**common(linger_ms=0, enable_idempotence=False, retries=0,
                                      max_block_ms=ms(left(deadline, 20))))
    try:
        future = producer.send(SCHEMA_TOPIC, value=b"\x0a\xff\xff")
        producer.flush(timeout=left(deadline, 20))
        try:
            meta = future.get(timeout=left(deadline, 5))
        except Errors.InvalidRecordError as e:
            return f"rejected: {type(e).__name__} ({e.errno} {e.message})"
        except Errors.KafkaError as e:
            raise Failed(f"rejected with {type(e).__name__} ({getattr(e, 'errno', '?')}): {e}, expected INVALID_RECORD (87)")
        raise Failed(f"the malformed value was accepted by {SCHEMA_TOPIC} at partition {meta.partition} offset {meta.offset}")
    finally:
        producer.close(timeout=5)


def check_group(deadline):
    """Three members join first; once each holds a partition the 60 records are produced.

    (Producing first lets the first member to join read everything before the others arrive,
    which would not show that the group shares the work.)"""
    topic, group = f"{PREFIX}-group", f"{PREFIX}-group"
    create_topic(topic, 3, deadline)
    seen, counts, assigned, errors = set(), [0, 0, 0], [0, 0, 0], []
    lock, stop = threading.Lock(), threading.Event()

    def member(index):
        consumer = KafkaConsumer(**common(group_id=group, client_id=f"{PREFIX}-member-{index}",
                                          auto_offset_reset="earliest", enable_auto_commit=False,
                                          session_timeout_ms=10000, heartbeat_interval_ms=1000))
        try:
            consumer.subscribe([topic])
            while not stop.is_set() and time.monotonic() < deadline:
                batches = consumer.poll(timeout_ms=300)
                assigned[index] = len(consumer.assignment())
                records = [r for batch in batches.values() for r in batch]
                if records:
                    consumer.commit()  # synchronous: the positions after what was consumed
                    with lock:
                        counts[index] += len(records)
                        seen.update(r.key.decode() for r in records)
        except Exception as e:
            errors.append(f"member {index}: {type(e).__name__}: {e}")
        finally:
            consumer.close(autocommit=False)

    members = [threading.Thread(target=member, args=(i,), daemon=True) for i in range(3)]
    for m in members:
        m.start()
    # Wait (polling, bounded) until every member holds a partition, then produce.
    settle_until = min(deadline - 20, time.monotonic() + CHECK_TIMEOUT / 2)
    while time.monotonic() < settle_until and not all(assigned) and all(m.is_alive() for m in members):
        time.sleep(0.1)
    settled = "3 members held a partition each" if all(assigned) else f"partitions per member never reached 1/1/1 (last {assigned})"
    try:
        produce_keyed(topic, 60, deadline, "g", enable_idempotence=False)
    except Failed:
        stop.set()
        raise
    while time.monotonic() < deadline and len(seen) < 60 and all(m.is_alive() for m in members):
        time.sleep(0.1)
    stop.set()
    for m in members:
        m.join(left(deadline, 15))
    split = "/".join(map(str, counts))
    if len(seen) < 60:
        raise Failed(f"{settled}; the group saw {len(seen)}/60 distinct keys (per member {split}); errors: {errors[:2]}")

    # Committed offsets, asked with the client's own API, must reach the end of each partition.
    # The members committed synchronously before leaving: allow 10 s for them to show, not more.
    commit_deadline = min(deadline, time.monotonic() + 10)
    checker = KafkaConsumer(**common(group_id=group, enable_auto_commit=False))
    try:
        tps = [TopicPartition(topic, p) for p in range(3)]
        end_map = checker.end_offsets(tps, timeout_ms=ms(left(deadline, 10)))
        ends = [end_map[tp] for tp in tps]
        while True:
            committed = [checker.committed(tp, timeout_ms=ms(left(deadline, 10))) for tp in tps]
            if committed == ends or time.monotonic() > commit_deadline:
                break
            time.sleep(0.2)
    finally:
        checker.close(autocommit=False)
    if committed != ends:
        raise Failed(f"{settled}; 60/60 seen (per member {split}) but committed offsets {committed} != end offsets {ends}")
    note = f"; errors seen: {errors[:2]}" if errors else ""
    return f"{settled}; 60/60 distinct keys seen (records per member {split}); committed offsets {committed} = end{note}"


def check_transactions(deadline):
    if not hasattr(KafkaProducer, "init_transactions"):
        raise NotApplicable(f"kafka-python {VERSION} has no transactional producer")
    topic = f"{PREFIX}-tx"
    create_topic(topic, 3, deadline)
    producer = KafkaProducer(**common(transactional_id=f"{PREFIX}-tx", linger_ms=5,
                                      max_block_ms=ms(left(deadline, 20))))
    problems = []

    def step(what, call):
        try:
            call()
            return True
        except Exception as e:
            problems.append(f"{what}: {type(e).__name__}: {e}")
        return False

    try:
        if step("init_transactions", producer.init_transactions):
            if step("begin (commit txn)", producer.begin_transaction):
                for i in range(10):
                    producer.send(topic, key=f"commit-{i}".encode(), value=b"committed")
                if not step("commit_transaction", producer.commit_transaction):
                    # What an application does after a failed commit: abort, then go on.
                    step("abort after the failed commit", producer.abort_transaction)
            if step("begin (abort txn)", producer.begin_transaction):
                for i in range(10):
                    producer.send(topic, key=f"abort-{i}".encode(), value=b"aborted")
                step("flush (abort txn)", lambda: producer.flush(timeout=left(deadline, 10)))
                step("abort_transaction", producer.abort_transaction)
    finally:
        producer.close(timeout=5)

    keys = read_all(topic, 3, deadline, isolation="read_committed")
    committed = sorted(k for k in keys if k.startswith("commit-"))
    aborted = sorted(k for k in keys if k.startswith("abort-"))
    seen = f"read_committed saw {len(committed)} committed + {len(aborted)} aborted records"
    if problems:
        raise Failed(f"{seen}; " + "; ".join(problems))
    if len(committed) != 10 or aborted or len(keys) != 10:
        raise Failed(f"{seen}, expected exactly the 10 committed")
    return f"10 committed, 10 aborted; {seen}"


CHECKS = [
    ("metadata", check_metadata),
    ("produce", check_produce),
    ("idempotent", check_idempotent),
    ("invalid_record", check_invalid_record),
    ("group", check_group),
    ("transactions", check_transactions),
]


if __name__ == "__main__":
    sys.exit(main(CLIENT, VERSION, CHECKS))
