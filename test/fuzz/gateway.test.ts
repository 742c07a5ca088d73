/**
 * A smaller fuzz through a real started gateway: while one well-behaved device publishes and one consumer
 * receives its filtered messages, hostile clients send random publishes with mqtt.js (random topics, reserved
 * topics, odd QoS and retain, payloads over the limits) and raw TCP clients send garbage and malformed MQTT
 * packets. The well-behaved pair must not lose a message, nothing raw or planted may reach the consumer, and the
 * gateway must still be up and ready at the end. Seeded and bounded in count and time.
 */
import { connect as netConnect, type Socket } from 'node:net'
import fc from 'fast-check'
import type { MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { DEFAULT_CONNECTION_LIMITS } from '../../gateway/src/auth/guard.ts'
import { findCanaries } from '../helpers/canary.ts'
import { connect, startGateway, type TestGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'
import { varint } from '../helpers/raw.ts'
import { canaryArb, randomTopicArb, topicArb } from './hostile.ts'
import { builtinProfiles } from '../../filters/profiles/index.ts'

const SEED = Number(process.env.FUZZ_SEED ?? 20_260_502)
const SENSOR = 'tele/tasmota_0329F7/SENSOR'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

function str(s: string | Buffer): number[] {
  const b = typeof s === 'string' ? Buffer.from(s) : s
  return [b.length >> 8, b.length & 0xff, ...b]
}

function packet(first: number, body: number[]): Buffer {
  return Buffer.from([first, ...varint(body.length), ...body])
}

const CONNECT = packet(0x10, [...str('MQTT'), 4, 0x02, 0, 30, ...str('raw-fuzz')])

/** MQTT's PINGREQ: what a raw session ends with, since the gateway's answer shows it read everything before. */
const PINGREQ = Buffer.from([0xc0, 0])

/** Malformed or hostile MQTT, each sent after a valid CONNECT (true) or as the first bytes (false). */
const MALFORMED: [string, boolean, Buffer][] = [
  ['topic length past the packet end', true, Buffer.from([0x30, 5, 0, 50, 0x61, 0x62, 0x63])],
  ['QoS 3', true, packet(0x36, [...str('tele/x/SENSOR'), 0, 1, 0x7b, 0x7d])],
  ['reserved packet type 0', true, Buffer.from([0x00, 0])],
  ['reserved packet type 15', true, Buffer.from([0xf0, 0])],
  ['a five-byte remaining length', true, Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f])],
  ['a 200 MiB publish header', true, Buffer.from([0x30, ...varint(200 * 1024 * 1024), 0, 1, 0x61])],
  [
    'a topic of invalid UTF-8',
    true,
    packet(0x30, [...str(Buffer.from([0x74, 0x65, 0x6c, 0x65, 0x2f, 0xff, 0xfe, 0x2f, 0x53])), 0x7b, 0x7d]),
  ],
  ['a topic with NUL', true, packet(0x30, [...str('tele/a\u0000b/SENSOR'), 0x7b, 0x7d])],
  ['a topic with a wildcard', true, packet(0x30, [...str('tele/#/SENSOR'), 0x7b, 0x7d])],
  ['an empty topic', true, packet(0x30, [...str(''), 0x7b, 0x7d])],
  ['a topic of 101 levels', true, packet(0x30, [...str(`${'a/'.repeat(100)}b`), 0x7b, 0x7d])],
  ['a publish into veil/', true, packet(0x30, [...str('veil/svc/smart_plug/x/sensor'), 0x7b, 0x7d])],
  ['a retained publish to $SYS', true, packet(0x31, [...str('$SYS/broker/x'), 0x7b, 0x7d])],
  ['subscribe to # with QoS 3', true, packet(0x82, [0, 1, ...str('#'), 3])],
  ['subscribe with no filters', true, packet(0x82, [0, 1])],
  ['a second CONNECT', true, CONNECT],
  ['PUBREL for an unknown id', true, Buffer.from([0x62, 2, 0x12, 0x34])],
  ['PUBACK with a bad length', true, Buffer.from([0x40, 5, 0, 1, 2, 3, 4])],
  ['QoS 2 publish then silence', true, packet(0x34, [...str(SENSOR), 0, 7, ...Buffer.from('{"ENERGY":{"Total":1}}')])],
  ['a publish before CONNECT', false, packet(0x30, [...str(SENSOR), 0x7b, 0x7d])],
  ['CONNECT with protocol name MQTX', false, packet(0x10, [...str('MQTX'), 4, 0x02, 0, 30, ...str('x')])],
  ['CONNECT with protocol level 9', false, packet(0x10, [...str('MQTT'), 9, 0x02, 0, 30, ...str('x')])],
  ['CONNECT with the reserved flag', false, packet(0x10, [...str('MQTT'), 4, 0x03, 0, 30, ...str('x')])],
  ['CONNECT with a will flag and no will', false, packet(0x10, [...str('MQTT'), 4, 0x06, 0, 30, ...str('x')])],
  ['CONNECT truncated', false, CONNECT.subarray(0, 9)],
  ['a client id of 70 000 bytes', false, packet(0x10, [...str('MQTT'), 4, 0x02, 0, 30, ...str('i'.repeat(60_000))])],
]

/**
 * Opens a TCP connection, writes `chunks`, then a PINGREQ, and ends its side; resolves once the gateway answered the
 * PINGREQ (so it read everything before it: TCP keeps the order) or closed the connection, then closes it. No fixed
 * time decides when a session is over. The end covers garbage that leaves a packet unfinished, which would swallow
 * the PINGREQ.
 */
async function rawSession(port: number, chunks: readonly Buffer[]): Promise<void> {
  const socket: Socket = netConnect(port, '127.0.0.1')
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  await Promise.race([new Promise<void>((resolve) => socket.once('connect', resolve)), closed])
  let received = Buffer.alloc(0)
  const ponged = new Promise<void>((resolve) =>
    socket.on('data', (data: Buffer) => {
      received = Buffer.concat([received, data])
      // PINGRESP is the last packet the gateway sends here; it ends what was received.
      if (received.length >= 2 && received[received.length - 2] === 0xd0 && received[received.length - 1] === 0)
        resolve()
    }),
  )
  for (const chunk of chunks) if (!socket.destroyed) socket.write(chunk)
  if (!socket.destroyed) socket.end(PINGREQ)
  await Promise.race([ponged, closed])
  socket.destroy()
}

describe('fuzz: a real gateway under garbage', () => {
  it('keeps serving a well-behaved device and consumer while hostile clients send garbage', async () => {
    // Hundreds of hostile connections from one address: the per-address connection rate limit (tested on its own in
    // test/security/limits.test.ts) would otherwise slow them into the test's time bound.
    const gw: TestGateway = await startGateway({
      limits: { payloadBytes: 64 * 1024 },
      security: {
        connections: {
          ...DEFAULT_CONNECTION_LIMITS,
          ratePerSecond: 100_000,
          burst: 100_000,
          failedLoginDelayMs: 0,
          failedLoginMaxDelayMs: 0,
        },
      },
    })
    cleanups.push(() => gw.close())
    const port = gw.gateway.broker.address.port
    const outcomes = new Map<string, number>()
    gw.gateway.onProcessed((_topic, _size, result) => {
      const outcome = result.dropped?.reason ?? 'passed'
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
    })
    const clients: MqttClient[] = []
    cleanups.push(() => Promise.all(clients.map((c) => c.endAsync(true).catch(() => {}))).then(() => {}))

    const consumer = await connect(gw.url, { clientId: 'consumer' })
    clients.push(consumer)
    const received: { topic: string; payload: string }[] = []
    consumer.on('message', (topic, payload) => received.push({ topic, payload: payload.toString('utf8') }))
    await consumer.subscribeAsync('veil/#', { qos: 1 })
    const device = await connect(gw.url, { clientId: 'tasmota_0329F7' })
    clients.push(device)

    // The well-behaved device publishes throughout: one reading per step of the attack, sent while the step runs
    // (not awaited by it), so the pace follows the attack rather than a clock. Each QoS 1 publish resolves once the
    // pipeline has taken it.
    const good: Promise<unknown>[] = []
    const goodReading = (): void => {
      good.push(
        device.publishAsync(
          SENSOR,
          JSON.stringify({
            Time: '2026-01-01T00:00:00',
            ENERGY: { Total: 12.5 + good.length, Yesterday: 0.31, Power: 42 },
          }),
          { qos: 1 },
        ),
      )
    }

    // Hostile mqtt.js publishers: topics from every profile's patterns and random ones, random payloads, all QoS.
    const canaries: string[] = []
    const topics = fc.oneof(
      randomTopicArb,
      ...builtinProfiles.flatMap((p) => Object.values(p.streams).map((s) => topicArb(s))),
    )
    const messages = fc.sample(
      fc.record({
        topic: topics,
        payload: fc.oneof(
          fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)),
          fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
          fc.integer({ min: 64 * 1024, max: 80 * 1024 }).map((n) => Buffer.alloc(n, 0x7b)),
          canaryArb.map((c) => Buffer.from(`{"name":"${c}","ssid":"${c}"}`)),
        ),
        qos: fc.constantFrom(0 as const, 1 as const, 2 as const),
        retain: fc.boolean(),
      }),
      { seed: SEED, numRuns: 240 },
    )
    for (let batch = 0; batch < messages.length; batch += 8) {
      goodReading()
      const hostile = await connect(gw.url, { clientId: `hostile-${batch}` })
      clients.push(hostile)
      hostile.on('error', () => {})
      // A batch is over once each publish was written (QoS 0) or acknowledged, or the gateway closed the connection
      // (then mqtt.js may keep the rest queued, never calling back).
      const closed = new Promise<void>((resolve) => hostile.once('close', () => resolve()))
      const written: Promise<void>[] = []
      for (const m of messages.slice(batch, batch + 8)) {
        canaries.push(...(m.topic.canaries ?? []))
        const text = m.payload.toString('utf8')
        for (const match of text.matchAll(/Cy[0-9A-F]{8}/g)) canaries.push(match[0])
        // A topic mqtt.js itself refuses (wildcards, empty) throws or errors locally: the broker never sees it.
        written.push(
          new Promise<void>((resolve) => {
            try {
              hostile.publish(m.topic.topic, m.payload, { qos: m.qos, retain: m.retain }, () => resolve())
            } catch {
              resolve() // refused by the client library
            }
          }),
        )
      }
      await Promise.race([Promise.all(written), closed])
    }

    // Raw garbage and malformed packets, in parallel groups of four.
    const sessions: Buffer[][] = [
      ...MALFORMED.map(([, afterConnect, bytes]) => (afterConnect ? [CONNECT, bytes] : [bytes])),
      ...fc
        .sample(fc.uint8Array({ minLength: 1, maxLength: 300 }), { seed: SEED + 1, numRuns: 30 })
        .map((b) => [Buffer.from(b)]),
      ...fc
        .sample(fc.uint8Array({ minLength: 1, maxLength: 300 }), { seed: SEED + 2, numRuns: 30 })
        .map((b) => [CONNECT, Buffer.from(b)]),
    ]
    for (let i = 0; i < sessions.length; i += 4) {
      goodReading()
      await Promise.all(sessions.slice(i, i + 4).map((chunks) => rawSession(port, chunks)))
    }

    await Promise.all(good)
    const sent = good.length
    // Every good publish was forwarded: the test policies give one svc and one ana copy of each reading.
    await until(() => received.filter((r) => r.topic.endsWith('/sensor')).length >= sent * 2, {
      timeoutMs: 10_000,
      what: 'every good reading at the consumer',
    })
    expect(sent).toBeGreaterThan(10)

    // The garbage got in and was judged: unknown topics, undecodable and oversized payloads, refused packets.
    for (const reason of ['unknown_topic', 'payload_too_large'])
      expect(outcomes.get(reason) ?? 0, reason).toBeGreaterThan(0)
    const refused = (await gw.gateway.metrics.dropped.get()).values
      .filter((v) => v.labels.reason === 'packet_too_large')
      .reduce((n, v) => n + v.value, 0)
    expect(refused).toBeGreaterThanOrEqual(2)
    if (process.env.FUZZ_VERBOSE) console.log(Object.fromEntries(outcomes), { sent, refused })

    for (const r of received) expect(r.topic.startsWith('veil/')).toBe(true)
    const text = received.map((r) => `${r.topic}\n${r.payload}`).join('\n')
    expect(findCanaries(text, [...new Set(canaries)])).toEqual([])
    expect(text).not.toMatch(/0329F7/i)

    // Still up: ready, and a new client connects and is served.
    expect(gw.gateway.readiness().ready).toBe(true)
    const late = await connect(gw.url, { clientId: 'tasmota_0329F7' })
    clients.push(late)
    const before = received.length
    await late.publishAsync(SENSOR, JSON.stringify({ ENERGY: { Total: 99, Yesterday: 0.5 } }), { qos: 1 })
    await until(() => received.length > before, { timeoutMs: 5000, what: 'a reading after the attack' })
  })
})
