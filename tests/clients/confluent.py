"""Compatibility checks for confluent-kafka-python (librdkafka) against a Kafka broker.

What it checks, in this order, each on its own (one failing or timing out does not stop the
others), printing one JSON line per check on stdout:
  metadata        the broker list and topic list (AdminClient.list_topics)
  produce         100 keyed records into a new 3-partition topic <prefix>-plain, read back by
                  assigning every partition from the beginning (no group); counts must match
  idempotent      the same with enable.idempotence=true, into <prefix>-idempotent
  invalid_record  the value bytes 0a ff ff alone into the schema-bound topic (customer_events):
                  ok when the delivery report carries INVALID_RECORD (87)
  group           three consumers join one group on <prefix>-group (3 partitions); once each
                  holds a partition, 60 keyed records are produced; the members read them
                  together and commit; ok when all 60 distinct keys were seen and the committed
                  offsets (Consumer.committed) equal the end offsets
  transactions    a transactional producer commits 10 records and aborts 10 others; a
                  read_committed reader must see exactly the 10 committed
Each line: {"client", "version", "check", "ok", "detail", "secs"} (+ "na": true when the client
cannot do the check).

Run:   CHINOOK_BROKERS=127.0.0.1:9092 CLIENT_PREFIX=cf1 target/clients-venv/bin/python tests/clients/confluent.py
Env:   CHINOOK_BROKERS (bootstrap, default localhost:9092), CLIENT_PREFIX (prefix of the topics and
       groups created here; a fresh one per run), CLIENT_SCHEMA_TOPIC (default customer_events),
       CLIENT_CHECK_TIMEOUT (seconds per check, default 60).
Needs: confluent-kafka (.ci/clients.sh installs it in target/clients-venv). Exit code 0 when every
       check ran (whatever its result), 2 on a usage error.
"""

import concurrent.futures
import os
import sys
import threading
import time

import confluent_kafka
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from harness import CHECK_TIMEOUT, SCHEMA_TOPIC, Failed, left, main

CLIENT = "confluent-kafka"
VERSION = f"{confluent_kafka.__version__} (librdkafka {confluent_kafka.libversion()[0]})"
BROKERS = os.environ.get("CHINOOK_BROKERS") or "localhost:9092"
PREFIX = os.environ.get("CLIENT_PREFIX") or f"confluent-{os.getpid()}-{int(time.time())}"


def base_conf(**extra):
    conf = {"bootstrap.servers": BROKERS, "client.id": f"{PREFIX}-compat"}
    conf.update(extra)
    return conf


def create_topic(name, partitions, deadline):
    """Create the topic with the admin API (an existing one is fine) and wait until the
    metadata shows every partition."""
    admin = AdminClient(base_conf())
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                                  request_timeout=left(deadline, 15))
    try:
        futures[name].result(timeout=left(deadline, 20))
    except concurrent.futures.TimeoutError:
        raise Failed(f"create topic {name}: no answer from the admin API in time")
    except KafkaException as e:
        if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise Failed(f"create topic {name}: {e.args[0].str()}")
    while True:
        md = admin.list_topics(topic=name, timeout=left(deadline, 10))
        t = md.topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        if time.monotonic() > deadline:
            raise Failed(f"topic {name} never showed {partitions} partitions in metadata")
        time.sleep(0.2)


def produce_keyed(topic, count, deadline, key_prefix, **producer_conf):
    """Produce count records keyed key_prefix<i>; return the number acknowledged, raise on errors."""
    producer = Producer(base_conf(**{"linger.ms": 5, "message.timeout.ms": int(left(deadline, 30) * 1000)},
                                  **producer_conf))
    acked, errors = [0], []

    def on_delivery(err, _msg):
        if err is None:
            acked[0] += 1
        else:
            errors.append(err)

    for i in range(count):
        producer.produce(topic, key=f"{key_prefix}{i}".encode(), value=f"value-{i}".encode(), on_delivery=on_delivery)
        producer.poll(0)
    remaining = producer.flush(left(deadline, 30))
    if errors:
        raise Failed(f"{len(errors)} of {count} not delivered, first error: {errors[0].str()} (code {errors[0].code()})")
    if remaining or acked[0] != count:
        raise Failed(f"only {acked[0]} of {count} acknowledged ({remaining} still queued at the deadline)")
    return acked[0]


def read_all(topic, partitions, deadline, isolation="read_uncommitted"):
    """Read every partition from the beginning (assign, no group) until each reports end of
    partition. Returns (records, keys in order)."""
    consumer = Consumer(base_conf(**{
        "group.id": f"{PREFIX}-reader-unused",  # required by the client; never joined (assign) nor committed
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": isolation,
    }))
    try:
        consumer.assign([TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in range(partitions)])
        at_end, keys = set(), []
        while len(at_end) < partitions:
            if time.monotonic() > deadline:
                raise Failed(f"read back {len(keys)} records, partitions at end: {sorted(at_end)} when the time ran out")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition())
                    continue
                raise Failed(f"consume error: {msg.error().str()}")
            at_end.discard(msg.partition())
            keys.append(msg.key().decode() if msg.key() is not None else None)
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
    md = AdminClient(base_conf()).list_topics(timeout=left(deadline, 20))
    if not md.brokers:
        raise Failed("metadata lists no broker")
    brokers = ", ".join(f"{b.id}@{b.host}:{b.port}" for b in md.brokers.values())
    return f"brokers [{brokers}], {len(md.topics)} topics"


def check_produce(deadline):
    return produce_and_read_back(f"{PREFIX}-plain", deadline, **{"enable.idempotence": False})


def check_idempotent(deadline):
    return produce_and_read_back(f"{PREFIX}-idempotent", deadline, **{"enable.idempotence": True})


def check_invalid_record(deadline):
    producer = Producer(base_conf(**{"linger.ms": 0, "message.timeout.ms": int(left(deadline, 20) * 1000)}))
    reports = []
    producer.produce(SCHEMA_TOPIC, value=b"\x0a\xff\xff", on_delivery=lambda err, msg: reports.append(err))
    producer.flush(left(deadline, 25))
    if not reports:
        raise Failed("no delivery report before the deadline")
    err = reports[0]
    if err is None:
        raise Failed(f"the malformed value was accepted by {SCHEMA_TOPIC} (expected INVALID_RECORD)")
    if err.code() == KafkaError.INVALID_RECORD:
        return f"rejected: {err.name()} (87): {err.str()}"
    raise Failed(f"rejected with {err.name()} ({err.code()}): {err.str()}, expected INVALID_RECORD (87)")


def check_group(deadline):
    """Three members join first; once each holds a partition the 60 records are produced.

    (Producing first lets the first member to join read everything before the others arrive,
    which would not show that the group shares the work.)"""
    topic, group = f"{PREFIX}-group", f"{PREFIX}-group"
    create_topic(topic, 3, deadline)
    seen, counts, assigned, errors = set(), [0, 0, 0], [0, 0, 0], []
    lock, stop = threading.Lock(), threading.Event()

    def member(index):
        def on_assign(_consumer, partitions):
            assigned[index] = len(partitions)

        def on_revoke(_consumer, _partitions):
            assigned[index] = 0

        consumer = Consumer(base_conf(**{
            "group.id": group,
            "client.id": f"{PREFIX}-member-{index}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 10000,
        }))
        try:
            consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
            while not stop.is_set() and time.monotonic() < deadline:
                msgs = consumer.consume(num_messages=100, timeout=0.3)
                good = []
                for msg in msgs:
                    if msg.error():
                        errors.append(f"member {index}: {msg.error().str()}")
                    else:
                        good.append(msg)
                if good:
                    consumer.commit(asynchronous=False)  # the positions after what was consumed
                    with lock:
                        counts[index] += len(good)
                        seen.update(m.key().decode() for m in good)
        except Exception as e:
            errors.append(f"member {index}: {type(e).__name__}: {e}")
        finally:
            consumer.close()

    members = [threading.Thread(target=member, args=(i,), daemon=True) for i in range(3)]
    for m in members:
        m.start()
    # Wait (polling, bounded) until every member holds a partition, then produce.
    settle_until = min(deadline - 20, time.monotonic() + CHECK_TIMEOUT / 2)
    while time.monotonic() < settle_until and not all(assigned) and all(m.is_alive() for m in members):
        time.sleep(0.1)
    settled = "3 members held a partition each" if all(assigned) else f"partitions per member never reached 1/1/1 (last {assigned})"
    try:
        produce_keyed(topic, 60, deadline, "g")
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
    checker = Consumer(base_conf(**{"group.id": group, "enable.auto.commit": False}))
    try:
        ends = [checker.get_watermark_offsets(TopicPartition(topic, p), timeout=left(deadline, 10))[1] for p in range(3)]
        while True:
            committed = [tp.offset for tp in checker.committed([TopicPartition(topic, p) for p in range(3)],
                                                               timeout=left(deadline, 10))]
            if committed == ends or time.monotonic() > commit_deadline:
                break
            time.sleep(0.2)
    finally:
        checker.close()
    if committed != ends:
        raise Failed(f"{settled}; 60/60 seen (per member {split}) but committed offsets {committed} != end offsets {ends}")
    note = f"; errors seen: {errors[:2]}" if errors else ""
    return f"{settled}; 60/60 distinct keys seen (records per member {split}); committed offsets {committed} = end{note}"


def check_transactions(deadline):
    topic = f"{PREFIX}-tx"
    create_topic(topic, 3, deadline)
    producer = Producer(base_conf(**{
        "transactional.id": f"{PREFIX}-tx",
        "linger.ms": 5,
        "message.timeout.ms": int(left(deadline, 20) * 1000),
    }))
    problems = []

    def step(what, call):
        try:
            call()
            return True
        except KafkaException as e:
            problems.append(f"{what}: {e.args[0].str()}")
        except Exception as e:
            problems.append(f"{what}: {type(e).__name__}: {e}")
        return False

    if step("init_transactions", lambda: producer.init_transactions(left(deadline, 20))):
        if step("begin (commit txn)", producer.begin_transaction):
            for i in range(10):
                producer.produce(topic, key=f"commit-{i}".encode(), value=b"committed")
            if not step("commit_transaction", lambda: producer.commit_transaction(left(deadline, 20))):
                # What an application does after a failed commit: abort, then go on.
                step("abort after the failed commit", lambda: producer.abort_transaction(left(deadline, 20)))
        if step("begin (abort txn)", producer.begin_transaction):
            for i in range(10):
                producer.produce(topic, key=f"abort-{i}".encode(), value=b"aborted")
            producer.flush(left(deadline, 10))
            step("abort_transaction", lambda: producer.abort_transaction(left(deadline, 20)))
    producer.flush(left(deadline, 5))

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
