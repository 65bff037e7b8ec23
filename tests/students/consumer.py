"""A student's consumer: CustomerEvents in a group, routed by type, dead-lettering poison.

Correct by default: decodes each record, sends the five known event types to their
handlers, skips (and commits) unknown or unspecified types, retries a failing
handler 3 times and then parks the record on CHINOOK_DLQ_TOPIC (waiting for the
ack before committing past it), commits only what it has processed, and on
SIGTERM/SIGINT commits, leaves the group and exits 0.
With CHINOOK_METRICS_ADDR ("host:port") set, it serves Prometheus metrics there
(prometheus_client, a registry of its own): student_records_processed_total (every
record finished with: handled, skipped or dead-lettered), student_processing_errors_total
(every record that could not be processed: dead-lettered, or given up on under no-dlq)
and student_consumer_lag{partition} (high watermark - offset - 1 after each record).
STUDENT_BUG switches on one deliberate mistake:
  never-commit      processes everything, commits nothing
  crash-on-unknown  an unknown or unspecified event type raises (exit non-zero)
  no-dlq            a poison (or undecodable) record is logged and committed: nothing
                    is ever written to the dead-letter topic
  no-error-metric   student_processing_errors_total exists but never goes up
  pinned-schema     with a registry, only the first schema id it sees is accepted: values
                    written with a newer (compatible) version are dead-lettered (Lab 3)
With CHINOOK_SCHEMA_REGISTRY (a URL) set, values are Confluent-framed: confluent-kafka's
ProtobufDeserializer resolves each schema id through the registry and reads the payload
as this consumer's CustomerEvent.
"""

import os
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError
from google.protobuf.message import DecodeError

import common

BUGS = ("never-commit", "crash-on-unknown", "no-dlq", "no-error-metric", "pinned-schema")
ATTEMPTS = 3

stopping = None  # the name of the signal that asked us to stop


def request_stop(signum, _frame):
    # Only set the flag: the poll loop notices within its 0.2 s timeout.
    global stopping
    stopping = signal.Signals(signum).name


class Metrics:
    """The Prometheus metrics, served on CHINOOK_METRICS_ADDR; without it, a no-op."""

    OFFSET_INVALID = -1001  # what a cached watermark reads while librdkafka does not know it

    def __init__(self, consumer):
        self.consumer = consumer
        self.server = None
        addr = os.environ.get("CHINOOK_METRICS_ADDR", "").strip()
        if not addr:
            return
        from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

        host, sep, port = addr.rpartition(":")
        if not sep or not port.isdigit():
            sys.exit(f"student: CHINOOK_METRICS_ADDR must be host:port, not {addr!r}")
        host = host.strip("[]") or "0.0.0.0"
        self.registry = CollectorRegistry()
        self.processed = Counter(
            "student_records_processed",
            "Records the consumer finished with: handled, skipped or dead-lettered.",
            registry=self.registry,
        )
        self.errors = Counter(
            "student_processing_errors",
            "Records that could not be processed: dead-lettered, or undecodable/poison.",
            registry=self.registry,
        )
        self.lag = Gauge(
            "student_consumer_lag",
            "High watermark minus the next offset to read, per partition, after each record.",
            ["partition"],
            registry=self.registry,
        )
        self.server, _thread = start_http_server(int(port), addr=host, registry=self.registry)
        common.log(f"student consumer: metrics on http://{addr}/metrics")

    def failed(self):
        if self.server is not None and common.BUG != "no-error-metric":
            self.errors.inc()

    def finished(self, msg):
        if self.server is None:
            return
        self.processed.inc()
        tp = TopicPartition(msg.topic(), msg.partition())
        try:
            _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if high == self.OFFSET_INVALID:
                _low, high = self.consumer.get_watermark_offsets(tp, timeout=1, cached=False)
        except KafkaException as e:
            common.err(f"student consumer: no high watermark for {where(msg)}: {e.args[0]}")
            return
        if high is None or high < 0:
            return
        self.lag.labels(partition=str(msg.partition())).set(max(0, high - (msg.offset() + 1)))

    def close(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class PoisonEvent(Exception):
    """The handler cannot process this event (payload does not match its type)."""


class UnknownType(Exception):
    pass


# --- handlers: one per known type; they only count, and refuse a payload of another case.

handled = {}


def handle(event):
    expected = common.PAYLOAD_OF_TYPE[event.event_type]
    actual = event.WhichOneof("payload")
    if actual != expected:
        raise PoisonEvent(
            f"{common.type_name(event.event_type)} event {event.event_id or '?'} carries "
            f"{'no payload' if actual is None else 'a ' + actual + ' payload'}, expected {expected}"
        )
    route = common.type_name(event.event_type)
    handled[route] = handled.get(route, 0) + 1
    return route


class Student:
    def __init__(self):
        self.brokers = common.env("CHINOOK_BROKERS")
        self.topic = common.env("CHINOOK_TOPIC")
        self.group = common.env("CHINOOK_GROUP")
        self.dlq_topic = common.env("CHINOOK_DLQ_TOPIC")
        self.commits = common.BUG != "never-commit"
        # Next offset to commit per (topic, partition): only records already processed.
        self.pending = {}
        self.stats = {"handled": 0, "skipped": 0, "dead-lettered": 0, "commits": 0}
        self.consumer = Consumer(
            {
                "bootstrap.servers": self.brokers,
                "group.id": self.group,
                "client.id": "student-consumer",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
            }
        )
        self.dlq = Producer(
            {
                "bootstrap.servers": self.brokers,
                "client.id": "student-consumer-dlq",
                "enable.idempotence": True,
                "acks": "all",
                "delivery.timeout.ms": 30000,
            }
        )
        self.metrics = Metrics(self.consumer)
        registry = common.env("CHINOOK_SCHEMA_REGISTRY", "")
        self.deserializer = (
            ProtobufDeserializer(common.CustomerEvent, {"use.deprecated.format": False}, SchemaRegistryClient({"url": registry}))
            if registry
            else None
        )
        self.pinned = None  # the one schema id accepted under pinned-schema

    def decode(self, msg):
        """The record's CustomerEvent: bare protobuf, or Confluent-framed through the registry."""
        value = msg.value() or b""
        if self.deserializer is None:
            return common.CustomerEvent.FromString(value)
        if common.BUG == "pinned-schema" and len(value) >= 5:
            schema_id = int.from_bytes(value[1:5], "big")
            self.pinned = self.pinned or schema_id
            if schema_id != self.pinned:
                raise DecodeError(f"schema id {schema_id} is not the one this consumer was built for ({self.pinned})")
        return self.deserializer(value, SerializationContext(msg.topic(), MessageField.VALUE))

    # --- commits

    def commit(self, keys=None, tries=3, final=False):
        """Commits the processed offsets of `keys` (default: every partition with some).

        Returns False when the broker refused or could not be reached `tries` times in a
        row: the offsets stay pending and the next commit tries them again."""
        if not self.commits:
            return True
        keys = list(self.pending) if keys is None else [k for k in keys if k in self.pending]
        if not keys:
            return True
        offsets = [TopicPartition(t, p, self.pending[(t, p)]) for t, p in keys]
        for attempt in range(1, tries + 1):
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
                break
            except KafkaException as e:
                common.err(f"student consumer: commit attempt {attempt}/{tries} failed: {e.args[0]}")
                if attempt == tries:
                    return False
                time.sleep(0.2)
        for tp in offsets:
            # A later record of the partition may have been processed meanwhile: keep that one.
            if self.pending.get((tp.topic, tp.partition)) == tp.offset:
                del self.pending[(tp.topic, tp.partition)]
        self.stats["commits"] += 1
        if final:
            common.log("committed " + ", ".join(f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in offsets))
        return True

    def on_assign(self, _consumer, partitions):
        common.log("assigned " + (", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"))

    def on_revoke(self, _consumer, partitions):
        # Records of these partitions are all processed by now (callbacks run inside
        # consume(), between two batches): commit them before another member takes over.
        keys = [(tp.topic, tp.partition) for tp in partitions]
        if not self.commit(keys):
            common.err("student consumer: could not commit before the revoke: the next owner re-reads those records")
        for k in keys:
            self.pending.pop(k, None)
        common.log("revoked " + (", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"))

    def on_lost(self, _consumer, partitions):
        for tp in partitions:
            self.pending.pop((tp.topic, tp.partition), None)
        common.err("student consumer: lost " + ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions))

    # --- processing

    def dead_letter(self, msg, reason):
        delivered = []
        headers = list(msg.headers() or [])
        headers += [
            ("dlq-reason", reason.encode()),
            ("dlq-original-topic", msg.topic().encode()),
            ("dlq-original-partition", str(msg.partition()).encode()),
            ("dlq-original-offset", str(msg.offset()).encode()),
        ]
        self.dlq.produce(
            self.dlq_topic,
            key=msg.key(),
            value=msg.value(),
            headers=headers,
            on_delivery=lambda error, m: delivered.append(error),
        )
        self.dlq.flush(40)
        if not delivered or delivered[0] is not None:
            # Not parked, so not committed either: exit and let the group redeliver it.
            raise RuntimeError(f"dead-lettering {where(msg)} failed: {delivered[0] if delivered else 'no ack'}")

    def process(self, msg):
        try:
            event = self.decode(msg)
        except (DecodeError, SerializationError) as e:
            reason = f"undecodable value: not a events.v1.CustomerEvent ({e})"
            if common.BUG == "no-dlq":
                self.stats["skipped"] += 1
                self.metrics.failed()
                common.log(f"{where(msg)} cannot decode, moving on: {reason}")
                return
            self.dead_letter(msg, reason)
            self.stats["dead-lettered"] += 1
            self.metrics.failed()
            common.log(f"{where(msg)} dead-lettered: {reason}")
            return

        if event.event_type not in common.PAYLOAD_OF_TYPE:
            name = common.type_name(event.event_type)
            if common.BUG == "crash-on-unknown":
                raise UnknownType(f"no handler for event type {name} at {where(msg)}")
            self.stats["skipped"] += 1
            common.log(f"{where(msg)} skipped: unknown or unspecified event type {name}")
            return

        for attempt in range(1, ATTEMPTS + 1):
            try:
                route = handle(event)
                self.stats["handled"] += 1
                common.log(f"{where(msg)} {route} customer {event.aggregate_id} (attempt {attempt})")
                return
            except PoisonEvent as e:
                problem = e
                common.err(f"student consumer: {where(msg)} attempt {attempt}/{ATTEMPTS} failed: {e}")
                if attempt < ATTEMPTS:
                    time.sleep(0.02 * 2**attempt)

        if common.BUG == "no-dlq":
            self.stats["skipped"] += 1
            self.metrics.failed()
            common.log(f"{where(msg)} gave up after {ATTEMPTS} attempts, moving on: {problem}")
            return
        reason = f"handler failed {ATTEMPTS} times: {problem}"
        self.dead_letter(msg, reason)
        self.stats["dead-lettered"] += 1
        self.metrics.failed()
        common.log(f"{where(msg)} dead-lettered: {reason}")

    def run(self):
        self.consumer.subscribe(
            [self.topic], on_assign=self.on_assign, on_revoke=self.on_revoke, on_lost=self.on_lost
        )
        common.log(f"student consumer: group {self.group} on {self.topic}, dead letters to {self.dlq_topic}")
        while not stopping:
            batch = self.consumer.consume(num_messages=100, timeout=0.2)
            for msg in batch:
                if msg.error():
                    error = msg.error()
                    if error.fatal():
                        raise KafkaException(error)
                    if error.code() != KafkaError._PARTITION_EOF:
                        common.err(f"student consumer: {error}")
                    continue
                self.process(msg)
                self.pending[(msg.topic(), msg.partition())] = msg.offset() + 1
                self.metrics.finished(msg)
            self.commit()
        common.log(f"student consumer: {stopping}, stopping")

    def shutdown(self):
        """Commits what was processed, leaves the group; False if the commit failed."""
        try:
            committed = self.commit(tries=15, final=True)
        finally:
            self.consumer.close()  # leaves the group
            self.dlq.flush(10)
            self.metrics.close()
        if not committed:
            common.err("student consumer: stopped WITHOUT committing the last processed records")
        common.log(
            "student consumer: stopped; "
            + ", ".join(f"{k} {v}" for k, v in self.stats.items())
            + ("; per type " + ", ".join(f"{k}={v}" for k, v in sorted(handled.items())) if handled else "")
        )
        return committed


def where(msg):
    return f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"


def main():
    common.check_bug(BUGS)
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    student = Student()
    try:
        student.run()
    except BaseException:
        # A crash: leave the group at once (so the others take over without waiting for
        # the session timeout) but commit nothing more on the way out, then fail.
        student.commits = False
        try:
            student.consumer.close()
        except Exception:
            pass
        raise
    if not student.shutdown():
        sys.exit(1)


if __name__ == "__main__":
    main()
