/**
 * Every refusal of the access rules, with real mqtt.js clients over TCP against a started gateway that refuses
 * anonymous clients: CONNACK codes for logins, SUBACK 0x80 for subscriptions, and for publishes (MQTT 3.1.1 has no
 * refusal code) acknowledged, dropped, counted and audited, with nothing forwarded. Logs never hold a secret.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { IClientOptions, MqttClient } from 'mqtt'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CredentialStore } from '../../gateway/src/auth/store.ts'
import { resolveConfig, type GatewayConfig } from '../../gateway/src/config/config.ts'
import { Gateway } from '../../gateway/src/gateway.ts'
import { createLogger } from '../../gateway/src/telemetry/log.ts'
import { TEST_POLICIES, tempDir } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'
import { throughSentinel } from '../helpers/sentinel.ts'
import { rawConnect } from '../helpers/raw.ts'
import { builtinPlugins } from '../../gateway/src/builtins.ts'

const SENSOR = JSON.stringify({
  Time: '2025-01-01T12:00:00',
  ENERGY: { Total: 431.927, Yesterday: 1.204, Today: 0.377, Power: 12 },
})
/** Lower scrypt cost than the default so that a dozen logins stay fast on a shared machine; the code path is the same. */
const FAST_SCRYPT = { N: 2 ** 12 }

let dir: { path: string; remove(): void }
let gateway: Gateway
let url: string
let logText = ''
const pw: Record<string, string> = {}
const clients: MqttClient[] = []

beforeAll(async () => {
  dir = tempDir('veil-roles-')
  const store = CredentialStore.open(dir.path)
  const add = async (name: string, entry: Parameters<CredentialStore['add']>[0]): Promise<void> => {
    pw[name] = await store.add(entry, { scrypt: FAST_SCRYPT })
  }
  await add('tasmota_A', { name: 'tasmota_A', role: 'device', profile: 'tasmota' })
  await add('tasmota_B', { name: 'tasmota_B', role: 'device', profile: 'tasmota' })
  await add('svc-app', { name: 'svc-app', role: 'consumer', domain: 'svc' })
  await add('ha', { name: 'ha', role: 'local' })
  await add('root', { name: 'root', role: 'admin' })
  const base = resolveConfig(builtinPlugins, {
    listen: 'mqtt://127.0.0.1:0',
    http: '127.0.0.1:0',
    dataDir: dir.path,
    policies: TEST_POLICIES,
  })
  expect(base.security.allowAnonymous).toBe(false)
  const config: GatewayConfig = {
    ...base,
    security: {
      ...base.security,
      connections: { ...base.security.connections, failedLoginDelayMs: 10, failedLoginMaxDelayMs: 10 },
    },
  }
  const sink = new Writable({ write: (chunk: Buffer, _e, done) => ((logText += chunk.toString('utf8')), done()) })
  gateway = await Gateway.start(config, builtinPlugins, createLogger('trace', sink))
  url = `mqtt://127.0.0.1:${gateway.broker.address.port}`
}, 60_000)

afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => {})))
  await gateway?.close(1000)
  dir?.remove()
})

/** The CONNACK return code: 0 on success (the client is kept for the test), else the refusal code. */
async function login(options: IClientOptions): Promise<{ code: number; client?: MqttClient }> {
  try {
    const client = await mqtt.connectAsync(url, {
      reconnectPeriod: 0,
      connectTimeout: 5000,
      protocolVersion: 4,
      ...options,
    })
    clients.push(client)
    return { code: 0, client }
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (typeof code !== 'number') throw err
    return { code }
  }
}

async function as(name: string, options: IClientOptions = {}): Promise<MqttClient> {
  const { code, client } = await login({
    username: name,
    password: pw[name],
    clientId: `${name.replace('/', '_')}-${clients.length}`,
    ...options,
  })
  expect(code).toBe(0)
  return client as MqttClient
}

async function suback(c: MqttClient, filter: string): Promise<number> {
  try {
    return ((await c.subscribeAsync(filter, { qos: 1 }))[0] as { qos: number }).qos
  } catch (err) {
    const codes = (err as { packet?: { granted?: number[] } }).packet?.granted
    if (codes === undefined) throw err
    return codes[0] as number
  }
}

function collect(c: MqttClient): { topic: string; payload: string }[] {
  const got: { topic: string; payload: string }[] = []
  c.on('message', (topic, payload) => got.push({ topic, payload: payload.toString('utf8') }))
  return got
}

async function metric(name: string): Promise<string> {
  return (await gateway.metrics.registry.getSingleMetricAsString(name)) ?? ''
}

function auditLines(): { stage: string; reason: string }[] {
  return readFileSync(join(dir.path, 'audit.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { stage: string; reason: string })
}

describe('logins', () => {
  it('refuses anonymous clients with CONNACK 5 (not authorized): secure by default', async () => {
    expect((await login({ clientId: 'anon' })).code).toBe(5)
  })

  it('refuses a wrong password, an unknown user and a missing password with CONNACK 4', async () => {
    expect((await login({ clientId: 'w1', username: 'tasmota_A', password: `${pw.tasmota_A}x` })).code).toBe(4)
    expect((await login({ clientId: 'w2', username: 'nobody', password: 'whatever-it-is' })).code).toBe(4)
    expect((await login({ clientId: 'w3', username: 'tasmota_A' })).code).toBe(4)
    // Another account's password does not open this one.
    expect((await login({ clientId: 'w4', username: 'tasmota_A', password: pw.tasmota_B })).code).toBe(4)
  })

  it('refuses an empty client id with a persistent session ([MQTT-3.1.3-8]) with CONNACK 2, even with valid credentials', async () => {
    // mqtt.js will not send this CONNECT: it is written by hand.
    const port = gateway.broker.address.port
    expect(
      (await rawConnect(port, { clientId: '', clean: false, username: 'tasmota_A', password: pw.tasmota_A }))
        .returnCode,
    ).toBe(2)
    expect(
      (await rawConnect(port, { clientId: '', clean: true, username: 'tasmota_A', password: pw.tasmota_A })).returnCode,
    ).toBe(0)
  })

  it('counts refused logins by reason, never by name', async () => {
    const text = await metric('veil_auth_refusals_total')
    expect(text).toMatch(/veil_auth_refusals_total\{stage="login",reason="anonymous_refused"\} [1-9]/)
    expect(text).toMatch(/veil_auth_refusals_total\{stage="login",reason="bad_credentials"\} [4-9]/)
    expect(text).toMatch(/veil_auth_refusals_total\{stage="login",reason="identifier_rejected"\} 1/)
    expect(text).not.toContain('tasmota_A')
  })
})

describe('devices', () => {
  it("forward their own telemetry; another device's topic is acknowledged, dropped, counted and audited", async () => {
    const consumer = await as('svc-app')
    const got = collect(consumer)
    expect(await suback(consumer, 'veil/svc/#')).toBe(1)
    const a = await as('tasmota_A')
    await a.publishAsync('tele/tasmota_A/SENSOR', SENSOR, { qos: 1 })
    await until(() => got.length === 1, { timeoutMs: 5000, what: 'own telemetry forwarded' })
    expect(got[0]?.topic).toMatch(/^veil\/svc\/smart_plug\/[a-z2-7]{26}\/sensor$/)

    const before = auditLines().filter((l) => l.reason === 'not_authorized').length
    await a.publishAsync('tele/tasmota_B/SENSOR', SENSOR, { qos: 1 })
    await a.publishAsync('owntracks/alice/phone', '{"_type":"location","lat":1,"lon":2,"tst":1}', { qos: 1 })
    await a.publishAsync('cmnd/tasmota_B/POWER', 'OFF', { qos: 1 })
    await throughSentinel(
      () => a.publishAsync('tele/tasmota_A/SENSOR', SENSOR, { qos: 1 }),
      () => got.length >= 2,
      "tasmota_A's own telemetry again",
    )
    expect(got).toHaveLength(2)
    expect(got[1]?.topic).toBe(got[0]?.topic)
    expect(a.connected).toBe(true)
    expect(await metric('veil_messages_dropped_total')).toMatch(
      /stage="ingest",category="unclassified",reason="not_authorized"\} 3/,
    )
    await until(() => auditLines().filter((l) => l.reason === 'not_authorized').length === before + 3, {
      timeoutMs: 5000,
      what: 'three audited refusals',
    })
  })

  it('subscribe to their own command topics only: SUBACK 0x80 for another device, wildcards, veil/ and $SYS', async () => {
    const a = await as('tasmota_A')
    expect(await suback(a, 'cmnd/tasmota_A/#')).toBe(1)
    for (const f of ['cmnd/tasmota_B/#', 'cmnd/+/POWER', '#', '+/#', '$SYS/#', 'veil/#', 'tele/tasmota_A/SENSOR'])
      expect(await suback(a, f), f).toBe(128)
  })

  it('receive commands from a local client, addressed to them only; a device cannot command another', async () => {
    const a = await as('tasmota_A')
    const b = await as('tasmota_B')
    const gotA = collect(a)
    const gotB = collect(b)
    expect(await suback(a, 'cmnd/tasmota_A/#')).toBe(1)
    expect(await suback(b, 'cmnd/tasmota_B/#')).toBe(1)
    const ha = await as('ha')
    await ha.publishAsync('cmnd/tasmota_A/POWER', 'ON', { qos: 1 })
    await until(() => gotA.length === 1, { timeoutMs: 5000, what: 'command delivered' })
    expect(gotA[0]).toEqual({ topic: 'cmnd/tasmota_A/POWER', payload: 'ON' })
    await b.publishAsync('cmnd/tasmota_A/POWER', 'OFF', { qos: 1 })
    // The sentinel must come from a client allowed to command: the local client, on the same subscription, after the refused PUBACK.
    await throughSentinel(
      () => ha.publishAsync('cmnd/tasmota_A/POWER', 'SENTINEL', { qos: 1 }),
      () => gotA.length >= 2,
      'a local command to tasmota_A',
    )
    expect(gotA).toEqual([
      { topic: 'cmnd/tasmota_A/POWER', payload: 'ON' },
      { topic: 'cmnd/tasmota_A/POWER', payload: 'SENTINEL' },
    ])
    expect(gotB).toHaveLength(0)
  })
})

describe('consumers', () => {
  it('read only veil/<their domain>/#: SUBACK 0x80 for other domains, raw topics and wildcards', async () => {
    const c = await as('svc-app')
    expect(await suback(c, 'veil/svc/#')).toBe(1)
    for (const f of [
      'veil/ana/#',
      'veil/#',
      'veil/+/smart_plug/#',
      'tele/+/SENSOR',
      'tele/tasmota_A/SENSOR',
      '#',
      '+/#',
      '$SYS/#',
      'cmnd/tasmota_A/#',
    ])
      expect(await suback(c, f), f).toBe(128)
  })

  it("never publish: a consumer's publish is dropped, counted, and reaches neither the pipeline nor a subscriber", async () => {
    const c = await as('svc-app')
    const watcher = await as('svc-app')
    const got = collect(watcher)
    await suback(watcher, 'veil/svc/#')
    const a = await as('tasmota_A')
    const gotA = collect(a)
    await suback(a, 'cmnd/tasmota_A/#')
    const refusedBefore = await metric('veil_auth_refusals_total')
    await c.publishAsync('tele/tasmota_A/SENSOR', SENSOR, { qos: 1 })
    await c.publishAsync('cmnd/tasmota_A/POWER', 'OFF', { qos: 1 })
    // A consumer never publishes, so the sentinels come from those allowed to, on the same subscriptions, after the refused PUBACKs.
    const ha = await as('ha')
    await throughSentinel(
      () => ha.publishAsync('cmnd/tasmota_A/POWER', 'SENTINEL', { qos: 1 }),
      () => gotA.length >= 1,
      'a local command to tasmota_A',
    )
    await throughSentinel(
      () => a.publishAsync('tele/tasmota_A/SENSOR', SENSOR, { qos: 1 }),
      () => got.length >= 1,
      "tasmota_A's telemetry on veil/svc/#",
    )
    expect(got).toHaveLength(1)
    expect(gotA).toEqual([{ topic: 'cmnd/tasmota_A/POWER', payload: 'SENTINEL' }])
    expect(refusedBefore).not.toMatch(/stage="publish",reason="consumer"\} 2/)
    expect(await metric('veil_auth_refusals_total')).toMatch(/stage="publish",reason="consumer"\} 2/)
  })
})

describe('local and admin clients', () => {
  it('local: veil/# yes, raw topics only where configured (none here), $SYS no; telemetry publishes refused', async () => {
    const ha = await as('ha')
    expect(await suback(ha, 'veil/#')).toBe(1)
    for (const f of ['tele/+/SENSOR', '#', '+/#', '$SYS/#']) expect(await suback(ha, f), f).toBe(128)
    const before = await metric('veil_auth_refusals_total')
    await ha.publishAsync('tele/tasmota_A/SENSOR', SENSOR, { qos: 1 })
    expect(before).not.toMatch(/stage="publish",reason="local"\} 1/)
    await until(async () => /stage="publish",reason="local"\} 1/.test(await metric('veil_auth_refusals_total')), {
      what: 'the refused local publish counted',
    })
  })

  it('admin: $SYS/# and veil/#, still no raw topic without configuration', async () => {
    const root = await as('root')
    expect(await suback(root, '$SYS/#')).toBe(1)
    expect(await suback(root, 'veil/#')).toBe(1)
    expect(await suback(root, '#')).toBe(128)
    expect(await suback(root, 'tele/#')).toBe(128)
  })
})

describe('secrets', () => {
  it('no password, user name or device id reaches the log, while refusals are logged', () => {
    expect(logText).toMatch(/"event":"login_refused"/)
    for (const secret of Object.values(pw)) expect(logText).not.toContain(secret)
    for (const name of ['tasmota_A', 'tasmota_B', 'svc-app', 'nobody']) expect(logText).not.toContain(name)
  })

  it('pino redacts password, token and authorization keys wherever an object carries them', () => {
    let out = ''
    const log = createLogger('info', new Writable({ write: (c: Buffer, _e, done) => ((out += c.toString()), done()) }))
    log.info(
      {
        password: 'pw-1',
        upstream: { password: 'pw-2', token: 'tk-1' },
        req: { headers: { authorization: 'Bearer tk-2' } },
      },
      'x',
    )
    log.info({ account: { reloadToken: 'tk-3' } }, 'y')
    for (const s of ['pw-1', 'pw-2', 'tk-1', 'tk-3']) expect(out).not.toContain(s)
    expect(out).toContain('[redacted]')
  })
})

describe('raw topics for local clients, only where the configuration says so', () => {
  it("delivers a device's raw SENSOR to a local client with auth.localRawTopics, nothing else raw, and never a refused publish", async () => {
    const raw = await Gateway.start(
      {
        ...gateway.config,
        listen: { host: '127.0.0.1', port: 0 },
        http: { host: '127.0.0.1', port: 0 },
        security: { ...gateway.config.security, localRawTopics: ['tele/+/SENSOR'] },
      },
      builtinPlugins,
      createLogger('silent'),
    )
    const local: MqttClient[] = []
    try {
      const rawUrl = `mqtt://127.0.0.1:${raw.broker.address.port}`
      const open = async (name: string): Promise<MqttClient> => {
        const c = await mqtt.connectAsync(rawUrl, {
          reconnectPeriod: 0,
          connectTimeout: 5000,
          username: name,
          password: pw[name],
          clientId: `${name}-raw-${local.length}`,
        })
        local.push(c)
        return c
      }
      const ha = await open('ha')
      const got = collect(ha)
      expect(await suback(ha, 'tele/+/SENSOR')).toBe(1)
      expect(await suback(ha, 'tele/+/STATE')).toBe(128)
      const consumer = await open('svc-app')
      expect(await suback(consumer, 'tele/+/SENSOR')).toBe(128)
      const a = await open('tasmota_A')
      await a.publishAsync('tele/tasmota_A/SENSOR', SENSOR, { qos: 1 })
      await a.publishAsync('tele/tasmota_B/SENSOR', SENSOR, { qos: 1 })
      await until(() => got.length >= 1, { timeoutMs: 5000, what: 'raw SENSOR delivered' })
      await throughSentinel(
        () => a.publishAsync('tele/tasmota_A/SENSOR', 'SENTINEL', { qos: 1 }),
        () => got.length >= 2,
        "tasmota_A's raw SENSOR again",
      )
      expect(got).toEqual([
        { topic: 'tele/tasmota_A/SENSOR', payload: SENSOR },
        { topic: 'tele/tasmota_A/SENSOR', payload: 'SENTINEL' },
      ])
    } finally {
      await Promise.all(local.map((c) => c.endAsync(true).catch(() => {})))
      await raw.close(500)
    }
  }, 30_000)
})
