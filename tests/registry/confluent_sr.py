"""Confluent's own Python clients against chinook's schema registry.

Usage: confluent_sr.py REGISTRY_URL BOOTSTRAP FRAMED_TOPIC DESCRIPTOR_SET SCRATCH_SUBJECT

Runs SchemaRegistryClient calls, then ProtobufSerializer/ProtobufDeserializer
with a real producer and consumer on FRAMED_TOPIC (which the broker validates),
and prints one JSON object of what it saw; tests/registry.rs judges it.
"""
import json
import sys
import uuid

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message_factory import GetMessageClass

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

url, bootstrap, topic, descriptor_set, scratch = sys.argv[1:6]
out = {}

client = SchemaRegistryClient({"url": url})
out["subjects"] = client.get_subjects()
latest = client.get_latest_version("customer_events-value")
out["preloaded"] = {"type": latest.schema.schema_type, "refs": [r.name for r in latest.schema.references]}

# The workshop's messages, from chinook's own descriptor set (no generated code needed).
files = descriptor_pb2.FileDescriptorSet()
with open(descriptor_set, "rb") as f:
    files.ParseFromString(f.read())
pool = descriptor_pool.DescriptorPool()
for fd in files.file:
    pool.Add(fd)
CustomerEvent = GetMessageClass(pool.FindMessageTypeByName("events.v1.CustomerEvent"))

# Compatibility on a scratch subject: a field added is fine, a type changed is refused with 409.
V1 = 'syntax = "proto3";\npackage lab3.v1;\nmessage Ping {\n  string id = 1;\n}\n'
V2 = 'syntax = "proto3";\npackage lab3.v1;\nmessage Ping {\n  string id = 1;\n  int64 sent_ms = 2;\n}\n'
BAD = 'syntax = "proto3";\npackage lab3.v1;\nmessage Ping {\n  int32 id = 1;\n}\n'
first = client.register_schema(scratch, Schema(V1, "PROTOBUF"))
again = client.register_schema(scratch, Schema(V1, "PROTOBUF"))
out["idempotent"] = first == again
out["v2_compatible"] = client.test_compatibility(scratch, Schema(V2, "PROTOBUF"))
out["bad_compatible"] = client.test_compatibility(scratch, Schema(BAD, "PROTOBUF"))
second = client.register_schema(scratch, Schema(V2, "PROTOBUF"))
try:
    client.register_schema(scratch, Schema(BAD, "PROTOBUF"))
    out["bad_register"] = "accepted"
except SchemaRegistryError as e:
    out["bad_register"] = e.http_status_code
out["versions"] = client.get_versions(scratch)
out["ids_distinct"] = first != second
out["by_id"] = client.get_schema(second).schema_str == V2
try:
    client.get_schema(999999)
    out["missing_id"] = "found"
except SchemaRegistryError as e:
    out["missing_id"] = [e.http_status_code, e.error_code]

# Serializer → broker (validated) → deserializer.
ser = ProtobufSerializer(CustomerEvent, client, {"use.deprecated.format": False})
ctx = SerializationContext(topic, MessageField.VALUE)
sent = []
producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
errors = []
for i in range(5):
    ev = CustomerEvent(event_id=str(uuid.uuid4()), aggregate_id=str(100 + i), aggregate_type="customer", version=1)
    value = ser(ev, ctx)
    sent.append(ev.event_id)
    producer.produce(topic, key=str(100 + i).encode(), value=value,
                     on_delivery=lambda err, msg: errors.append(str(err)) if err else None)
out["framed_first_bytes"] = list(value[:6])
producer.flush(30)
out["produce_errors"] = errors

# A value without the header is refused by the broker on the framed topic.
refused = []
producer.produce(topic, value=CustomerEvent(event_id="raw", aggregate_id="1").SerializeToString(),
                 on_delivery=lambda err, msg: refused.append(err.name() if err else "accepted"))
producer.flush(30)
out["unframed"] = refused

des = ProtobufDeserializer(CustomerEvent, {"use.deprecated.format": False}, client)
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "sr-" + str(uuid.uuid4()),
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
consumer.subscribe([topic])
got = []
polls = 0
while len(got) < len(sent) and polls < 120:
    polls += 1
    m = consumer.poll(0.5)
    if m is None or m.error():
        continue
    ev = des(m.value(), SerializationContext(topic, MessageField.VALUE))
    got.append(ev.event_id)
consumer.close()
out["read_back"] = sorted(got) == sorted(sent)
out["read"] = len(got)
print(json.dumps(out))
