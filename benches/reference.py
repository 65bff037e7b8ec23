"""Reference librdkafka client (confluent-kafka from PyPI) for BENCHMARKS.md.

produce: sends N copies of one pre-encoded CustomerEvent (keys 0..N-1, the same
headers) with the settings chinook's producer uses, and waits for every delivery
report. chinook, by contrast, builds and encodes each event as it goes.
consume: reads a topic from the start to its end in a fresh group, without decoding.
Prints one JSON line with the figures.
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

mode, brokers, topic, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

if mode == "produce":
    value = open(sys.argv[5], "rb").read()
    p = Producer({
        "bootstrap.servers": brokers, "enable.idempotence": True, "acks": "all",
        "linger.ms": 5, "batch.size": 1000000, "partitioner": "murmur2_random",
    })
    acked = failed = 0

    def report(err, msg):
        global acked, failed
        if err is None:
            acked += 1
        else:
            failed += 1

    # The same headers chinook puts on every event.
    headers = [("event-type", b"CUSTOMER_EVENT_TYPE_CREATED"), ("aggregate-type", b"customer"),
               ("event-version", b"1"), ("content-type", b"application/x-protobuf")]
    start = time.monotonic()
    for i in range(n):
        while True:
            try:
                p.produce(topic, value, str(i).encode(), headers=headers, on_delivery=report)
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
    p.flush(60)
    elapsed = time.monotonic() - start
    print(json.dumps({"client": "confluent-kafka " + __import__("confluent_kafka").version(), "acked": acked, "failed": failed, "seconds": elapsed, "per_second": acked / elapsed}))
elif mode == "consume":
    c = Consumer({"bootstrap.servers": brokers, "group.id": "reference-%d" % time.time_ns(), "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    meta = c.list_topics(topic, timeout=10).topics[topic]
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta.partitions}
    c.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    todo = {p for p, end in ends.items() if end > 0}
    count, size = 0, 0
    start = time.monotonic()
    while todo and count < n:
        for m in c.consume(1000, 1.0):
            if m.error():
                continue
            count += 1
            size += len(m.value() or b"")
            if m.offset() + 1 >= ends[m.partition()]:
                todo.discard(m.partition())
    elapsed = time.monotonic() - start
    c.close()
    print(json.dumps({"client": "confluent-kafka", "consumed": count, "bytes": size, "seconds": elapsed, "per_second": count / elapsed}))
