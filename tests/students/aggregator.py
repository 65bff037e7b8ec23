"""A student's windowed aggregator (Lab 4): CustomerEvents counted per type in tumbling windows.

Correct by default: reads CHINOOK_TOPIC from the beginning (a group of its own,
aggregator-<uuid>, or CHINOOK_GROUP; read_committed; nothing is committed, since
the counts live in memory and a restart rebuilds them from the first record) and
counts the events per event type (the name of the CustomerEventType value in
`event_type`) in tumbling windows of CHINOOK_WINDOW_MS by record timestamp, with
a grace period of CHINOOK_GRACE_MS (default 0), by Kafka Streams' rules:
  - windows are epoch-aligned [start, start + size), start = ts - ts % size;
  - stream time is the largest record timestamp seen so far, this record included;
  - a record whose window ends at or before stream time - grace is dropped
    (counted and logged, not added);
  - after each record, every open window that ends at or before stream time - grace
    is final: it is published once to CHINOOK_OUTPUT_TOPIC as an events.v1.WindowResult
    (final = true, keyed by the event type) by an idempotent producer, flushed after
    each batch.
An undecodable value (or a record without a timestamp) is skipped. SIGTERM/SIGINT:
flush, report the windows still open (not published: they are not final) and exit 0.
STUDENT_BUG switches on one deliberate mistake:
  no-grace    grace is taken as 0: records late within the grace period are dropped,
              and windows are published as soon as stream time reaches their end
  wall-clock  counts by the time of processing (time.time()) instead of the record timestamp
  emit-early  publishes a window (final = true) after every record that changes it,
              instead of once when it closes
"""

import signal
import sys
import time
import uuid

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, KafkaException, Producer
from google.protobuf.message import DecodeError

import common

BUGS = ("no-grace", "wall-clock", "emit-early")

stopping = None  # the name of the signal that asked us to stop


def request_stop(signum, _frame):
    # Only set the flag: the poll loop notices within its 0.2 s timeout.
    global stopping
    stopping = signal.Signals(signum).name


def millis_env(name, default=None, minimum=0):
    raw = common.env(name, default)
    try:
        value = int(raw)
    except ValueError:
        sys.exit(f"student: {name} must be a whole number of milliseconds, not {raw!r}")
    if value < minimum:
        sys.exit(f"student: {name} must be at least {minimum}, not {value}")
    return value


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def span(start, end):
    return f"[{iso(start)}, {iso(end)})"


class Aggregator:
    def __init__(self):
        self.brokers = common.env("CHINOOK_BROKERS")
        self.topic = common.env("CHINOOK_TOPIC")
        self.output = common.env("CHINOOK_OUTPUT_TOPIC")
        self.group = common.env("CHINOOK_GROUP", f"aggregator-{uuid.uuid4()}")
        self.size = millis_env("CHINOOK_WINDOW_MS", minimum=1)
        self.grace = 0 if common.BUG == "no-grace" else millis_env("CHINOOK_GRACE_MS", "0")
        self.spec = f"tumbling:{self.size}ms"
        self.stream_time = None
        # (key, window start) -> count, for the windows not yet final.
        self.open = {}
        self.stats = {"records": 0, "dropped": 0, "skipped": 0, "published": 0}
        self.consumer = Consumer(
            {
                "bootstrap.servers": self.brokers,
                "group.id": self.group,
                "client.id": "student-aggregator",
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
            }
        )
        self.producer = Producer(
            {
                "bootstrap.servers": self.brokers,
                "client.id": "student-aggregator-out",
                "enable.idempotence": True,
                "acks": "all",
                "delivery.timeout.ms": 30000,
            }
        )

    # --- publishing

    def publish(self, windows):
        """Publishes (key, start, count) windows as final WindowResults and waits for the acks."""
        if not windows:
            return
        failures = []

        def delivered(error, _msg):
            if error is not None:
                failures.append(error)

        for key, start, count in windows:
            end = start + self.size
            result = common.WindowResult(key=key, count=count, window=self.spec, group_by="event-type", final=True)
            result.window_start.seconds, result.window_start.nanos = start // 1000, (start % 1000) * 1_000_000
            result.window_end.seconds, result.window_end.nanos = end // 1000, (end % 1000) * 1_000_000
            self.producer.produce(
                self.output,
                key=key.encode("utf-8"),
                value=result.SerializeToString(),
                timestamp=start,
                headers=[("content-type", b"application/x-protobuf")],
                on_delivery=delivered,
            )
        left = self.producer.flush(40)
        if failures or left:
            raise RuntimeError(
                f"publishing {len(windows)} window result(s) to {self.output} failed: "
                + (str(failures[0]) if failures else f"{left} not acknowledged")
            )
        for key, start, count in windows:
            self.stats["published"] += 1
            common.log(f"published {key} {span(start, start + self.size)} count {count} final")

    # --- counting

    def count(self, msg):
        where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
        kind, ts = msg.timestamp()
        if common.BUG == "wall-clock":
            ts = int(time.time() * 1000)
        elif kind == TIMESTAMP_NOT_AVAILABLE or ts < 0:
            self.stats["skipped"] += 1
            common.log(f"{where} skipped: no record timestamp")
            return
        try:
            event = common.CustomerEvent.FromString(msg.value() or b"")
        except DecodeError as e:
            self.stats["skipped"] += 1
            common.log(f"{where} skipped: undecodable value, not a events.v1.CustomerEvent ({e})")
            return

        self.stats["records"] += 1
        key = common.type_name(event.event_type)
        self.stream_time = ts if self.stream_time is None else max(self.stream_time, ts)
        close = self.stream_time - self.grace
        start = ts - ts % self.size
        end = start + self.size
        if end <= close:
            self.stats["dropped"] += 1
            common.log(
                f"{where} {key} at {iso(ts)} dropped: window {span(start, end)} closed "
                f"(stream time {iso(self.stream_time)}, grace {self.grace} ms)"
            )
        else:
            count = self.open.get((key, start), 0) + 1
            self.open[(key, start)] = count
            common.log(
                f"{where} {key} at {iso(ts)} -> window {span(start, end)} count {count} "
                f"(stream time {iso(self.stream_time)})"
            )
            if common.BUG == "emit-early":
                # The mistake: a result that may still change goes out marked final.
                self.publish([(key, start, count)])

        # Every window that ends at or before stream time - grace is final now.
        done = sorted(
            ((k, s) for (k, s) in self.open if s + self.size <= close), key=lambda ks: (ks[1], ks[0])
        )
        finals = [(k, s, self.open.pop((k, s))) for k, s in done]
        if common.BUG == "emit-early":
            for k, s, c in finals:
                common.log(f"closed {k} {span(s, s + self.size)} count {c} (already published)")
        else:
            self.publish(finals)

    def run(self):
        self.consumer.subscribe([self.topic])
        common.log(
            f"student aggregator: group {self.group} on {self.topic}, {self.spec}, grace {self.grace} ms, "
            f"results to {self.output}"
        )
        while not stopping:
            for msg in self.consumer.consume(num_messages=100, timeout=0.2):
                if msg.error():
                    error = msg.error()
                    if error.fatal():
                        raise KafkaException(error)
                    if error.code() != KafkaError._PARTITION_EOF:
                        common.err(f"student aggregator: {error}")
                    continue
                self.count(msg)
        common.log(f"student aggregator: {stopping}, stopping")

    def shutdown(self):
        try:
            self.consumer.close()
        finally:
            left = self.producer.flush(10)
        for (key, start), count in sorted(self.open.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            common.log(f"open {key} {span(start, start + self.size)} count {count} (not final, not published)")
        common.log(
            "student aggregator: stopped; "
            + ", ".join(f"{k} {v}" for k, v in self.stats.items())
            + f", open {len(self.open)}"
            + (f"; stream time {iso(self.stream_time)}" if self.stream_time is not None else "")
        )
        return left == 0


def main():
    common.check_bug(BUGS)
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    aggregator = Aggregator()
    try:
        aggregator.run()
    except BaseException:
        try:
            aggregator.consumer.close()
        except Exception:
            pass
        raise
    if not aggregator.shutdown():
        common.err("student aggregator: some window results were not acknowledged")
        sys.exit(1)


if __name__ == "__main__":
    main()
