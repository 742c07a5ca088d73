/**
 * Message limits at the broker, over real TCP on loopback: the MQTT parser refuses a packet far over the payload
 * limit as soon as its header is read, one client's burst of publishes waits its turn instead of filling the
 * pipeline, and neither costs another client anything. The pipeline's own limits (topic, nesting, payload,
 * decompressed size) are tested in gateway/src/pipeline/pipeline.test.ts; the configuration keys here. mqtt.js
 * clients connect over in-memory streams (helpers/duplex.ts), through the same handler as the listeners; the raw
 * client that announces a 200 MiB packet over TCP.
 */
import { writeFileSync } from 'node:fs'
import { connect as netConnect, type Socket } from 'node:net'
import { join } from 'node:path'
import type { Client } from 'aedes'
import type { MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { resolveConfig, type GatewayLimits } from '../../gateway/src/config/config.ts'
import { DeviceBroker } from '../../gateway/src/ingest/broker.ts'
import {
  DEFAULT_INFLIGHT_PER_CLIENT,
  InflightGate,
  limitPacketSize,
  packetLimitFor,
} from '../../gateway/src/ingest/limits.ts'
import { DEFAULT_LIMITS } from '../../gateway/src/pipeline/pipeline.ts'
import { silentLogger } from '../../gateway/src/telemetry/log.ts'
import { Metrics } from '../../gateway/src/telemetry/metrics.ts'
import { connectOverPair, type StreamServer } from '../helpers/duplex.ts'
import { anonymousBrokerSecurity, startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'
import { varint } from '../helpers/raw.ts'
import { builtinPlugins } from '../../gateway/src/builtins.ts'

const SENSOR = 'tele/tasmota_0329F7/SENSOR'
const SENSOR_PAYLOAD = JSON.stringify({
  Time: '2026-01-01T00:00:00',
  ENERGY: { Total: 12.5, Yesterday: 0.31, Power: 42 },
})

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function gateway(limits: Partial<GatewayLimits> = {}): Promise<TestGateway> {
  const gw = await startGateway({ limits })
  cleanups.push(() => gw.close())
  return gw
}

async function client(server: StreamServer, clientId?: string): Promise<MqttClient> {
  const c = await connectOverPair(server, clientId === undefined ? {} : { clientId })
  cleanups.push(() => c.endAsync(true).catch(() => {}))
  return c
}

/** A subscriber to the filtered namespace and a device that publishes a Tasmota reading: the well-behaved pair. */
async function wellBehaved(server: StreamServer): Promise<{ check(): Promise<void> }> {
  const consumer = await client(server, 'consumer')
  const received: string[] = []
  consumer.on('message', (topic) => received.push(topic))
  await consumer.subscribeAsync('veil/#', { qos: 1 })
  const device = await client(server, 'tasmota_0329F7')
  return {
    async check() {
      const before = received.length
      await device.publishAsync(SENSOR, SENSOR_PAYLOAD, { qos: 1 })
      await until(() => received.length > before, { timeoutMs: 5000, what: 'the well-behaved device to be forwarded' })
    },
  }
}

async function dropped(gw: TestGateway, reason: string): Promise<number> {
  const metric = await gw.gateway.metrics.dropped.get()
  return metric.values.filter((v) => v.labels.reason === reason).reduce((n, v) => n + v.value, 0)
}

/** Rejects if `promise` has not settled after `ms`: a refused packet closes its connection at once. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)),
  )
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** A raw TCP client that has sent CONNECT (MQTT 3.1.1, clean session) and received its CONNACK. */
async function rawClient(port: number, clientId: string): Promise<Socket> {
  const socket = netConnect(port, '127.0.0.1')
  cleanups.push(() => void socket.destroy())
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  const id = Buffer.from(clientId)
  const body = Buffer.concat([Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 60, 0, id.length]), id])
  socket.write(Buffer.concat([Buffer.from([0x10, ...varint(body.length)]), body]))
  await new Promise<void>((resolve, reject) => {
    socket.once('data', (data) =>
      data[0] === 0x20 && data[3] === 0 ? resolve() : reject(new Error(`no CONNACK: ${data.toString('hex')}`)),
    )
    socket.once('close', () => reject(new Error('closed before CONNACK')))
  })
  return socket
}

describe('limits configuration', () => {
  it('has safe defaults', () => {
    const config = resolveConfig(builtinPlugins, {})
    expect(config.limits).toEqual({
      payloadBytes: 1_048_576,
      decompressedBytes: 16_777_216,
      topicBytes: 1024,
      topicLevels: 16,
      jsonDepth: 64,
      inflightPerClient: 16,
    })
    expect(packetLimitFor(config.limits)).toBe(1_048_576 + 1024 + 4096)
  })

  it('takes every limit from the configuration file', () => {
    const dir = tempDir()
    cleanups.push(() => dir.remove())
    const file = join(dir.path, 'veil.yaml')
    writeFileSync(
      file,
      'limits: { payloadBytes: 2048, decompressedBytes: 4096, topicBytes: 200, topicLevels: 8, jsonDepth: 12, inflightPerClient: 3 }\n',
    )
    expect(resolveConfig(builtinPlugins, { config: file }).limits).toEqual({
      payloadBytes: 2048,
      decompressedBytes: 4096,
      topicBytes: 200,
      topicLevels: 8,
      jsonDepth: 12,
      inflightPerClient: 3,
    })
  })

  it('refuses a limit out of range, naming the file and the path', () => {
    const dir = tempDir()
    cleanups.push(() => dir.remove())
    const file = join(dir.path, 'veil.yaml')
    for (const [key, value] of [
      ['topicLevels', 101],
      ['jsonDepth', 0],
      ['inflightPerClient', 0],
      ['topicBytes', 70_000],
    ] as const) {
      writeFileSync(file, `limits: { ${key}: ${value} }\n`)
      expect(() => resolveConfig(builtinPlugins, { config: file })).toThrow(
        new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*/limits/${key}`),
      )
    }
  })
})

describe('MQTT packet limit', () => {
  it('closes a connection whose packet header announces 200 MiB, before buffering its body; others carry on', async () => {
    const gw = await gateway()
    const good = await wellBehaved(gw.gateway.broker)
    const raw = await rawClient(gw.gateway.broker.address.port, 'hostile')
    const closed = new Promise<void>((resolve) => raw.once('close', () => resolve()))
    // PUBLISH QoS 0, remaining length 200 MiB, then only the first bytes of the body.
    raw.write(Buffer.from([0x30, ...varint(200 * 1024 * 1024), 0, 1, 0x74, 1, 2, 3]))
    await within(closed, 5000, 'the connection to close')
    expect(await dropped(gw, 'packet_too_large')).toBe(1)
    await good.check()
    expect(gw.gateway.readiness().ready).toBe(true)
  })

  it('disconnects an mqtt.js client publishing over the packet limit; a payload just over payloadBytes is only dropped', async () => {
    const gw = await gateway({ payloadBytes: 10_000 })
    const good = await wellBehaved(gw.gateway.broker)
    const limit = packetLimitFor({ ...DEFAULT_LIMITS, payloadBytes: 10_000 })

    const modest = await client(gw.gateway.broker, 'tasmota_modest')
    let modestClosed = false
    modest.on('close', () => (modestClosed = true))
    await modest.publishAsync('tele/tasmota_modest/SENSOR', Buffer.alloc(10_500, 0x20), { qos: 1 })
    // QoS 1: the PUBACK follows the pipeline, so the drop is counted by now.
    expect(await dropped(gw, 'payload_too_large')).toBe(1)
    expect(modestClosed).toBe(false)

    const hostile = await client(gw.gateway.broker, 'tasmota_hostile')
    const closed = new Promise<void>((resolve) => hostile.once('close', () => resolve()))
    hostile.publish('tele/tasmota_hostile/SENSOR', Buffer.alloc(limit + 1, 0x20), { qos: 0 })
    await within(closed, 5000, 'the connection to close')
    expect(await dropped(gw, 'packet_too_large')).toBe(1)
    await good.check()
  })
})

describe("topic levels past aedes' ceiling", () => {
  it('closes the connection of a publish with more than 100 levels and counts it; one with 17 is only dropped', async () => {
    const gw = await gateway()
    const good = await wellBehaved(gw.gateway.broker)
    const modest = await client(gw.gateway.broker, 'tasmota_levels')
    await modest.publishAsync(`tele/${'a/'.repeat(15)}SENSOR`, SENSOR_PAYLOAD, { qos: 1 })
    expect(await dropped(gw, 'too_many_topic_levels')).toBe(1)
    expect(modest.connected).toBe(true)

    const hostile = await client(gw.gateway.broker, 'tasmota_deep')
    const closed = new Promise<void>((resolve) => hostile.once('close', () => resolve()))
    hostile.publish(`tele/${'a/'.repeat(100)}SENSOR`, SENSOR_PAYLOAD, { qos: 0 })
    await within(closed, 5000, 'the connection to close')
    // aedes reports the refusal as it closes the connection, before the client sees the close.
    expect(await dropped(gw, 'too_many_topic_levels')).toBe(2)
    await good.check()
  })
})

describe('inflight publishes per client', () => {
  it('lets at most inflightPerClient of one client into the pipeline; the rest wait, none is lost, others go first', async () => {
    const limit = 3
    const entered: string[] = []
    let active = 0
    let maxActive = 0
    let release = (): void => {}
    const held = new Promise<void>((resolve) => (release = resolve))
    const dataDir = tempDir()
    cleanups.push(() => dataDir.remove())
    const broker = await DeviceBroker.start({
      host: '127.0.0.1',
      port: 0,
      flag: '--listen',
      logger: silentLogger(),
      metrics: new Metrics({ defaultMetrics: false }),
      limits: { inflightPerClient: limit, packetBytes: packetLimitFor(DEFAULT_LIMITS) },
      security: anonymousBrokerSecurity(dataDir.path),
      onRawPublish: async (topic) => {
        entered.push(topic)
        if (!topic.startsWith('flood/')) return
        maxActive = Math.max(maxActive, ++active)
        await held
        active--
      },
    })
    cleanups.push(() => broker.close())
    // Counts the publishes that reached the gate (aedes calls the hook per packet, without waiting for the last):
    // once all have, the ones past the limit are queued in it, so no fixed wait is needed to see that none got in.
    let reachedGate = 0
    const authorizePublish = broker.aedes.authorizePublish
    broker.aedes.authorizePublish = function (this: unknown, c, packet, callback) {
      if (packet.topic.startsWith('flood/')) reachedGate++
      authorizePublish.call(this, c, packet, callback)
    }
    const flooder = await client(broker, 'flooder')
    const other = await client(broker, 'other')
    const count = 200
    for (let i = 0; i < count; i++) flooder.publish(`flood/${i}`, 'x', { qos: 0 })
    await until(() => reachedGate === count && entered.length >= limit, {
      timeoutMs: 5000,
      what: 'every publish at the gate',
    })
    expect(entered.filter((t) => t.startsWith('flood/'))).toHaveLength(limit)

    await other.publishAsync('other/1', 'y', { qos: 1 })
    expect(entered).toContain('other/1')

    release()
    await until(() => entered.filter((t) => t.startsWith('flood/')).length === count, {
      timeoutMs: 5000,
      what: 'every held publish',
    })
    expect(maxActive).toBe(limit)
    // Each client's publishes keep their order.
    expect(entered.filter((t) => t.startsWith('flood/'))).toEqual(Array.from({ length: count }, (_, i) => `flood/${i}`))
  })

  it('reports a parser it cannot hook (an upgrade changed it), so the broker refuses the connection instead of running unlimited', () => {
    expect(limitPacketSize({} as Client, 1024, () => {})).toBe(false)
    expect(limitPacketSize({ _parser: { _parseLength: 1 } } as unknown as Client, 1024, () => {})).toBe(false)
  })

  it('defaults to 16 and releases waiting tasks in order, whether the running one resolves or rejects', async () => {
    expect(DEFAULT_INFLIGHT_PER_CLIENT).toBe(16)
    const gate = new InflightGate(1)
    const order: number[] = []
    const done = [
      gate.run(async () => {
        order.push(1)
        throw new Error('pipeline bug')
      }),
      gate.run(async () => void order.push(2)),
      gate.run(async () => void order.push(3)),
    ]
    expect(gate.active).toBe(1)
    expect(gate.waiting).toBe(2)
    await Promise.all(done)
    expect(order).toEqual([1, 2, 3])
    expect(gate.active + gate.waiting).toBe(0)

    // The callback form the broker uses: `after` runs once per task, in order, also for a task that throws at once.
    const after: string[] = []
    gate.runThen(
      async () => void order.push(4),
      () => after.push('a'),
    )
    gate.runThen(
      () => {
        throw new Error('synchronous bug')
      },
      () => after.push('b'),
    )
    gate.runThen(
      async () => void order.push(5),
      () => after.push('c'),
    )
    await until(() => after.length === 3, { timeoutMs: 5000, what: 'the three tasks to finish' })
    expect(after).toEqual(['a', 'b', 'c'])
    expect(order).toEqual([1, 2, 3, 4, 5])
    expect(gate.active + gate.waiting).toBe(0)
  })
})
