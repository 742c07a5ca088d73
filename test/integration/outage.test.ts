/**
 * Chaos: a real mosquitto upstream is stopped by its PID and restarted on the same port in the middle of a steady
 * QoS 1 stream from three simulated plugs. Every filtered message must reach the consumer on mosquitto, in count
 * and content, and in order per device (first arrivals). Delivery is at least once: a message Veil sent whose
 * PUBACK was lost with the connection is sent again, so the consumer may see it twice; duplicates are counted and
 * removed by content (each message carries a unique ENERGY.Yesterday).
 *
 * What the test can show: Veil's side. mosquitto runs with persistence and the consumer with a persistent session,
 * and mosquitto is stopped with SIGTERM, so that mosquitto itself loses nothing it acknowledged (with SIGKILL it
 * may lose what it acknowledged but had not written to the consumer, which is mosquitto's loss, not Veil's).
 */
import { userInfo } from 'node:os'
import mqtt, { type MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { profiles, type SimDevice } from '../../simulators/index.ts'
import { connect, startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'
import { findMosquitto, startMosquitto, type Mosquitto } from '../helpers/mosquitto.ts'

const binary = findMosquitto()
const onCI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false'
if (binary === undefined && onCI) throw new Error('mosquitto is required on CI for test/integration/outage.test.ts')

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0)
const DEVICES = 3
/** Messages acknowledged before the outage, during it and after the restart: phases end on counts, not on time. */
const BEFORE = 150
const DURING = 60
const AFTER = 150
const LAYOUT = /^veil\/svc\/smart_plug\/([a-z2-7]{26})\/sensor$/

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** A Tasmota SENSOR of `dev` whose ENERGY.Yesterday is `value`, the message's identity through the pipeline. */
function sensor(dev: SimDevice, value: number): { topic: string; payload: Buffer } {
  const m = dev.tick(T0).find((x) => x.topic.endsWith('/SENSOR'))
  if (m === undefined) throw new Error('no SENSOR from the simulator')
  const doc = JSON.parse(m.payload.toString('utf8')) as { ENERGY: Record<string, unknown> }
  doc.ENERGY.Yesterday = value
  return { topic: m.topic, payload: Buffer.from(JSON.stringify(doc)) }
}

describe.skipIf(binary === undefined)('upstream outage with a real mosquitto', () => {
  it('stopping and restarting mosquitto mid-stream loses no filtered message and keeps each device in order', async () => {
    const state = tempDir('veil-mosquitto-db-')
    cleanups.push(() => state.remove())
    // `user`: started as root, mosquitto drops to the mosquitto user, which cannot write the private state directory.
    const conf = [
      'persistence true',
      `persistence_location ${state.path}/`,
      `user ${userInfo().username}`,
      'max_queued_messages 0',
      'max_inflight_messages 0',
    ]
    let mosquitto: Mosquitto = await startMosquitto(binary as string, { config: conf })
    const port = mosquitto.port
    cleanups.push(() => mosquitto.stop())

    // A persistent consumer session: what mosquitto holds for it survives the restart.
    const consumer: MqttClient = await mqtt.connectAsync(mosquitto.url, {
      clientId: 'outage-consumer',
      clean: false,
      protocolVersion: 4,
      reconnectPeriod: 100,
      connectTimeout: 5000,
    })
    cleanups.push(() => consumer.endAsync(true).catch(() => {}))
    const got: { topic: string; value: number }[] = []
    consumer.on('message', (topic, payload) => {
      const doc = JSON.parse(payload.toString('utf8')) as { data: { ENERGY: { Yesterday: number } } }
      got.push({ topic, value: doc.data.ENERGY.Yesterday })
    })
    await consumer.subscribeAsync('veil/#', { qos: 1 })

    const gw: TestGateway = await startGateway({
      upstreams: { svc: mosquitto.url },
      protocolVersion: 5,
      overrides: { reconnect: { minMs: 50, maxMs: 400 } },
    })
    cleanups.push(() => gw.close())
    const bridge = gw.gateway.bridges.get('svc')
    if (bridge === undefined) throw new Error('no svc bridge')
    await until(() => bridge.connected, { timeoutMs: 10_000, what: 'bridge connected' })

    const devices = profiles.tasmota!.createDevices(DEVICES, 777)
    const clients = await Promise.all(devices.map((d) => connect(gw.url, { clientId: `DVES_${d.id.slice(-6)}` })))
    for (const c of clients) cleanups.push(() => c.endAsync(true).catch(() => {}))
    let published = 0
    let stopping = false
    const sent = devices.map(() => 0)
    // Steady QoS 1 publishers, one per device, each sending its next message once the last one's PUBACK arrived (as
    // firmware does), until the test has seen each phase through.
    const publishers = devices.map(async (dev, d) => {
      const client = clients[d] as MqttClient
      for (let k = 1; !stopping; k++) {
        const m = sensor(dev, d * 10_000 + k)
        await client.publishAsync(m.topic, m.payload, { qos: 1 })
        sent[d] = k
        published++
      }
    })

    // Mid-stream: stop mosquitto, keep it down while devices go on publishing, restart it on the same port.
    await until(() => published >= BEFORE, { timeoutMs: 15_000, what: `${BEFORE} messages published` })
    const stopStarted = Date.now()
    await mosquitto.stop('SIGTERM', 15_000)
    // Stopped by itself, so it saved its database: the consumer's session (and what it holds for it) survives.
    expect(mosquitto.exitStatus(), mosquitto.output()).toEqual({ code: 0, signal: null })
    expect(mosquitto.output(), 'mosquitto saved its database').not.toMatch(/Error/)
    const firstOutput = `(stopped in ${Date.now() - stopStarted} ms) ${mosquitto.output().slice(-800)}`
    await until(() => !bridge.connected, { timeoutMs: 5000, what: 'bridge noticed the outage' })
    const atStop = published
    // Devices keep publishing (and being acknowledged) during the outage: wait for that, not for a time.
    await until(() => published >= atStop + DURING, {
      timeoutMs: 15_000,
      what: `${DURING} messages acknowledged during the outage`,
    })
    const ready = await fetch(`${gw.httpUrl}/readyz`)
    expect(ready.status).toBe(503)
    const body = (await ready.json()) as { upstreams: { svc: { state: string; queued: number } } }
    expect(body.upstreams.svc.state).toMatch(/^(connecting|backoff)$/)
    expect(body.upstreams.svc.queued).toBeGreaterThan(0)
    expect(await (await fetch(`${gw.httpUrl}/metrics`)).text()).toMatch(/^veil_upstream_connected\{domain="svc"\} 0$/m)

    mosquitto = await startMosquitto(binary as string, { port, config: conf })
    await until(() => bridge.connected, { timeoutMs: 10_000, what: 'bridge reconnected' })
    const atRestart = published
    await until(() => published >= atRestart + AFTER, {
      timeoutMs: 15_000,
      what: `${AFTER} messages after the restart`,
    })
    stopping = true
    await Promise.all(publishers)

    // Every message a device had acknowledged: 1 to sent[d] for device d.
    const expected = devices.flatMap((_, d) => Array.from({ length: sent[d] as number }, (_, k) => d * 10_000 + k + 1))
    const total = expected.length
    try {
      await until(() => new Set(got.map((g) => g.value)).size >= total, {
        timeoutMs: 20_000,
        what: `${total} distinct messages at the consumer`,
      })
    } catch (err) {
      const seen = new Set(got.map((g) => g.value))
      const missing = expected.filter((v) => !seen.has(v))
      throw new Error(
        `${(err as Error).message}: ${missing.length} missing (${missing.slice(0, 10).join(', ')}...), bridge ${bridge.state} with ${bridge.pending} queued, ` +
          `consumer ${consumer.connected ? 'connected' : 'disconnected'}; first mosquitto: ${firstOutput}; second: ${mosquitto.output().slice(-800)}`,
      )
    }
    await until(() => bridge.pending === 0, { timeoutMs: 10_000, what: 'queue drained' })

    const distinct = [...new Set(got.map((g) => g.value))].sort((a, b) => a - b)
    expect(distinct).toEqual(expected)
    for (const g of got) expect(g.topic).toMatch(LAYOUT)
    // One pseudonym per device, and each device's first arrivals in the order it published.
    const byDevice = new Map<number, { topics: Set<string>; firsts: number[]; seen: Set<number> }>()
    for (const g of got) {
      const d = Math.floor(g.value / 10_000)
      const entry = byDevice.get(d) ?? { topics: new Set(), firsts: [], seen: new Set() }
      byDevice.set(d, entry)
      entry.topics.add(g.topic)
      if (!entry.seen.has(g.value)) {
        entry.seen.add(g.value)
        entry.firsts.push(g.value)
      }
    }
    for (const [, entry] of byDevice) {
      expect(entry.topics.size).toBe(1)
      expect(entry.firsts).toEqual([...entry.firsts].sort((a, b) => a - b))
    }
    const duplicates = got.length - distinct.length
    console.info(
      `outage: ${total} messages, ${published} acknowledged to devices, ${got.length} arrivals, ${duplicates} duplicates (at least once)`,
    )
    // Duplicates are bounded by what can be in flight when the connection drops.
    expect(duplicates).toBeLessThanOrEqual(1000)
  }, 60_000)
})
