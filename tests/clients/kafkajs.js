#!/usr/bin/env node
// Compatibility checks for KafkaJS (pure JavaScript client) against a Kafka broker.
//
// What it checks, in this order, each on its own (one failing or timing out does not stop the
// others), printing one JSON line per check on stdout:
//   metadata        brokers (admin.describeCluster) and topics (admin.listTopics)
//   produce         100 keyed records into a new 3-partition topic <prefix>-plain, then read back
//                   from the beginning up to the end offsets; counts must match. KafkaJS has no
//                   assign(): the reader is a throw-away group that starts from the beginning and
//                   never commits (the detail says so)
//   idempotent      the same with `idempotent: true` (maxInFlightRequests 1), into <prefix>-idempotent
//   invalid_record  the value bytes 0a ff ff alone into the schema-bound topic (customer_events):
//                   ok when send() fails with INVALID_RECORD (87)
//   group           three consumers join one group on <prefix>-group (3 partitions); once each
//                   holds a partition, 60 keyed records are produced; the members read them
//                   together and commit each one (commitOffsets); ok when all 60 distinct keys were
//                   seen and the committed offsets (admin.fetchOffsets) equal the end offsets
//   transactions    a transactional producer commits 10 records and aborts 10 others; a
//                   read_committed reader must see exactly the 10 committed
// Each line: {"client", "version", "check", "ok", "detail", "secs"} (+ "na": true when the client
// cannot do the check).
//
// Run:  CHINOOK_BROKERS=127.0.0.1:9092 CLIENT_PREFIX=js1 node tests/clients/kafkajs.js [check...]
// Env:  CHINOOK_BROKERS (bootstrap, default localhost:9092), CLIENT_PREFIX (prefix of the topics and
//       groups created here; a fresh one per run), CLIENT_SCHEMA_TOPIC (default customer_events),
//       CLIENT_CHECK_TIMEOUT (seconds per check, default 60), KAFKAJS_DIR (where kafkajs is; default
//       target/clients/node/node_modules/kafkajs, which .ci/clients.sh installs), KAFKAJS_LOG
//       (kafkajs log level on stderr: NOTHING, ERROR (default), WARN, INFO, DEBUG).
// Exit code 0 when every check ran (whatever its result), 2 on a usage error.
'use strict'

const path = require('path')

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'
const KAFKAJS_DIR =
  process.env.KAFKAJS_DIR || path.resolve(__dirname, '../../target/clients/node/node_modules/kafkajs')
let kafkajs, kafkajsVersion
try {
  kafkajs = require(KAFKAJS_DIR)
  kafkajsVersion = require(path.join(KAFKAJS_DIR, 'package.json')).version
} catch (e) {
  kafkajs = require('kafkajs') // from NODE_PATH or a node_modules above
  kafkajsVersion = require('kafkajs/package.json').version
}
const { Kafka, logLevel } = kafkajs

const CLIENT = 'kafkajs'
const VERSION = kafkajsVersion // the node version is left out: the matrix reads the same everywhere
const BROKERS = (process.env.CHINOOK_BROKERS || 'localhost:9092').split(',')
const PREFIX = process.env.CLIENT_PREFIX || `kafkajs-${process.pid}-${Math.floor(Date.now() / 1000)}`
const SCHEMA_TOPIC = process.env.CLIENT_SCHEMA_TOPIC || 'customer_events'
const CHECK_TIMEOUT = Number(process.env.CLIENT_CHECK_TIMEOUT || 60)
const LOG_LEVEL = logLevel[(process.env.KAFKAJS_LOG || 'ERROR').toUpperCase()] ?? logLevel.ERROR

// kafkajs logs with console.info/console.log by default, which is stdout: keep stdout for the
// JSON lines and send the client's own log to stderr.
const toStderr = () => ({ namespace, level, log }) => {
  const { message, ...extra } = log
  process.stderr.write(`kafkajs ${logLevel[level] || level} [${namespace}] ${message} ${JSON.stringify(extra)}\n`)
}

const kafka = new Kafka({
  clientId: `${PREFIX}-compat`,
  brokers: BROKERS,
  logLevel: LOG_LEVEL,
  logCreator: toStderr,
  connectionTimeout: 5000,
  requestTimeout: 15000,
  // Few, short retries: a broker that refuses something should fail the check quickly.
  retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 2000 },
})

class Failed extends Error {}
class NotApplicable extends Error {}

const short = (text, limit = 500) => {
  const t = String(text).replace(/\s+/g, ' ').trim()
  return t.length <= limit ? t : t.slice(0, limit - 3) + '...'
}
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const errText = e => {
  if (!e) return String(e)
  const parts = [`${e.name || 'Error'}: ${e.message}`]
  if (e.type) parts.push(`type ${e.type}`)
  if (e.code !== undefined) parts.push(`code ${e.code}`)
  if (e.cause && e.cause !== e) parts.push(`cause: ${errText(e.cause)}`)
  return parts.join(', ')
}

function emit(check, ok, detail, secs, na = false) {
  const line = { client: CLIENT, version: VERSION, check, ok, detail: short(detail) }
  if (na) line.na = true
  line.secs = Math.round(secs * 100) / 100
  process.stdout.write(JSON.stringify(line) + '\n')
}

// A check gets a context: its deadline, and a list of clients to disconnect when it ends (also
// when it times out, so nothing keeps running into the next check).
async function runCheck(name, fn) {
  const start = Date.now()
  const ctx = { deadline: start + CHECK_TIMEOUT * 1000, clients: [] }
  ctx.left = (capSecs = Infinity) => Math.max(100, Math.min(ctx.deadline - Date.now(), capSecs * 1000))
  ctx.track = client => (ctx.clients.push(client), client)
  let timer
  const timeout = new Promise(resolve => {
    timer = setTimeout(
      () => resolve({ ok: false, detail: `timed out after ${CHECK_TIMEOUT} s (a client call never returned)` }),
      (CHECK_TIMEOUT + 5) * 1000
    )
  })
  const work = (async () => {
    try {
      return { ok: true, detail: await fn(ctx) }
    } catch (e) {
      if (e instanceof NotApplicable) return { ok: false, detail: e.message, na: true }
      if (e instanceof Failed) return { ok: false, detail: e.message }
      return { ok: false, detail: errText(e) }
    }
  })()
  const result = await Promise.race([work, timeout])
  clearTimeout(timer)
  await Promise.race([Promise.allSettled(ctx.clients.map(c => c.disconnect())), sleep(5000)])
  emit(name, result.ok, result.detail, (Date.now() - start) / 1000, result.na)
}

// Poll cond() every 100 ms until it is true or the deadline passes; returns cond()'s last value.
async function until(ctx, cond, deadline = ctx.deadline) {
  for (;;) {
    const value = await cond()
    if (value || Date.now() > deadline) return value
    await sleep(100)
  }
}

async function connectedAdmin(ctx) {
  const admin = ctx.track(kafka.admin())
  await admin.connect()
  return admin
}

async function createTopic(ctx, topic, partitions) {
  const admin = await connectedAdmin(ctx)
  // false (not an error) when the topic already exists
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], timeout: ctx.left(15) })
  const ready = await until(ctx, async () => {
    try {
      const md = await admin.fetchTopicMetadata({ topics: [topic] })
      return md.topics[0] && md.topics[0].partitions.length === partitions
    } catch (e) {
      return false
    }
  })
  if (!ready) throw new Failed(`topic ${topic} never showed ${partitions} partitions in metadata`)
}

async function produceKeyed(ctx, topic, count, keyPrefix, producerConfig = {}) {
  const producer = ctx.track(kafka.producer({ allowAutoTopicCreation: false, ...producerConfig }))
  await producer.connect()
  const messages = []
  for (let i = 0; i < count; i++) messages.push({ key: `${keyPrefix}${i}`, value: `value-${i}` })
  try {
    return await producer.send({ topic, messages, acks: -1, timeout: ctx.left(20) })
  } catch (e) {
    throw new Failed(`send of ${count} records failed: ${errText(e)}`)
  } finally {
    await producer.disconnect()
  }
}

// Read a topic from the beginning up to the end offsets that admin.fetchTopicOffsets gives
// (ListOffsets with READ_COMMITTED, i.e. the last stable offsets). KafkaJS cannot assign
// partitions, so this is a fresh group that never commits. Returns the keys, in order.
async function readAll(ctx, topic, { readUncommitted = true, budgetSecs = Infinity } = {}) {
  const admin = await connectedAdmin(ctx)
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map(p => [p.partition, Number(p.offset)]))
  const position = new Map([...ends.keys()].map(p => [p, 0]))
  const keys = []
  const reader = ctx.track(
    kafka.consumer({ groupId: `${PREFIX}-reader-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`, readUncommitted })
  )
  await reader.connect()
  await reader.subscribe({ topic, fromBeginning: true })
  await reader.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) keys.push(m.key ? m.key.toString() : null)
      // lastOffset() also covers control records and filtered (aborted) ones.
      const next = Number(batch.lastOffset()) + 1
      if (next > position.get(batch.partition)) position.set(batch.partition, next)
    },
  })
  const readDeadline = Math.min(ctx.deadline - 2000, Date.now() + budgetSecs * 1000)
  const done = await until(ctx, () => [...ends].every(([p, end]) => position.get(p) >= end), readDeadline)
  await reader.disconnect()
  const ending = [...ends].map(([p, e]) => `${p}:${position.get(p)}/${e}`).join(' ')
  if (!done) throw new Failed(`read ${keys.length} records but did not reach the end offsets (partition:position/end ${ending})`)
  return keys
}

async function produceAndReadBack(ctx, topic, producerConfig) {
  await createTopic(ctx, topic, 3)
  await produceKeyed(ctx, topic, 100, 'k', producerConfig)
  const keys = await readAll(ctx, topic)
  const distinct = new Set(keys).size
  if (keys.length !== 100 || distinct !== 100)
    throw new Failed(`produced 100, read back ${keys.length} records (${distinct} distinct keys)`)
  return `100 acknowledged, 100 read back from 3 partitions (${distinct} distinct keys; reader: a throw-away group from the beginning, kafkajs has no assign)`
}

// --- the checks ---------------------------------------------------------------------------

async function checkMetadata(ctx) {
  const admin = await connectedAdmin(ctx)
  const cluster = await admin.describeCluster()
  const topics = await admin.listTopics()
  if (!cluster.brokers.length) throw new Failed('metadata lists no broker')
  const brokers = cluster.brokers.map(b => `${b.nodeId}@${b.host}:${b.port}`).join(', ')
  return `brokers [${brokers}], ${topics.length} topics`
}

const checkProduce = ctx => produceAndReadBack(ctx, `${PREFIX}-plain`, { idempotent: false })

const checkIdempotent = ctx =>
  produceAndReadBack(ctx, `${PREFIX}-idempotent`, { idempotent: true, maxInFlightRequests: 1 })

async function checkInvalidRecord(ctx) {
  const producer = ctx.track(kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } }))
  await producer.connect()
  try {
    const acks = await producer.send({
      topic: SCHEMA_TOPIC,
      messages: [{ value: Buffer.from([0x0a, 0xff, 0xff]) }],
      acks: -1,
      timeout: ctx.left(20),
    })
    throw new Failed(`the malformed value was accepted by ${SCHEMA_TOPIC}: ${JSON.stringify(acks)}`)
  } catch (e) {
    if (e instanceof Failed) throw e
    // The protocol error may come wrapped (retries exceeded): look down the cause chain.
    for (let err = e; err; err = err.cause !== err ? err.cause : null) {
      if (err.type === 'INVALID_RECORD' || err.code === 87) return `rejected: ${err.type} (${err.code}): ${err.message}`
    }
    throw new Failed(`rejected with ${errText(e)}, expected INVALID_RECORD (87)`)
  }
}

// Three members join first; once each holds a partition the 60 records are produced.
// (Producing first lets the first member to join read everything before the others arrive,
// which would not show that the group shares the work.)
async function checkGroup(ctx) {
  const topic = `${PREFIX}-group`
  const groupId = `${PREFIX}-group`
  await createTopic(ctx, topic, 3)
  const seen = new Set()
  const counts = [0, 0, 0]
  const assigned = [0, 0, 0]
  const errors = []
  const members = [0, 1, 2].map(i => {
    const c = ctx.track(kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000 }))
    c.on(c.events.GROUP_JOIN, e => {
      assigned[i] = (e.payload.memberAssignment[topic] || []).length
    })
    c.on(c.events.CRASH, e => errors.push(`member ${i} crashed: ${errText(e.payload.error)}`))
    return c
  })
  await Promise.all(
    members.map(async (c, i) => {
      await c.connect()
      await c.subscribe({ topic, fromBeginning: true })
      await c.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          counts[i] += 1
          seen.add(message.key.toString())
          await c.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }])
        },
      })
    })
  )
  // Wait (polling, bounded) until every member holds a partition, then produce.
  const settleUntil = Math.min(ctx.deadline - 20000, Date.now() + (CHECK_TIMEOUT * 1000) / 2)
  const settledOk = await until(ctx, () => assigned.every(n => n > 0) || errors.length > 0, settleUntil)
  const settled = settledOk && !errors.length
    ? '3 members held a partition each'
    : `partitions per member never reached 1/1/1 (last ${assigned.join('/')})`
  await produceKeyed(ctx, topic, 60, 'g')
  await until(ctx, () => seen.size >= 60 || errors.length >= 3)
  await Promise.all(members.map(c => c.disconnect()))
  const split = counts.join('/')
  if (seen.size < 60)
    throw new Failed(`${settled}; the group saw ${seen.size}/60 distinct keys (per member ${split}); errors: ${errors.slice(0, 2).join('; ')}`)

  // Committed offsets, asked with the client's own admin API, must reach the end of each partition.
  const admin = await connectedAdmin(ctx)
  const ends = (await admin.fetchTopicOffsets(topic)).sort((a, b) => a.partition - b.partition).map(p => Number(p.offset))
  let committed = []
  const reached = await until(ctx, async () => {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] })
    committed = t.partitions.sort((a, b) => a.partition - b.partition).map(p => Number(p.offset))
    return committed.join() === ends.join()
  }, Math.min(ctx.deadline, Date.now() + 10000)) // commits were made before leaving: 10 s is plenty
  if (!reached)
    throw new Failed(`${settled}; 60/60 seen (per member ${split}) but committed offsets [${committed}] != end offsets [${ends}]`)
  const note = errors.length ? `; errors seen: ${errors.slice(0, 2).join('; ')}` : ''
  return `${settled}; 60/60 distinct keys seen (records per member ${split}); committed offsets [${committed}] = end${note}`
}

async function checkTransactions(ctx) {
  const topic = `${PREFIX}-tx`
  await createTopic(ctx, topic, 3)
  const producer = ctx.track(
    kafka.producer({ transactionalId: `${PREFIX}-tx`, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
  )
  const problems = []
  const step = async (what, call) => {
    try {
      return { ok: true, value: await call() }
    } catch (e) {
      problems.push(`${what}: ${errText(e)}`)
      return { ok: false }
    }
  }
  const keyed = (kind, value) => Array.from({ length: 10 }, (_, i) => ({ key: `${kind}-${i}`, value }))

  if ((await step('connect', () => producer.connect())).ok) {
    // producer.transaction() runs InitProducerId (with the transactional id) the first time.
    const first = await step('transaction() for the commit', () => producer.transaction())
    if (first.ok) {
      const txn = first.value
      const sent = await step('send (commit txn)', () => txn.send({ topic, messages: keyed('commit', 'committed'), acks: -1 }))
      if (!sent.ok || !(await step('commit', () => txn.commit())).ok) {
        // What an application does after a failed send or commit: abort, then go on.
        await step('abort after the failure', () => txn.abort())
      }
    }
    const second = await step('transaction() for the abort', () => producer.transaction())
    if (second.ok) {
      const txn = second.value
      await step('send (abort txn)', () => txn.send({ topic, messages: keyed('abort', 'aborted'), acks: -1 }))
      await step('abort', () => txn.abort())
    }
  }
  await step('disconnect', () => producer.disconnect())

  // When a transaction was left open the last stable offset cannot move: do not wait the whole
  // check for it.
  let keys = []
  let readNote = ''
  try {
    keys = await readAll(ctx, topic, { readUncommitted: false, budgetSecs: problems.length ? 15 : Infinity })
  } catch (e) {
    readNote = `; read_committed reader: ${e.message}`
  }
  const committed = keys.filter(k => k.startsWith('commit-')).length
  const aborted = keys.filter(k => k.startsWith('abort-')).length
  const seen = `read_committed saw ${committed} committed + ${aborted} aborted records${readNote}`
  if (problems.length) throw new Failed(`${seen}; ${problems.join('; ')}`)
  if (readNote || committed !== 10 || aborted || keys.length !== 10) throw new Failed(`${seen}, expected exactly the 10 committed`)
  return `10 committed, 10 aborted; ${seen}`
}

const CHECKS = [
  ['metadata', checkMetadata],
  ['produce', checkProduce],
  ['idempotent', checkIdempotent],
  ['invalid_record', checkInvalidRecord],
  ['group', checkGroup],
  ['transactions', checkTransactions],
]

async function main() {
  const only = process.argv.slice(2)
  const names = CHECKS.map(([n]) => n)
  const unknown = only.filter(c => !names.includes(c))
  if (unknown.length) {
    process.stderr.write(`usage: kafkajs.js [check...]; unknown: ${unknown}; checks: ${names}\n`)
    process.exit(2)
  }
  for (const [name, fn] of CHECKS) {
    if (!only.length || only.includes(name)) await runCheck(name, fn)
  }
  // A check that timed out may have left a client running: do not wait for it.
  process.exit(0)
}

// A client error thrown outside any awaited promise must not kill the remaining checks.
process.on('unhandledRejection', e => process.stderr.write(`kafkajs.js: unhandled rejection: ${errText(e)}\n`))
process.on('uncaughtException', e => process.stderr.write(`kafkajs.js: uncaught exception: ${errText(e)}\n`))

main()
