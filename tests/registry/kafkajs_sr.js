#!/usr/bin/env node
// KafkaJS' schema registry client, @kafkajs/confluent-schema-registry, against chinook's
// registry: a second client nobody here wrote (the first is Confluent's Python client,
// confluent_sr.py). tests/registry.rs runs it and judges what it prints.
//
// Usage: node kafkajs_sr.js REGISTRY_URL BOOTSTRAP FRAMED_TOPIC SCRATCH_SUBJECT REF_SUBJECT CHINOOK_COUNT
//   CHINOOK_COUNT values must already be on FRAMED_TOPIC, framed by
//   `chinook produce customer-created --schema-registry`.
//
// What it does, printing one JSON object of observations on stdout:
// - on SCRATCH_SUBJECT: register a protobuf schema, register it again (same id), look it up by
//   its text, getLatestSchemaId, encode/decode round trip (decode with a fresh client, so the
//   schema is fetched by id), a compatible change (new version and id), an incompatible one
//   (the library throws; the HTTP status is reported);
// - on REF_SUBJECT: a schema that imports customer/v1/customer.proto through a reference to
//   the preloaded subject of that name; encode/decode a message whose field has the imported
//   type ContactInfo;
// - chinook's own frames on FRAMED_TOPIC, read with kafkajs and decoded with the library.
//
// What the library (3.9.0) can and cannot do with chinook's frames — its limits, not the
// registry's: the same answers from Confluent's registry would trip it the same way.
// - References: it does resolve them. For schema id N it GETs /schemas/ids/N, then every
//   reference's /subjects/{subject}/versions/{version} (recursively), and parses them all
//   into one protobufjs root.
// - Well-known types: it parses each schema text with protobufjs.parse, which records
//   `import "google/protobuf/timestamp.proto"` but loads nothing for it, and neither
//   Confluent's registry nor chinook's lists well-known imports as references (Confluent's
//   serializers skip them: `skip.known.types`). CustomerEvent has a Timestamp field, so
//   decode() fails with "no such Type or Enum 'google.protobuf.Timestamp'". Shown here as
//   `chinook_decode`; then, as a workaround in this script only, the Timestamp definition
//   protobufjs ships (protobuf.common) is added to the root of the schema the library cached,
//   and decode() is run again (`chinook_decode_with_timestamp`).
// - Which message: it ignores the message indexes of the Confluent header. On decode it strips
//   every leading zero byte of the payload (right for indexes [0], which is one 0x00 byte,
//   CustomerEvent's case); it takes the first type of the schema's file unless the
//   `messageName` option names one — and the first type of customer_events.proto is an enum
//   (kafkajs/confluent-schema-registry#263), so `messageName: 'CustomerEvent'` is given.
// - Its encode() writes no message indexes at all (magic byte, id, payload:
//   kafkajs/confluent-schema-registry#152). Confluent's wire format has them, and chinook's
//   broker reads them: such a value on the framed topic is refused (`library_frame_on_topic`).
'use strict'

const path = require('path')

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'

const NODE_MODULES = path.resolve(__dirname, '../../target/clients/node/node_modules')
const LIB_DIR = path.join(NODE_MODULES, '@kafkajs/confluent-schema-registry')
const { SchemaRegistry, SchemaType } = require(LIB_DIR)
// The protobufjs the library itself loads (for the Timestamp workaround).
const protobuf = require(require.resolve('protobufjs', { paths: [LIB_DIR] }))
const { Kafka, logLevel } = require(path.join(NODE_MODULES, 'kafkajs'))

const [host, bootstrap, topic, scratch, refSubject, countText] = process.argv.slice(2)
if (!countText) {
  process.stderr.write('usage: kafkajs_sr.js REGISTRY_URL BOOTSTRAP FRAMED_TOPIC SCRATCH_SUBJECT REF_SUBJECT CHINOOK_COUNT\n')
  process.exit(2)
}
const chinookCount = Number(countText)
const out = {
  library: require(path.join(LIB_DIR, 'package.json')).version,
  kafkajs: require(path.join(NODE_MODULES, 'kafkajs/package.json')).version,
}

// Every request the library makes, as "METHOD /path" (a mappersmith middleware).
const requests = []
const logRequests = () => ({
  request: req => {
    requests.push(`${req.method().toUpperCase()} ${new URL(req.url()).pathname}`)
    return req
  },
})
const client = options => new SchemaRegistry({ host, middlewares: [logRequests] }, options)
const status = e => (e && typeof e === 'object' && 'status' in e ? e.status : `threw: ${e && e.message}`)

const V1 = 'syntax = "proto3";\npackage lab3.v1;\nmessage Ping {\n  string id = 1;\n}\n'
const V2 = 'syntax = "proto3";\npackage lab3.v1;\nmessage Ping {\n  string id = 1;\n  int64 sent_ms = 2;\n}\n'
const BAD = 'syntax = "proto3";\npackage lab3.v1;\nmessage Ping {\n  int32 id = 1;\n}\n'
const WITH_REF =
  'syntax = "proto3";\npackage lab3.v1;\nimport "customer/v1/customer.proto";\n' +
  'message Reach {\n  string who = 1;\n  customer.v1.ContactInfo contact = 2;\n}\n'

const withDeadline = (promise, secs, what) =>
  Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing after ${secs} s`)), secs * 1000).unref()),
  ])

async function scratchSubject() {
  const registry = client()
  const proto = schema => ({ type: SchemaType.PROTOBUF, schema })
  const first = await registry.register(proto(V1), { subject: scratch })
  const again = await registry.register(proto(V1), { subject: scratch })
  out.registered = { id: first.id, again: again.id }
  out.lookup_by_schema = await registry.getRegistryIdBySchema(scratch, proto(V1))
  out.latest_after_v1 = await registry.getLatestSchemaId(scratch)

  // Round trip; the decoding client has an empty cache, so it fetches the schema by id.
  const encoded = await registry.encode(first.id, { id: 'ping-1' })
  out.encoded_header = [...encoded.subarray(0, 6)]
  const decoded = await client().decode(encoded)
  out.round_trip = decoded.toJSON()

  const second = await registry.register(proto(V2), { subject: scratch })
  out.v2 = { id: second.id, latest: await registry.getLatestSchemaId(scratch) }
  const v2decoded = await client().decode(await registry.encode(second.id, { id: 'ping-2', sentMs: 42 }))
  out.v2_round_trip = v2decoded.toJSON()
  try {
    await registry.register(proto(BAD), { subject: scratch })
    out.incompatible = 'accepted'
  } catch (e) {
    out.incompatible = status(e)
  }
  out.latest_after_refusal = await registry.getLatestSchemaId(scratch)
}

async function referencedSubject() {
  const registry = client()
  const versions = requests.length
  const { id } = await registry.register(
    {
      type: SchemaType.PROTOBUF,
      schema: WITH_REF,
      references: [{ name: 'customer/v1/customer.proto', subject: 'customer/v1/customer.proto', version: 1 }],
    },
    { subject: refSubject },
  )
  const payload = { who: 'ana', contact: { email: 'ana@example.com', countryCode: 'BR' } }
  const encoded = await registry.encode(id, payload)
  const fresh = client()
  const before = requests.length
  out.ref_round_trip = (await fresh.decode(encoded)).toJSON()
  out.ref_register_requests = requests.slice(versions, before)
  out.ref_decode_requests = requests.slice(before)
}

// chinook's frames, read with kafkajs (a throw-away group from the beginning, never committing).
async function readFramed(kafka) {
  const consumer = kafka.consumer({ groupId: `kafkajs-sr-${process.pid}-${Date.now()}` })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const values = []
  try {
    await withDeadline(
      new Promise((resolve, reject) => {
        consumer
          .run({
            eachMessage: async ({ message }) => {
              values.push(message.value)
              if (values.length >= chinookCount) resolve()
            },
          })
          .catch(reject)
      }),
      90,
      `reading ${chinookCount} values from ${topic}`,
    )
  } finally {
    await consumer.disconnect()
  }
  return values
}

async function chinooksFrames(kafka) {
  const values = await readFramed(kafka)
  out.chinook_read = values.length
  out.chinook_header = [...values[0].subarray(0, 6)]
  const id = values[0].readInt32BE(1)
  const messageName = { [SchemaType.PROTOBUF]: { messageName: 'CustomerEvent' } }

  // As the library comes: references are fetched, the Timestamp import is not.
  const plain = client(messageName)
  const before = requests.length
  try {
    const v = await plain.decode(values[0])
    out.chinook_decode = { ok: true, value: v.toJSON() }
  } catch (e) {
    out.chinook_decode = { ok: false, error: String(e.message) }
  }
  out.chinook_decode_requests = requests.slice(before)

  // Without messageName the library picks the file's first type, an enum.
  try {
    await client().getSchema(id)
    out.without_message_name = 'ok'
  } catch (e) {
    out.without_message_name = String(e.message)
  }

  // The workaround: the library's cached schema gets google.protobuf.Timestamp, then decodes.
  const patched = client(messageName)
  const schema = await patched.getSchema(id) // the library's ProtoSchema; .message is a protobufjs Type
  schema.message.root.addJSON(protobuf.common['google/protobuf/timestamp.proto'].nested)
  const decoded = []
  for (const value of values) decoded.push((await patched.decode(value)).toJSON())
  out.chinook_decode_with_timestamp = decoded.map(v => ({
    eventType: v.eventType,
    aggregateId: v.aggregateId,
    customer: v.customerCreated && v.customerCreated.customer && v.customerCreated.customer.name,
    timestamp: v.timestamp,
  }))

  // The library's own frame of a CustomerEvent (no message indexes), sent to the framed topic.
  const frame = await patched.encode(id, { eventId: 'kafkajs-frame', aggregateId: '7', aggregateType: 'customer' })
  out.library_frame_header = [...frame.subarray(0, 6)]
  const producer = kafka.producer({ retry: { retries: 0 } })
  await producer.connect()
  try {
    await producer.send({ topic, acks: -1, messages: [{ value: frame }] })
    out.library_frame_on_topic = 'accepted'
  } catch (e) {
    out.library_frame_on_topic = `threw: ${e.message}`
    for (let err = e; err; err = err.cause !== err ? err.cause : null) {
      if (err.type) {
        out.library_frame_on_topic = err.type
        break
      }
    }
  } finally {
    await producer.disconnect()
  }
}

async function main() {
  await scratchSubject()
  await referencedSubject()
  const kafka = new Kafka({
    clientId: 'kafkajs-sr',
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 2000 },
  })
  await chinooksFrames(kafka)
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch(e => {
  process.stderr.write(`kafkajs_sr.js: ${(e && e.stack) || e}\nso far: ${JSON.stringify(out)}\n`)
  process.exit(1)
})
