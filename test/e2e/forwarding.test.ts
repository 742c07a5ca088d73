/**
 * Forwarding, end to end: a simulated device publishes to a real gateway over TCP, the gateway's mqtt.js bridges
 * publish the filtered copies to in-process upstream brokers at QoS 1. Covers the topic layout and pseudonyms, no
 * loss while connected, reconnection after an upstream restart, and /readyz following the upstream's state.
 */
import { createServer, type AddressInfo, type Server } from 'node:net'
import { Aedes, type AedesPublishPacket } from 'aedes'
import type { MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import type { Domain } from '../../gateway/src/sdk/model.ts'
import type { PipelineResult } from '../../gateway/src/pipeline/envelope.ts'
import { profiles, type SimDevice, type SimMessage } from '../../simulators/index.ts'
import { connect, startGateway, type TestGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'
import { freePort } from '../helpers/mosquitto.ts'

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0)
const SEED = 4242
const LAYOUT = /^veil\/(svc|ana|3p)\/([a-z_]+)\/([a-z2-7]{26})\/([a-z_]+)$/

interface Upstream {
  url: string
  port: number
  received: AedesPublishPacket[]
  close(): Promise<void>
}

/**
 * An aedes upstream on `port` (0: any free one). Unlike the shared helper, close() closes the broker (and with it
 * the bridge's connection) before the listener, so it can stop while the gateway is still connected.
 */
async function startUpstreamOn(port = 0): Promise<Upstream> {
  const aedes = await Aedes.createBroker({ id: 'test-upstream' })
  const received: AedesPublishPacket[] = []
  aedes.on('publish', (packet, client) => {
    if (client) received.push(packet)
  })
  const server: Server = createServer(aedes.handle)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', resolve)
  })
  const bound = (server.address() as AddressInfo).port
  let closing: Promise<void> | undefined
  return {
    url: `mqtt://127.0.0.1:${bound}`,
    port: bound,
    received,
    close: () =>
      (closing ??= (async () => {
        await new Promise<void>((resolve) => aedes.close(() => resolve()))
        await new Promise<void>((resolve) => server.close(() => resolve()))
      })()),
  }
}

let gw: TestGateway | undefined
const upstreams: Upstream[] = []
const clients: MqttClient[] = []

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => {})))
  await gw?.close()
  gw = undefined
  await Promise.all(upstreams.splice(0).map((u) => u.close()))
})

async function upstream(port = 0): Promise<Upstream> {
  const u = await startUpstreamOn(port)
  upstreams.push(u)
  return u
}

async function gateway(
  urls: Partial<Record<Domain, string>>,
): Promise<{ gw: TestGateway; processed: PipelineResult[] }> {
  gw = await startGateway({ upstreams: urls })
  const processed: PipelineResult[] = []
  gw.gateway.onProcessed((_t, _s, result) => processed.push(result))
  return { gw, processed }
}

async function device(url: string, clientId: string): Promise<MqttClient> {
  const c = await connect(url, { clientId })
  clients.push(c)
  return c
}

/** A real Tasmota SENSOR message of `dev`, with ENERGY.Yesterday replaced by `yesterday` to tell copies apart. */
function sensorWith(dev: SimDevice, yesterday: number, nowMs = T0): SimMessage {
  const sensor = dev.tick(nowMs).find((m) => m.topic.endsWith('/SENSOR'))
  if (sensor === undefined) throw new Error('the tasmota simulator sent no SENSOR')
  const doc = JSON.parse(sensor.payload.toString('utf8')) as { ENERGY: Record<string, unknown> }
  doc.ENERGY.Yesterday = yesterday
  return { ...sensor, payload: Buffer.from(JSON.stringify(doc)) }
}

function yesterdayOf(packet: AedesPublishPacket): number {
  const doc = JSON.parse(Buffer.from(packet.payload).toString('utf8')) as {
    policy: string
    data: { ENERGY: { Yesterday: number } }
  }
  return doc.data.ENERGY.Yesterday
}

async function readyz(httpUrl: string): Promise<{ status: number; checks: Record<string, boolean> }> {
  const res = await fetch(`${httpUrl}/readyz`)
  const body = (await res.json()) as { checks: Record<string, boolean> }
  return { status: res.status, checks: body.checks }
}

describe('forwarding to upstream brokers', () => {
  it('delivers filtered copies at QoS 1 as veil/<domain>/<category>/<pseudonym>/<stream>, one stable pseudonym per domain and device', async () => {
    const svc = await upstream()
    const ana = await upstream()
    const { gw } = await gateway({ svc: svc.url, ana: ana.url })
    await until(
      () => gw.gateway.bridges.get('svc')?.connected === true && gw.gateway.bridges.get('ana')?.connected === true,
      { timeoutMs: 5000, what: 'bridges connected' },
    )

    const devices = profiles.tasmota!.createDevices(2, SEED)
    const perDevice = 3
    for (const [i, dev] of devices.entries()) {
      const c = await device(gw.url, `DVES_${dev.id.slice(-6)}`)
      for (let j = 0; j < perDevice; j++) {
        const m = sensorWith(dev, i * 100 + j, T0 + j * 300_000)
        await c.publishAsync(m.topic, m.payload, { qos: 1 })
      }
    }
    const total = devices.length * perDevice
    await until(() => svc.received.length === total && ana.received.length === total, {
      timeoutMs: 10_000,
      what: `${total} copies on each upstream`,
    })

    // pseudonyms[domain][device index] = the set of pseudonyms seen
    const pseudonyms = new Map<string, Map<number, Set<string>>>()
    for (const [domain, up] of [
      ['svc', svc],
      ['ana', ana],
    ] as const) {
      const byDevice = new Map<number, Set<string>>()
      pseudonyms.set(domain, byDevice)
      for (const packet of up.received) {
        expect(packet.qos).toBe(1)
        expect(packet.retain).toBe(false)
        const match = LAYOUT.exec(packet.topic)
        expect(match, packet.topic).not.toBeNull()
        const [, d, category, pseudonym, stream] = match as RegExpExecArray
        expect([d, category, stream]).toEqual([domain, 'smart_plug', 'sensor'])
        const doc = JSON.parse(Buffer.from(packet.payload).toString('utf8')) as { policy: string; data: unknown }
        expect(doc.policy).toBe(gw.gateway.policyVersion)
        const y = yesterdayOf(packet)
        expect(doc.data).toEqual({ ENERGY: { Yesterday: y } })
        const index = Math.floor(y / 100)
        const set = byDevice.get(index) ?? new Set<string>()
        set.add(pseudonym as string)
        byDevice.set(index, set)
      }
      expect([...byDevice.keys()].sort()).toEqual([0, 1])
    }
    const one = (domain: string, i: number): string => {
      const set = pseudonyms.get(domain)?.get(i)
      expect(set?.size, `${domain} device ${i}: one pseudonym across messages`).toBe(1)
      return [...(set as Set<string>)][0] as string
    }
    for (const i of [0, 1]) expect(one('svc', i)).not.toBe(one('ana', i))
    expect(one('svc', 0)).not.toBe(one('svc', 1))
    expect(one('ana', 0)).not.toBe(one('ana', 1))
    for (const up of [svc, ana])
      for (const p of up.received) for (const c of devices.flatMap((d) => d.canaries)) expect(p.topic).not.toContain(c)
  })

  it('loses nothing while connected: 200 QoS 1 messages give exactly 200 svc and 200 ana copies', async () => {
    const svc = await upstream()
    const ana = await upstream()
    const { gw } = await gateway({ svc: svc.url, ana: ana.url })
    await until(
      () => gw.gateway.bridges.get('svc')?.connected === true && gw.gateway.bridges.get('ana')?.connected === true,
      { timeoutMs: 5000, what: 'bridges connected' },
    )

    const [dev] = profiles.tasmota!.createDevices(1, SEED)
    const c = await device(gw.url, 'DVES_CA11A7')
    const count = 200
    const values = Array.from({ length: count }, (_, k) => Number(((k + 1) / 1000).toFixed(3)))
    await Promise.all(
      values.map((v, k) => {
        const m = sensorWith(dev as SimDevice, v, T0 + k * 10_000)
        return c.publishAsync(m.topic, m.payload, { qos: 1 })
      }),
    )
    await until(() => svc.received.length >= count && ana.received.length >= count, {
      timeoutMs: 15_000,
      what: `${count} copies on each upstream`,
    })
    // Every copy acknowledged: nothing is still in flight that could arrive twice.
    await until(() => gw.gateway.bridges.get('svc')?.pending === 0 && gw.gateway.bridges.get('ana')?.pending === 0, {
      timeoutMs: 5000,
      what: 'bridges drained',
    })
    for (const up of [svc, ana]) {
      expect(up.received).toHaveLength(count)
      expect(up.received.map(yesterdayOf).sort((a, b) => a - b)).toEqual(values)
    }
  })

  it('reconnects after the upstream restarts on the same port and delivers what was queued meanwhile', async () => {
    const first = await upstream()
    const { gw } = await gateway({ svc: first.url })
    const bridge = gw.gateway.bridges.get('svc')
    if (bridge === undefined) throw new Error('no svc bridge')
    await until(() => bridge.connected, { timeoutMs: 5000, what: 'bridge connected' })
    const [dev] = profiles.tasmota!.createDevices(1, SEED)
    const c = await device(gw.url, 'DVES_CA11A7')
    const send = async (v: number): Promise<void> => {
      const m = sensorWith(dev as SimDevice, v)
      await c.publishAsync(m.topic, m.payload, { qos: 1 })
    }

    await send(1)
    await until(() => first.received.length === 1, { timeoutMs: 5000, what: 'first message upstream' })

    await first.close()
    await until(() => !bridge.connected, { timeoutMs: 5000, what: 'bridge noticed the upstream is gone' })
    await send(2) // while the upstream is down: queued in the bridge
    await until(() => bridge.pending === 1, { timeoutMs: 5000, what: 'message queued in the bridge' })

    const second = await upstream(first.port)
    await until(() => bridge.connected, { timeoutMs: 10_000, what: 'bridge reconnected' })
    await send(3)
    await until(() => second.received.length === 2, { timeoutMs: 5000, what: 'queued and new message upstream' })
    expect(second.received.map(yesterdayOf).sort()).toEqual([2, 3])
    expect(first.received.map(yesterdayOf)).toEqual([1])
    await until(() => bridge.pending === 0, { timeoutMs: 5000, what: 'bridge drained' })
  })

  it('/readyz is 503 while a required upstream is down and 200 while it is connected', async () => {
    const port = await freePort()
    const { gw } = await gateway({ svc: `mqtt://127.0.0.1:${port}` })
    const bridge = gw.gateway.bridges.get('svc')
    if (bridge === undefined) throw new Error('no svc bridge')

    expect(bridge.connected).toBe(false)
    expect(await readyz(gw.httpUrl)).toEqual({ status: 503, checks: { listener: true, upstream_svc: false } })

    const up = await upstream(port)
    await until(() => bridge.connected, { timeoutMs: 10_000, what: 'bridge connected' })
    expect(await readyz(gw.httpUrl)).toEqual({ status: 200, checks: { listener: true, upstream_svc: true } })

    await up.close()
    await until(async () => (await readyz(gw.httpUrl)).status === 503, {
      timeoutMs: 5000,
      what: '/readyz 503 after the upstream went away',
      intervalMs: 20,
    })
    expect((await readyz(gw.httpUrl)).checks.upstream_svc).toBe(false)

    await upstream(port)
    await until(async () => (await readyz(gw.httpUrl)).status === 200, {
      timeoutMs: 10_000,
      what: '/readyz 200 after the upstream came back',
      intervalMs: 20,
    })
  })
})

describe('device acknowledgement', () => {
  // broker.ts documents "the device's PUBACK (and its next read) waits for the returned promise", and Gateway#ingest
  // "Resolves when the device may be acked". A QoS 1 PUBACK therefore must not reach the device before the message
  // went through the pipeline.
  it('sends the PUBACK of a QoS 1 publish only after the pipeline processed the message', async () => {
    const { gw, processed } = await gateway({})
    const pipeline = gw.gateway.pipeline
    const original = pipeline.process.bind(pipeline)
    let entered = false
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => (release = resolve))
    pipeline.process = async (topic, payload, nowMs) => {
      entered = true
      await gate
      return original(topic, payload, nowMs)
    }
    // aedes writes the PUBACK once authorizePublish calls back: the hook's callback is the PUBACK's cause, so
    // watching it shows an early acknowledgement without waiting for one to (not) arrive.
    const aedes = gw.gateway.broker.aedes
    const authorizePublish = aedes.authorizePublish
    let authorized = false
    aedes.authorizePublish = function (this: unknown, client, packet, callback) {
      authorizePublish.call(this, client, packet, (err) => {
        authorized = true
        callback(err)
      })
    }
    try {
      const c = await device(gw.url, 'DVES_CA11A7')
      let acked = false
      const ack = c
        .publishAsync('tele/tasmota_CA11A7/SENSOR', '{"ENERGY":{"Yesterday":1.5}}', { qos: 1 })
        .then(() => (acked = true))
      await until(() => entered, { timeoutMs: 5000, what: 'pipeline entered' })
      expect(authorized, 'the publish was authorized (and so acknowledged) while the pipeline still held it').toBe(
        false,
      )
      expect(acked, 'PUBACK arrived while the message was still held before the pipeline').toBe(false)
      release()
      await ack
      expect(authorized).toBe(true)
      expect(processed).toHaveLength(1)
    } finally {
      release()
    }
  })
})
