"""A student's producer: CHINOOK_COUNT CustomerCreated events for customers 1..N.

Correct by default. STUDENT_BUG switches on one deliberate mistake:
  no-retries  no idempotence, acks=1, no retries: a broker cut mid-publish loses or fails events
  no-key      records go out without a key (no per-customer ordering, no key-based spread)
  untuned     CHINOOK_TUNED=1 changes nothing: the "tuned" run uses the defaults again (Lab 3)
  no-registry CHINOOK_SCHEMA_REGISTRY is ignored: values go out bare, without the Confluent
              header, and a framed topic refuses them (Lab 3)
Lab 3: CHINOOK_TUNED=1 turns on zstd compression, linger.ms=50 and 1 MB batches;
CHINOOK_SCHEMA_REGISTRY (a URL) frames every value with confluent-kafka's ProtobufSerializer.
Optional: STUDENT_PACE_MS sleeps that long between two events, so a test can cut
the broker while the producer is still publishing.
"""

import sys
import time
import uuid

from confluent_kafka import KafkaException, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

import common

BUGS = ("no-retries", "no-key", "untuned", "no-registry")
FIRST_NAMES = ["Ana", "Bruno", "Carla", "Diego", "Elisa", "Felipe", "Gabriela", "Heitor", "Isabel", "Julia"]
LAST_NAMES = ["Silva", "Santos", "Oliveira", "Souza", "Lima", "Pereira", "Costa", "Almeida", "Ribeiro", "Martins"]


def config(brokers):
    conf = {
        "bootstrap.servers": brokers,
        "client.id": "student-producer",
        "delivery.timeout.ms": 60000,
    }
    if common.BUG == "no-retries":
        # The mistake: fire and forget. One in-flight failure is a lost or failed event.
        conf.update({"enable.idempotence": False, "acks": "1", "message.send.max.retries": 0})
    else:
        conf.update({"enable.idempotence": True, "acks": "all"})
    if common.env("CHINOOK_TUNED", "0") == "1" and common.BUG != "untuned":
        # Fewer, bigger, compressed batches: fewer bytes on the wire.
        conf.update({"compression.type": "zstd", "linger.ms": 50, "batch.size": 1000000})
    return conf


def serializer(topic):
    """The value bytes of an event: bare protobuf, or Confluent-framed through the registry."""
    url = common.env("CHINOOK_SCHEMA_REGISTRY", "")
    if not url or common.BUG == "no-registry":
        return lambda event: event.SerializeToString()
    frame = ProtobufSerializer(common.CustomerEvent, SchemaRegistryClient({"url": url}), {"use.deprecated.format": False})
    ctx = SerializationContext(topic, MessageField.VALUE)
    return lambda event: frame(event, ctx)


def event_for(customer_id):
    now_ns = time.time_ns()
    event = common.CustomerEvent()
    event.event_id = str(uuid.uuid4())
    event.event_type = common.CREATED
    event.timestamp.FromNanoseconds(now_ns)
    event.version = 1
    event.correlation_id = str(uuid.uuid4())
    event.aggregate_id = str(customer_id)
    event.aggregate_type = "customer"
    created = event.customer_created
    created.created_by = "student-producer"
    created.source = "import"
    customer = created.customer
    first = FIRST_NAMES[customer_id % len(FIRST_NAMES)]
    last = LAST_NAMES[(customer_id // len(FIRST_NAMES)) % len(LAST_NAMES)]
    customer.id = customer_id
    customer.name = f"{first} {last}"
    customer.email = f"{first.lower()}.{last.lower()}.{customer_id}@example.com"
    customer.created_at.FromNanoseconds(now_ns)
    customer.updated_at.FromNanoseconds(now_ns)
    return event, now_ns // 1_000_000


def main():
    common.check_bug(BUGS)
    brokers = common.env("CHINOOK_BROKERS")
    topic = common.env("CHINOOK_TOPIC")
    try:
        count = int(common.env("CHINOOK_COUNT"))
    except ValueError:
        sys.exit(f"student: CHINOOK_COUNT must be a whole number, not {common.env('CHINOOK_COUNT')!r}")
    pace = float(common.env("STUDENT_PACE_MS", "0")) / 1000.0

    producer = Producer(config(brokers))
    acked = 0
    failures = []
    per_partition = {}

    def on_delivery(error, msg):
        nonlocal acked
        if error is not None:
            failures.append(f"event {msg.key().decode() if msg.key() else '?'}: {error}")
        else:
            acked += 1
            per_partition[msg.partition()] = per_partition.get(msg.partition(), 0) + 1

    type_name = common.type_name(common.CREATED)
    value_of = serializer(topic)
    for customer_id in range(1, count + 1):
        event, ts_ms = event_for(customer_id)
        record = {
            "topic": topic,
            "value": value_of(event),
            "headers": [
                ("event-type", type_name.encode()),
                ("aggregate-type", event.aggregate_type.encode()),
                ("event-version", str(event.version).encode()),
            ],
            "timestamp": ts_ms,
            "on_delivery": on_delivery,
        }
        if common.BUG != "no-key":
            record["key"] = event.aggregate_id.encode()
        while True:
            try:
                producer.produce(**record)
                break
            except BufferError:
                producer.poll(0.1)  # local queue full: let deliveries drain
            except KafkaException as e:
                failures.append(f"event {customer_id}: {e}")
                break
        producer.poll(0)
        if pace:
            time.sleep(pace)

    remaining = producer.flush(70)
    if remaining:
        failures.append(f"{remaining} events still unacknowledged after flush")

    spread = ", ".join(f"p{p}={n}" for p, n in sorted(per_partition.items()))
    print(f"produced {acked}/{count} {type_name} events to {topic} ({spread or 'none'})", flush=True)
    if failures or acked != count:
        common.err(f"student producer: {count - acked} of {count} events not acknowledged")
        for line in failures[:20]:
            common.err(f"  {line}")
        if len(failures) > 20:
            common.err(f"  ... and {len(failures) - 20} more")
        sys.exit(1)


if __name__ == "__main__":
    main()
