/**
 * Raw containment, end to end: real mqtt.js clients over TCP on loopback against a real gateway. Whatever a device
 * sends, no network client and no upstream ever sees a raw topic, a raw payload, a retained raw copy or a device
 * identifier; drops are counted and audited without values, and never cost a well-behaved device its connection.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { AedesPublishPacket } from 'aedes'
import type { IClientOptions, MqttClient } from 'mqtt'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { PipelineResult } from '../../gateway/src/pipeline/envelope.ts'
import type { SimDevice, SimMessage } from '../../simulators/index.ts'
import { registry } from '../../simulators/registry.ts'
import { connect, startGateway, startUpstream, type TestGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'
import { rawConnect } from '../helpers/raw.ts'

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0)
const TICK = 300_000
const SEED = 20_250_101
const PSEUDONYM = /^[a-z2-7]{26}$/

interface Received {
  topic: string
  payload: Buffer
  retain: boolean
  qos: number
}

let gw: TestGateway
let processed: PipelineResult[]
const clients: MqttClient[] = []
const cleanups: (() => Promise<void>)[] = []

beforeEach(async () => {
  gw = await startGateway()
  processed = []
  gw.gateway.onProcessed((_topic, _size, result) => processed.push(result))
})

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => {})))
  await gw.close()
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function client(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  const c = await connect(url, options)
  clients.push(c)
  return c
}

function collect(c: MqttClient): Received[] {
  const out: Received[] = []
  c.on('message', (topic, payload, packet) =>
    out.push({ topic, payload: Buffer.from(payload), retain: packet.retain, qos: packet.qos }),
  )
  return out
}

/** One simulated device of a profile with its real MQTT identity (client id, will) and its first messages. */
function device(profile: string, ticks = 2): { dev: SimDevice; options: IClientOptions; messages: SimMessage[] } {
  const entry = registry[profile]
  if (entry === undefined) throw new Error(`no simulator profile ${profile}`)
  const [dev] = entry.profile.createDevices(1, SEED)
  if (dev === undefined) throw new Error('no device')
  const identity = entry.identity(dev, T0)
  const options: IClientOptions = { clientId: identity.clientId, clean: identity.clean }
  if (identity.will !== undefined) {
    const w = identity.will
    options.will = { topic: w.topic, payload: w.payload, qos: w.qos, retain: w.retain }
  }
  const messages = [...dev.start(T0)]
  for (let i = 1; i <= ticks; i++) messages.push(...dev.tick(T0 + i * TICK))
  return { dev, options, messages }
}

/** Publishes at QoS 1 (so every PUBACK is awaited), keeping the firmware's retain flag. */
async function publishAll(c: MqttClient, messages: readonly SimMessage[]): Promise<void> {
  for (const m of messages) await c.publishAsync(m.topic, m.payload, { qos: 1, retain: m.retain })
}

/**
 * SUBSCRIBE and the SUBACK's return code per filter. mqtt.js rejects the promise when any code is a failure
 * (0x80); the SUBACK packet then travels on the error.
 */
async function suback(
  c: MqttClient,
  filters: Record<string, { qos: 0 | 1 | 2 }> | string,
): Promise<Record<string, number>> {
  const topics = typeof filters === 'string' ? [filters] : Object.keys(filters)
  const request = typeof filters === 'string' ? { [filters]: { qos: 1 as const } } : filters
  let granted: number[]
  try {
    granted = (await c.subscribeAsync(request)).map((g) => g.qos)
  } catch (err) {
    const codes = (err as { packet?: { granted?: number[] } }).packet?.granted
    if (codes === undefined) throw err
    granted = codes
  }
  expect(granted).toHaveLength(topics.length)
  return Object.fromEntries(topics.map((t, i) => [t, granted[i] as number]))
}

const outputsOf = (results: readonly PipelineResult[]): number => results.reduce((n, r) => n + r.outputs.length, 0)

/** Every identifying string of the devices: canaries and raw device ids (whole and per topic level). */
function forbiddenStrings(devices: readonly SimDevice[]): string[] {
  const out = new Set<string>()
  for (const d of devices) {
    for (const c of d.canaries) out.add(c)
    out.add(d.id)
    for (const level of d.id.split('/')) out.add(level)
  }
  return [...out]
}

function leaks(bytes: Buffer, forbidden: readonly string[]): string[] {
  return forbidden.filter((s) => bytes.includes(Buffer.from(s, 'utf8')))
}

describe('containment: raw data never leaves the gateway', () => {
  it('a # subscriber is refused and receives nothing; a veil/# subscriber gets only filtered, de-identified messages', async () => {
    const sniffer = await client(gw.url, { clientId: 'sniffer-hash' })
    const snifferGot = collect(sniffer)
    expect(await suback(sniffer, '#')).toEqual({ '#': 128 })

    const consumer = await client(gw.url, { clientId: 'consumer-veil' })
    const consumerGot = collect(consumer)
    expect(await suback(consumer, 'veil/#')).toEqual({ 'veil/#': 1 })

    const sims = ['tasmota', 'frigate', 'owntracks'].map((p) => device(p))
    let published = 0
    for (const sim of sims) {
      const dev = await client(gw.url, sim.options)
      await publishAll(dev, sim.messages)
      published += sim.messages.length
    }
    await until(() => processed.length === published, {
      timeoutMs: 10_000,
      what: `${published} raw messages processed`,
    })
    const expected = outputsOf(processed)
    await until(() => consumerGot.length === expected, {
      timeoutMs: 10_000,
      what: `${expected} filtered messages on veil/#`,
    })

    // The fixture really exercised forwarding for all three categories, and the raw data contained the canaries.
    const categories = new Set(consumerGot.map((m) => m.topic.split('/')[2]))
    expect([...categories].sort()).toEqual(['camera', 'gps_tracker', 'smart_plug'])
    const forbidden = forbiddenStrings(sims.map((s) => s.dev))
    const rawBytes = Buffer.concat(sims.flatMap((s) => s.messages.flatMap((m) => [Buffer.from(m.topic), m.payload])))
    for (const sim of sims) {
      expect(rawBytes.includes(Buffer.from(sim.dev.id)), `${sim.dev.id} is in the raw input`).toBe(true)
      expect(
        sim.dev.canaries.filter((c) => rawBytes.includes(Buffer.from(c))).length,
        `canaries of ${sim.dev.id} in the raw input`,
      ).toBeGreaterThanOrEqual(2)
    }

    for (const m of consumerGot) {
      const levels = m.topic.split('/')
      expect(levels[0]).toBe('veil')
      expect(levels).toHaveLength(5)
      expect(levels[3]).toMatch(PSEUDONYM)
      expect(m.retain).toBe(false)
      const doc = JSON.parse(m.payload.toString('utf8')) as Record<string, unknown>
      expect(Object.keys(doc).sort()).toEqual(['data', 'policy'])
      expect(leaks(Buffer.concat([Buffer.from(m.topic), m.payload]), forbidden), m.topic).toEqual([])
    }

    // Barrier: a raw delivery to the sniffer would have been written to its socket long before this round trip.
    await sniffer.unsubscribeAsync('#')
    expect(snifferGot).toEqual([])
  })

  it('refuses every filter that could match raw or broker topics and grants veil/ filters', async () => {
    const c = await client(gw.url, { clientId: 'wildcards' })
    const refused = [
      '#',
      '+/#',
      'tele/#',
      '$SYS/#',
      '+/+/SENSOR',
      '+',
      'tele/+/SENSOR',
      '$SYS/veil/new/clients',
      'veilx/#',
      '$share/g/veil/#',
    ]
    for (const filter of refused) expect(await suback(c, filter)).toEqual({ [filter]: 128 })
    // Several in one SUBSCRIBE: each gets its own return code.
    expect(await suback(c, { '+/#': { qos: 1 }, 'veil/svc/#': { qos: 1 }, 'tele/#': { qos: 0 } })).toEqual({
      '+/#': 128,
      'veil/svc/#': 1,
      'tele/#': 128,
    })
    for (const filter of ['veil/svc/#', 'veil/#', 'veil/+/smart_plug/+/sensor', 'veil'])
      expect(await suback(c, filter)).toEqual({ [filter]: 1 })
  })

  it('never stores a raw retained publish (nor a retained will)', async () => {
    const sim = device('tasmota', 1)
    const dev = sim.dev
    const lwt = `tele/${dev.id}/LWT`
    const sensor = sim.messages.find((m) => m.topic.endsWith('/SENSOR'))
    if (sensor === undefined) throw new Error('no SENSOR message')
    expect(sim.options.will?.retain).toBe(true)

    const plug = await client(gw.url, { ...sim.options, clientId: `${sim.options.clientId}-a` })
    let closed = false
    plug.on('close', () => (closed = true))
    await plug.publishAsync(lwt, 'Online', { qos: 1, retain: true })
    await plug.publishAsync(sensor.topic, sensor.payload, { qos: 1, retain: true })
    await until(() => processed.length === 2, { timeoutMs: 5000, what: 'two retained raw publishes processed' })
    // An unclean disconnect fires the retained will (tele/<id>/LWT "Offline", retain).
    plug.stream.destroy()
    await until(() => closed, { timeoutMs: 5000, what: 'device socket closed' })
    await until(() => processed.length === 3, { timeoutMs: 5000, what: 'the retained will processed' })
    // Retained raw was forwarded filtered, not dropped: the svc policy allows LWT, so the test is not vacuous.
    expect(processed.map((r) => r.stream)).toEqual(['lwt', 'sensor', 'lwt'])
    expect(processed.every((r) => r.outputs.length > 0)).toBe(true)

    const persistence = (
      gw.gateway.broker.aedes as unknown as {
        persistence: { createRetainedStreamCombi(patterns: string[]): AsyncIterable<AedesPublishPacket> }
      }
    ).persistence
    const retained = async (): Promise<string[]> => {
      const topics: string[] = []
      for await (const p of persistence.createRetainedStreamCombi(['#', '$SYS/#'])) topics.push(p.topic)
      return topics
    }
    expect(await retained()).toEqual([])

    // A client connecting afterwards: the raw topic is refused, veil/# delivers no retained message.
    const late = await client(gw.url, { clientId: 'late-subscriber' })
    const lateGot = collect(late)
    expect(await suback(late, { [lwt]: { qos: 1 }, 'veil/#': { qos: 1 } })).toEqual({ [lwt]: 128, 'veil/#': 1 })
    // Barrier: a fresh message published after the SUBACK arrives after any retained delivery would have.
    const before = processed.length
    const plugB = await client(gw.url, { clientId: `${sim.options.clientId}-b` })
    await plugB.publishAsync(sensor.topic, sensor.payload, { qos: 1 })
    await until(() => processed.length === before + 1, { timeoutMs: 5000, what: 'fresh message processed' })
    const fresh = processed[before]?.outputs.length ?? 0
    expect(fresh).toBeGreaterThan(0)
    await until(() => lateGot.length >= fresh, {
      timeoutMs: 5000,
      what: 'fresh filtered message at the late subscriber',
    })
    expect(lateGot.filter((m) => m.retain)).toEqual([])
    expect(lateGot.every((m) => m.topic.startsWith('veil/') && m.topic.endsWith('/sensor'))).toBe(true)
    expect(lateGot).toHaveLength(fresh)

    // Control: the reader does see what the broker retains, so the empty result above means something.
    await new Promise<void>((resolve) =>
      gw.gateway.broker.aedes.publish(
        { cmd: 'publish', topic: 'control/retained', payload: Buffer.from('x'), qos: 0, retain: true, dup: false },
        () => resolve(),
      ),
    )
    expect(await retained()).toEqual(['control/retained'])
  })

  it('sends nothing raw upstream: every upstream packet is veil/<domain>/... with a {policy,data} payload', async () => {
    await gw.close()
    const svc = await startUpstream()
    const ana = await startUpstream()
    cleanups.push(svc.close, ana.close)
    gw = await startGateway({ upstreams: { svc: svc.url, ana: ana.url } })
    processed = []
    gw.gateway.onProcessed((_t, _s, result) => processed.push(result))
    await until(
      () => gw.gateway.bridges.get('svc')?.connected === true && gw.gateway.bridges.get('ana')?.connected === true,
      { timeoutMs: 5000, what: 'bridges connected' },
    )

    const sims = ['tasmota', 'frigate', 'owntracks', 'valetudo', 'miscale'].map((p) => device(p))
    let published = 0
    for (const sim of sims) {
      const dev = await client(gw.url, sim.options)
      await publishAll(dev, sim.messages)
      published += sim.messages.length
    }
    await until(() => processed.length === published, {
      timeoutMs: 10_000,
      what: `${published} raw messages processed`,
    })
    const expectFor = (domain: string): number =>
      processed.reduce((n, r) => n + r.outputs.filter((o) => o.domain === domain).length, 0)
    const expectedSvc = expectFor('svc')
    const expectedAna = expectFor('ana')
    expect(expectedSvc).toBeGreaterThan(0)
    expect(expectedAna).toBeGreaterThan(0)
    await until(() => svc.received.length === expectedSvc && ana.received.length === expectedAna, {
      timeoutMs: 10_000,
      what: 'every filtered copy upstream',
    })

    const forbidden = forbiddenStrings(sims.map((s) => s.dev))
    const version = gw.gateway.policyVersion
    for (const [domain, upstream] of [
      ['svc', svc],
      ['ana', ana],
    ] as const) {
      for (const packet of upstream.received) {
        expect(packet.topic.startsWith(`veil/${domain}/`), packet.topic).toBe(true)
        expect(packet.topic.split('/')[3]).toMatch(PSEUDONYM)
        expect(packet.qos).toBe(1)
        expect(packet.retain).toBe(false)
        const payload = Buffer.from(packet.payload)
        const doc = JSON.parse(payload.toString('utf8')) as Record<string, unknown>
        expect(Object.keys(doc).sort()).toEqual(['data', 'policy'])
        expect(doc.policy).toBe(version)
        expect(leaks(Buffer.concat([Buffer.from(packet.topic), payload]), forbidden), packet.topic).toEqual([])
      }
    }
  })

  it('drops unknown, undecodable, invalid and non-UTF-8 messages without disconnecting the device, and audits them without values', async () => {
    const consumer = await client(gw.url, { clientId: 'consumer' })
    const got = collect(consumer)
    await consumer.subscribeAsync('veil/#', { qos: 1 })

    const dev = await client(gw.url, { clientId: 'DVES_D80901' })
    const events: string[] = []
    for (const event of ['close', 'offline', 'disconnect', 'error', 'end'] as const)
      dev.on(event, () => events.push(event))

    const id = 'tasmota_D80901'
    const bad: [string, Buffer][] = [
      ['acme/D80901/LeakySecretTopic', Buffer.from('{"value":"LeakyValue-1"}')],
      [`tele/${id}/SENSOR`, Buffer.from('{"ENERGY":{"Yesterday":"LeakyValue-2"')],
      [`tele/${id}/SENSOR`, Buffer.from('{"ENERGY":{"Yesterday":"LeakyValue-3"}}')],
      [
        `tele/${id}/SENSOR`,
        Buffer.concat([
          Buffer.from('{"ENERGY":{"Yesterday":1.5},"Note":"LeakyValue-4'),
          Buffer.from([0xc3, 0x28, 0xff]),
          Buffer.from('"}'),
        ]),
      ],
    ]
    for (const [topic, payload] of bad) {
      // Resolves on the PUBACK; a refused publish would reject or never resolve (bounded by the test timeout).
      await dev.publishAsync(topic, payload, { qos: 1 })
    }
    await dev.publishAsync(
      `tele/${id}/SENSOR`,
      '{"Time":"2025-01-01T12:00:00","ENERGY":{"Yesterday":4.321,"Power":17}}',
      { qos: 1 },
    )
    await until(() => processed.length === 5, { timeoutMs: 5000, what: 'five messages processed' })
    expect(processed.slice(0, 4).map((r) => r.dropped?.reason)).toEqual([
      'unknown_topic',
      'undecodable',
      'invalid',
      'undecodable',
    ])
    await until(() => got.length === 2, { timeoutMs: 5000, what: 'the valid message forwarded to svc and ana' })
    expect(got.map((m) => m.topic.split('/')[1]).sort()).toEqual(['ana', 'svc'])
    for (const m of got) expect(JSON.parse(m.payload.toString('utf8')).data).toEqual({ ENERGY: { Yesterday: 4.321 } })
    expect(events).toEqual([])
    expect(dev.connected).toBe(true)
    // One more round trip: the connection is still usable after all the drops.
    await dev.publishAsync(`tele/${id}/LWT`, 'Online', { qos: 1 })
    expect(events).toEqual([])

    const metrics = await gw.gateway.metrics.registry.getSingleMetricAsString('veil_messages_dropped_total')
    const count = (stage: string, reason: string): number => {
      const line = metrics.split('\n').find((l) => l.includes(`stage="${stage}"`) && l.includes(`reason="${reason}"`))
      return line === undefined ? 0 : Number(line.split(' ').pop())
    }
    expect(count('classify', 'unknown_topic')).toBe(1)
    expect(count('decode', 'undecodable')).toBe(2)
    expect(count('validate', 'invalid')).toBe(1)

    const file = join(gw.dataDir, 'audit.jsonl')
    const read = (): string => {
      try {
        return readFileSync(file, 'utf8')
      } catch {
        return ''
      }
    }
    await until(
      () =>
        read()
          .split('\n')
          .filter((l) => l !== '').length >= 4,
      { timeoutMs: 5000, what: 'audit lines written' },
    )
    const text = read()
    const lines = text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    const reasons = lines.map((l) => l.reason)
    expect(reasons).toEqual(expect.arrayContaining(['unknown_topic', 'undecodable', 'invalid']))
    expect(reasons.filter((r) => r === 'undecodable')).toHaveLength(2)
    for (const line of lines) {
      for (const key of Object.keys(line))
        expect(['time', 'stage', 'category', 'domain', 'reason', 'policy', 'seq', 'prev']).toContain(key)
      expect(line.policy).toBe(gw.gateway.policyVersion)
    }
    for (const value of ['LeakyValue', 'LeakySecretTopic', 'D80901', 'acme', '4.321', 'Yesterday'])
      expect(text).not.toContain(value)
  })

  it.each([
    { name: 'veil/ at QoS 1', topic: 'veil/svc/smart_plug/aaaaaaaaaaaaaaaaaaaaaaaaaa/sensor', qos: 1 as const },
    { name: 'veil/ at QoS 0', topic: 'veil/svc/smart_plug/aaaaaaaaaaaaaaaaaaaaaaaaaa/sensor', qos: 0 as const },
    { name: 'the bare veil topic', topic: 'veil', qos: 1 as const },
    { name: '$SYS', topic: '$SYS/veil/new/clients', qos: 1 as const },
  ])('disconnects a device that publishes into $name and delivers nothing of it', async ({ topic, qos }) => {
    const consumer = await client(gw.url, { clientId: 'consumer' })
    const got = collect(consumer)
    await consumer.subscribeAsync('veil/#', { qos: 1 })

    const forger = await client(gw.url, { clientId: 'forger' })
    let closed = false
    forger.on('close', () => (closed = true))
    forger.on('error', () => {})
    forger.publish(topic, '{"policy":"forged","data":{"ENERGY":{"Yesterday":666}}}', { qos }, () => {})
    await until(() => closed, { timeoutMs: 5000, what: 'the forger disconnected' })
    expect(forger.connected).toBe(false)

    // Barrier: an honest device's message published afterwards is delivered; the forged one never was.
    const honest = await client(gw.url, { clientId: 'DVES_E00001' })
    await honest.publishAsync('tele/tasmota_E00001/SENSOR', '{"ENERGY":{"Yesterday":1.25}}', { qos: 1 })
    await until(() => got.length === 2, { timeoutMs: 5000, what: 'the honest message on svc and ana' })
    for (const m of got) {
      expect(m.payload.toString('utf8')).not.toContain('forged')
      expect(m.topic).not.toBe(topic)
    }
    expect(processed).toHaveLength(1)
  })

  it('never delivers a will that impersonates Veil (will topic under veil/)', async () => {
    const consumer = await client(gw.url, { clientId: 'consumer' })
    const got = collect(consumer)
    await consumer.subscribeAsync('veil/#', { qos: 1 })

    const forger = await client(gw.url, {
      clientId: 'will-forger',
      will: {
        topic: 'veil/svc/smart_plug/aaaaaaaaaaaaaaaaaaaaaaaaaa/lwt',
        payload: Buffer.from('{"policy":"forged","data":"Offline"}'),
        qos: 1,
        retain: true,
      },
    })
    // The broker handles the will (authorizePublish, then publish) before it reports the client disconnected.
    let gone = false
    gw.gateway.broker.aedes.on('clientDisconnect', (c) => {
      if (c.id === 'will-forger') gone = true
    })
    forger.stream.destroy() // unclean: the broker would publish the will
    await until(() => gone, { timeoutMs: 5000, what: 'the broker saw the forger go' })

    const honest = await client(gw.url, { clientId: 'DVES_E00002' })
    await honest.publishAsync('tele/tasmota_E00002/SENSOR', '{"ENERGY":{"Yesterday":2.5}}', { qos: 1 })
    await until(() => got.length >= 2, { timeoutMs: 5000, what: 'the honest message on svc and ana' })
    expect(got).toHaveLength(2)
    for (const m of got) expect(m.payload.toString('utf8')).not.toContain('forged')
    expect(processed).toHaveLength(1)
  })

  it('refuses an empty client id with a persistent session at CONNECT [MQTT-3.1.3-8]', async () => {
    const result = await rawConnect(gw.gateway.broker.address.port, { clientId: '', clean: false })
    // The server must answer CONNACK 0x02 (identifier rejected) and then close the connection.
    expect(result.closed).toBe(true)
    expect(result.returnCode).toBe(2)
  })

  it('never accepts an empty client id with a persistent session, and still accepts one with a clean session', async () => {
    const refused = await rawConnect(gw.gateway.broker.address.port, { clientId: '', clean: false })
    expect(refused.closed).toBe(true)
    expect(refused.returnCode).not.toBe(0)
    expect(gw.gateway.broker.aedes.connectedClients).toBe(0)

    const accepted = await rawConnect(gw.gateway.broker.address.port, { clientId: '', clean: true })
    expect(accepted.returnCode).toBe(0)
  })
})
