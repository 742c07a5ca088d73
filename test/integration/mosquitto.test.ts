/**
 * Integration with a real broker: Veil bridges to a mosquitto process (MQTT 5 and 3.1.1) and a consumer on
 * mosquitto receives only the filtered messages; at protocol 5 each carries the `veil-policy` and `veil-category`
 * user properties. Needs the `mosquitto` binary: missing, the suite fails on CI and is skipped elsewhere.
 */
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { resolveConfig } from '../../gateway/src/config/config.ts'
import { Gateway } from '../../gateway/src/gateway.ts'
import type { PipelineResult } from '../../gateway/src/pipeline/envelope.ts'
import { silentLogger } from '../../gateway/src/telemetry/log.ts'
import { registry } from '../../simulators/registry.ts'
import type { SimDevice, SimMessage } from '../../simulators/index.ts'
import { connect, startGateway, tempDir } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'
import { findMosquitto, startMosquitto, type Mosquitto } from '../helpers/mosquitto.ts'
import { builtinPlugins } from '../../gateway/src/builtins.ts'

const binary = findMosquitto()
const onCI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false'
if (binary === undefined && onCI) {
  throw new Error(
    'mosquitto is required on CI for test/integration/mosquitto.test.ts: install it (apt-get install mosquitto) or set MOSQUITTO=/path/to/mosquitto',
  )
}
if (binary === undefined) {
  console.warn(
    'skipping test/integration/mosquitto.test.ts: no mosquitto binary (not on PATH, not in /usr/sbin); install mosquitto or set MOSQUITTO=/path/to/mosquitto',
  )
}

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0)
const SEED = 99
const LAYOUT = /^veil\/svc\/([a-z_]+)\/[a-z2-7]{26}\/[a-z_]+$/

interface Running {
  gateway: Gateway
  url: string
  processed: PipelineResult[]
  close(): Promise<void>
}

interface Got {
  topic: string
  payload: Buffer
  packet: IPublishPacket
}

describe.skipIf(binary === undefined)('bridge to a real mosquitto', () => {
  let mosquitto: Mosquitto
  let running: Running | undefined
  const clients: MqttClient[] = []

  beforeAll(async () => {
    mosquitto = await startMosquitto(binary as string)
  })

  afterAll(async () => {
    await mosquitto?.stop()
  })

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => {})))
    await running?.close()
    running = undefined
  })

  /**
   * Two clients on mosquitto (MQTT 5): the consumer subscribed to `veil/#`, and a sniffer on `#` that would see any
   * raw topic Veil let through.
   */
  async function consumers(): Promise<{ veil: Got[]; all: Got[] }> {
    const subscribe = async (filter: string): Promise<Got[]> => {
      const c = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000 })
      clients.push(c)
      const got: Got[] = []
      c.on('message', (topic, payload, packet) => got.push({ topic, payload: Buffer.from(payload), packet }))
      const granted = await c.subscribeAsync(filter, { qos: 1 })
      expect(granted.map((g) => g.qos)).toEqual([1])
      return got
    }
    return { veil: await subscribe('veil/#'), all: await subscribe('#') }
  }

  function sims(): { dev: SimDevice; clientId: string; messages: SimMessage[] }[] {
    return ['tasmota', 'frigate', 'owntracks', 'valetudo'].map((name) => {
      const entry = registry[name]
      const [dev] = entry!.profile.createDevices(1, SEED)
      const messages = [...dev!.start(T0), ...dev!.tick(T0 + 300_000), ...dev!.tick(T0 + 600_000)]
      return { dev: dev as SimDevice, clientId: entry!.identity(dev as SimDevice, T0).clientId, messages }
    })
  }

  /** Every simulated device publishes its messages at QoS 1; resolves once the gateway processed all of them. */
  async function publishDevices(r: Running): Promise<{ devices: SimDevice[]; expected: number; raw: string[] }> {
    const all = sims()
    let count = 0
    for (const s of all) {
      const c = await connect(r.url, { clientId: s.clientId })
      clients.push(c)
      for (const m of s.messages) await c.publishAsync(m.topic, m.payload, { qos: 1, retain: m.retain })
      count += s.messages.length
    }
    await until(() => r.processed.length === count, { timeoutMs: 10_000, what: `${count} raw messages processed` })
    const expected = r.processed.reduce((n, p) => n + p.outputs.filter((o) => o.domain === 'svc').length, 0)
    return {
      devices: all.map((s) => s.dev),
      expected,
      raw: [...new Set(all.flatMap((s) => s.messages.map((m) => m.topic)))],
    }
  }

  /**
   * Copies of the ingested messages, without the records that scheduled operators (energy windows, aggregates)
   * release on the gateway's clock: those leave whenever a window closes, e.g. when the test runs across an hour.
   */
  function live(got: Got[]): Got[] {
    return got.filter((m) => {
      const { data } = JSON.parse(m.payload.toString('utf8')) as { data?: unknown }
      return !(typeof data === 'object' && data !== null && 'window_start' in data)
    })
  }

  function checkContained(got: Got[], devices: SimDevice[], raw: string[], version: string): void {
    const forbidden = devices.flatMap((d) => [...d.canaries, d.id])
    for (const m of got) {
      expect(raw).not.toContain(m.topic)
      const match = LAYOUT.exec(m.topic)
      expect(match, m.topic).not.toBeNull()
      expect(m.packet.qos).toBe(1)
      expect(m.packet.retain).toBe(false)
      const doc = JSON.parse(m.payload.toString('utf8')) as Record<string, unknown>
      expect(Object.keys(doc).sort()).toEqual(['data', 'policy'])
      expect(doc.policy).toBe(version)
      const bytes = Buffer.concat([Buffer.from(m.topic), m.payload])
      expect(
        forbidden.filter((s) => bytes.includes(Buffer.from(s))),
        m.topic,
      ).toEqual([])
    }
  }

  it('MQTT 5 (--upstream svc=mqtt://...): filtered messages arrive with veil-policy and veil-category user properties', async () => {
    const { veil: got, all } = await consumers()
    const dir = tempDir()
    // Exactly what `veil start --upstream svc=<url>` resolves to (the flag's default protocol is 5).
    const resolved = resolveConfig(builtinPlugins, {
      listen: 'mqtt://127.0.0.1:0',
      http: '127.0.0.1:0',
      dataDir: dir.path,
      upstreams: [`svc=${mosquitto.url}`],
      allowAnonymous: true,
    })
    // The simulated tracker sends a few fixes from one place: learned stay zones would withhold them all (stay_zone).
    const config = { ...resolved, variables: { ...resolved.variables, stay_zones: false } }
    expect(config.domains.get('svc')?.upstream?.protocolVersion).toBe(5)
    const gateway = await Gateway.start(config, builtinPlugins, silentLogger())
    const processed: PipelineResult[] = []
    gateway.onProcessed((_t, _s, result) => processed.push(result))
    running = {
      gateway,
      url: `mqtt://127.0.0.1:${gateway.broker.address.port}`,
      processed,
      close: async () => {
        await gateway.close(1000)
        dir.remove()
      },
    }
    await until(() => gateway.bridges.get('svc')?.connected === true, {
      timeoutMs: 10_000,
      what: 'bridge connected to mosquitto',
    })

    const { devices, expected, raw } = await publishDevices(running)
    expect(expected).toBeGreaterThan(0)
    // The shipped policies hold minute-floored GPS fixes for the next minute boundary: run the gateway's clock there.
    await gateway.tick(Date.now() + 62_000)
    await until(() => live(got).length >= expected && all.length >= got.length, {
      timeoutMs: 10_000,
      what: `${expected} filtered messages on mosquitto`,
    })
    await until(() => gateway.bridges.get('svc')?.pending === 0, { timeoutMs: 5000, what: 'bridge drained' })
    expect(live(got)).toHaveLength(expected)
    expect(all.map((m) => m.topic)).toEqual(got.map((m) => m.topic))
    checkContained(got, devices, raw, gateway.policyVersion)

    const categories = new Set<string>()
    for (const m of got) {
      const category = (LAYOUT.exec(m.topic) as RegExpExecArray)[1] as string
      categories.add(category)
      expect(m.packet.properties?.userProperties).toEqual({
        'veil-policy': gateway.policyVersion,
        'veil-category': category,
      })
      expect(m.packet.properties?.contentType).toBe('application/json')
    }
    expect([...categories].sort()).toEqual(['camera', 'gps_tracker', 'robot_vacuum', 'smart_plug'])
  })

  it('MQTT 3.1.1: filtered messages arrive, stamped in the payload only', async () => {
    const { veil: got, all } = await consumers()
    const t = await startGateway({ upstreams: { svc: mosquitto.url }, protocolVersion: 4 })
    const processed: PipelineResult[] = []
    t.gateway.onProcessed((_t, _s, result) => processed.push(result))
    running = { gateway: t.gateway, url: t.url, processed, close: t.close }
    expect(t.gateway.bridges.get('svc')?.config.protocolVersion).toBe(4)
    await until(() => t.gateway.bridges.get('svc')?.connected === true, {
      timeoutMs: 10_000,
      what: 'bridge connected to mosquitto',
    })

    const { devices, expected, raw } = await publishDevices(running)
    expect(expected).toBeGreaterThan(0)
    await until(() => live(got).length >= expected && all.length >= got.length, {
      timeoutMs: 10_000,
      what: `${expected} filtered messages on mosquitto`,
    })
    await until(() => t.gateway.bridges.get('svc')?.pending === 0, { timeoutMs: 5000, what: 'bridge drained' })
    expect(live(got)).toHaveLength(expected)
    expect(all.map((m) => m.topic)).toEqual(got.map((m) => m.topic))
    checkContained(got, devices, raw, t.gateway.policyVersion)
    for (const m of got) expect(m.packet.properties?.userProperties).toBeUndefined()
  })
})
