/**
 * Consent per person through a running gateway with a real mosquitto upstream (issue 15 parts 3, 4 and 6): a change
 * made with `veil consent` (a separate process, as a person's admin runs it) applies to the very next message; a
 * withdrawal reaches the copies already waiting in the durable queue; a region the person does not allow gets
 * nothing. Absence is shown by a sentinel published after the forbidden message on the same connection (MQTT keeps
 * order per client), never by a sleep.
 */
import { userInfo } from 'node:os'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { purposeBit } from '../../gateway/src/consent/book.ts'
import { ConsentLog } from '../../gateway/src/consent/log.ts'
import { SubjectRegistry } from '../../gateway/src/consent/registry.ts'
import { builtinProfiles } from '../../filters/profiles/index.ts'
import { cliHarness } from '../helpers/cli.ts'
import { connect, startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts'
import { findMosquitto, startMosquitto, type Mosquitto } from '../helpers/mosquitto.ts'
import { until } from '../helpers/poll.ts'

const binary = findMosquitto()
const onCI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false'
if (binary === undefined && onCI) throw new Error('mosquitto is required on CI for test/e2e/consent.test.ts')

const POLICIES = join(import.meta.dirname, 'testdata/policies-consent')
const ALICE_PLUG = 'tasmota_a11ce1'
const BOB_PLUG = 'tasmota_b0b001'
const HOUSE_PLUG = 'tasmota_40c5e1'
const { veil } = cliHarness({ tempPrefix: 'veil-consent-e2e-', policies: POLICIES })

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const sensor = (plug: string, n: number): [string, Buffer] => [
  `tele/${plug}/SENSOR`,
  Buffer.from(JSON.stringify({ ENERGY: { Total: 1000 + n, Yesterday: n } })),
]

interface Arrival {
  readonly topic: string
  readonly data: { ENERGY?: { Total?: number; Yesterday?: number } } | string
}

/** A consumer on the upstream: every filtered message, in arrival order. */
async function consumer(url: string): Promise<{ got: Arrival[]; client: MqttClient }> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000 })
  cleanups.push(() => client.endAsync(true).catch(() => {}))
  const got: Arrival[] = []
  client.on('message', (topic, payload) =>
    got.push({ topic, data: (JSON.parse(payload.toString('utf8')) as { data: Arrival['data'] }).data }),
  )
  await client.subscribeAsync('veil/#', { qos: 1 })
  return { got, client }
}

/** alice and bob each claim one plug, both with energy_15min for svc; the third plug is the household's. */
function subjects(dataDir: string, options: { aliceRegions?: string[] } = {}): void {
  const registry = SubjectRegistry.open(dataDir, builtinProfiles)
  registry.add({
    name: 'alice',
    devices: [{ profile: 'tasmota', deviceId: ALICE_PLUG }],
    minor: false,
    regions: options.aliceRegions,
  })
  registry.add({ name: 'bob', devices: [{ profile: 'tasmota', deviceId: BOB_PLUG }], minor: false })
  const log = ConsentLog.open(dataDir)
  for (const subject of ['alice', 'bob'])
    log.append({
      time: new Date().toISOString(),
      subject,
      purpose: 'energy_15min',
      domain: 'svc',
      granted: true,
      by: 'subject',
    })
}

function grants(gw: TestGateway, plug: string): boolean {
  const view = gw.gateway.consent.of('tasmota', plug)
  return ((view.granted[0] as number) & purposeBit('energy_15min')) !== 0
}

async function dropped(gw: TestGateway, reason: string): Promise<number> {
  const metric = await gw.gateway.metrics.dropped.get()
  return metric.values
    .filter((v) => (v.labels as Record<string, unknown>).reason === reason)
    .reduce((n, v) => n + v.value, 0)
}

describe.skipIf(binary === undefined)('consent through a running gateway and a real mosquitto upstream', () => {
  it('a withdrawal with veil consent applies to the very next message: the narrower policy, then nothing', async () => {
    const mosquitto: Mosquitto = await startMosquitto(binary as string)
    cleanups.push(() => mosquitto.stop())
    const { got } = await consumer(mosquitto.url)
    const data = tempDir('veil-consent-data-')
    cleanups.push(() => data.remove())
    subjects(data.path)
    const gw = await startGateway({ upstreams: { svc: mosquitto.url }, policies: POLICIES, dataDir: data.path })
    cleanups.push(() => gw.close())
    gw.gateway.watchConsent()
    const device = await connect(gw.url)
    cleanups.push(() => device.endAsync(true).catch(() => {}))
    const arrived = (n: number): boolean =>
      got.some((a) => typeof a.data !== 'string' && a.data.ENERGY?.Yesterday === n)

    await device.publishAsync(...sensor(ALICE_PLUG, 1), { qos: 1 })
    await until(() => arrived(1), { timeoutMs: 10_000, what: 'the first reading upstream' })
    expect(got.at(-1)?.data).toEqual({ ENERGY: { Total: 1001, Yesterday: 1 } })

    const withdraw = await veil(['consent', 'withdraw', 'alice', 'energy_15min', '--data-dir', data.path])
    expect(withdraw.code, withdraw.stderr).toBe(0)
    await until(() => !grants(gw, ALICE_PLUG), { timeoutMs: 10_000, what: 'the gateway to apply the withdrawal' })
    await device.publishAsync(...sensor(ALICE_PLUG, 2), { qos: 1 })
    await until(() => arrived(2), { timeoutMs: 10_000, what: 'the second reading upstream' })
    expect(got.at(-1)?.data).toEqual({ ENERGY: { Yesterday: 2 } })

    const stop = await veil(['consent', 'withdraw', 'alice', 'share_svc', '--domain', 'svc', '--data-dir', data.path])
    expect(stop.code, stop.stderr).toBe(0)
    await until(() => gw.gateway.consent.of('tasmota', ALICE_PLUG).blocked[0] === 'consent_withdrawn', {
      timeoutMs: 10_000,
      what: 'share_svc withdrawn',
    })
    await device.publishAsync(...sensor(ALICE_PLUG, 3), { qos: 1 })
    // The household's plug on the same connection, after alice's: once it arrived, alice's third reading would have.
    await device.publishAsync(...sensor(HOUSE_PLUG, 4), { qos: 1 })
    await until(() => arrived(4), { timeoutMs: 10_000, what: 'the sentinel upstream' })
    expect(arrived(3)).toBe(false)
    expect(await dropped(gw, 'consent_withdrawn')).toBe(1)
    // Two CLI processes (a few seconds each on a loaded machine): a watchdog, not a bound.
  }, 120_000)

  it('copies queued while the upstream is down are never sent after their purpose is withdrawn; the rest arrive in order', async () => {
    // The consumer's session outlives the outage (mosquitto with persistence, a clean: false session), so what the
    // bridge sends the moment the upstream is back reaches it, however fast the bridge reconnects.
    const state = tempDir('veil-consent-mosquitto-')
    cleanups.push(() => state.remove())
    const conf = ['persistence true', `persistence_location ${state.path}/`, `user ${userInfo().username}`]
    let mosquitto: Mosquitto = await startMosquitto(binary as string, { config: conf })
    const port = mosquitto.port
    cleanups.push(() => mosquitto.stop())
    const consumerClient = await mqtt.connectAsync(mosquitto.url, {
      clientId: 'consent-consumer',
      clean: false,
      protocolVersion: 4,
      reconnectPeriod: 100,
      connectTimeout: 5000,
    })
    cleanups.push(() => consumerClient.endAsync(true).catch(() => {}))
    const got: Arrival[] = []
    consumerClient.on('message', (topic, payload) =>
      got.push({ topic, data: (JSON.parse(payload.toString('utf8')) as { data: Arrival['data'] }).data }),
    )
    await consumerClient.subscribeAsync('veil/#', { qos: 1 })
    await mosquitto.stop()

    const data = tempDir('veil-consent-data-')
    cleanups.push(() => data.remove())
    subjects(data.path)
    const gw = await startGateway({
      upstreams: { svc: `mqtt://127.0.0.1:${port}` },
      policies: POLICIES,
      dataDir: data.path,
      overrides: { reconnect: { minMs: 50, maxMs: 200 } },
    })
    cleanups.push(() => gw.close())
    const bridge = gw.gateway.bridges.get('svc')
    if (bridge === undefined) throw new Error('no svc bridge')
    const device = await connect(gw.url)
    cleanups.push(() => device.endAsync(true).catch(() => {}))
    const N = 20
    for (let i = 1; i <= N; i++) {
      await device.publishAsync(...sensor(ALICE_PLUG, i), { qos: 1 })
      await device.publishAsync(...sensor(BOB_PLUG, 100 + i), { qos: 1 })
    }
    // alice's plug going offline: no consent needed for its LWT, so it still leaves.
    await device.publishAsync(`tele/${ALICE_PLUG}/LWT`, Buffer.from('Offline'), { qos: 1 })
    expect(bridge.pending).toBe(2 * N + 1)

    ConsentLog.open(data.path).append({
      time: new Date().toISOString(),
      subject: 'alice',
      purpose: 'energy_15min',
      domain: undefined,
      granted: false,
      by: 'subject',
    })
    expect(gw.gateway.reloadConsent().ok).toBe(true)

    mosquitto = await startMosquitto(binary as string, { port, config: conf })
    await until(() => bridge.pending === 0, { timeoutMs: 20_000, what: 'the queue to drain upstream' })
    await until(() => got.length >= N + 1, { timeoutMs: 20_000, what: "bob's readings and alice's LWT upstream" })

    const readings = got.flatMap((a) => (typeof a.data === 'string' ? [] : [a.data.ENERGY?.Yesterday]))
    expect(readings).toEqual(Array.from({ length: N }, (_, i) => 100 + i + 1))
    expect(got.filter((a) => a.data === 'Offline')).toHaveLength(1)
    expect(await dropped(gw, 'consent_withdrawn')).toBe(N)
  }, 120_000)

  it('a region the subject does not allow gets nothing (residency), and an upstream that declares none counts as unknown', async () => {
    const mosquitto: Mosquitto = await startMosquitto(binary as string)
    cleanups.push(() => mosquitto.stop())
    const { got } = await consumer(mosquitto.url)
    for (const [region, expected] of [
      ['US', false],
      [undefined, false],
      ['EU', true],
    ] as const) {
      const data = tempDir('veil-consent-data-')
      cleanups.push(() => data.remove())
      subjects(data.path, { aliceRegions: ['EU'] })
      const gw = await startGateway({
        upstreams: { svc: mosquitto.url },
        policies: POLICIES,
        dataDir: data.path,
        regions: region === undefined ? {} : { svc: region },
      })
      const device = await connect(gw.url)
      const before = got.length
      await device.publishAsync(...sensor(ALICE_PLUG, 7), { qos: 1 })
      await device.publishAsync(...sensor(BOB_PLUG, 8), { qos: 1 })
      await until(() => got.slice(before).some((a) => typeof a.data !== 'string' && a.data.ENERGY?.Yesterday === 8), {
        timeoutMs: 10_000,
        what: "bob's reading",
      })
      const alice = got.slice(before).some((a) => typeof a.data !== 'string' && a.data.ENERGY?.Yesterday === 7)
      expect(alice, `alice (EU only) to an upstream in ${region ?? 'no declared region'}`).toBe(expected)
      expect(await dropped(gw, 'residency')).toBe(expected ? 0 : 1)
      await device.endAsync(true)
      await gw.close()
    }
  })
})
