"""A transactional copy (read-process-write) from one topic to another, on
confluent-kafka: the exactly-once pattern the workshop sells, written the way
the client's documentation describes it, by someone other than chinook.

Each batch of up to BATCH records read from IN_TOPIC (group GROUP) is written
to OUT_TOPIC and the group's offsets are committed in the *same* transaction,
so a crash anywhere leaves either the whole batch (copy and offsets) or none
of it. The program exits 0 once its group has committed the end of every
input partition.

Environment: CHINOOK_BROKERS, IN_TOPIC, OUT_TOPIC, GROUP, TXN_ID, BATCH
(default 100), and HANG_AFTER=N to stop dead after N committed batches, in
the middle of the next transaction (its records written and flushed, not
committed), printing "hanging mid-transaction: C committed, W written in the
open one" so a test can kill -9 it there.

Run with the venv .ci/students.sh prepares: target/student-venv/bin/python.
"""

import os
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

env = os.environ
brokers, in_topic, out_topic = env["CHINOOK_BROKERS"], env["IN_TOPIC"], env["OUT_TOPIC"]
batch_size = int(env.get("BATCH", "100"))
hang_after = int(env["HANG_AFTER"]) if "HANG_AFTER" in env else None

consumer = Consumer({
    "bootstrap.servers": brokers,
    "group.id": env["GROUP"],
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "isolation.level": "read_committed",
    # A killed predecessor must leave the group soon, or the restart waits for it.
    "session.timeout.ms": 6000,
})
producer = Producer({"bootstrap.servers": brokers, "transactional.id": env["TXN_ID"]})
# Fences a predecessor with the same id and aborts its open transaction.
producer.init_transactions(30)
consumer.subscribe([in_topic])


def caught_up():
    """True when the group's position is at the end of every assigned partition."""
    assigned = consumer.assignment()
    if not assigned:
        return False
    for tp in consumer.position(assigned):
        _, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
        if tp.offset < 0 and high > 0 or tp.offset < high:
            return False
    return True


committed = 0  # transactions
copied = 0  # records committed by them
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    records = consumer.consume(batch_size, timeout=1.0)
    records = [r for r in records if r.error() is None]
    if not records:
        if caught_up():
            print(f"copied everything in {committed} transactions", flush=True)
            sys.exit(0)
        continue
    producer.begin_transaction()
    for r in records:
        producer.produce(out_topic, key=r.key(), value=r.value())
    if hang_after is not None and committed == hang_after:
        producer.flush(30)
        print(f"hanging mid-transaction: {copied} committed, {len(records)} written in the open one", flush=True)
        while True:
            time.sleep(3600)
    producer.send_offsets_to_transaction(
        consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 30
    )
    try:
        producer.commit_transaction(30)
    except KafkaException as e:
        sys.exit(f"commit failed: {e}")
    committed += 1
    copied += len(records)
sys.exit("the copy did not catch up within 120 s")
