/**
 * Listeners and certificates with real clients: TLS (1.2 or later only), mutual TLS mapping a client certificate's
 * CN to a device account, MQTT over WebSocket and secure WebSocket, and an upstream bridge that refuses an upstream
 * whose certificate it cannot verify. Certificates are made with openssl at test time.
 */
import { readFileSync } from 'node:fs'
import { Writable } from 'node:stream'
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls'
import type { AddressInfo } from 'node:net'
import { Aedes } from 'aedes'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CredentialStore } from '../../gateway/src/auth/store.ts'
import { upstreamConfig } from '../../gateway/src/config/config.ts'
import { DEFAULT_RECONNECT, UpstreamBridge, type UpstreamConfig } from '../../gateway/src/forward/bridge.ts'
import { DEFAULT_QUEUE } from '../../gateway/src/forward/queue/upstream-queue.ts'
import { createLogger, silentLogger, type Logger } from '../../gateway/src/telemetry/log.ts'
import { Metrics } from '../../gateway/src/telemetry/metrics.ts'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'
import { throughSentinel } from '../helpers/sentinel.ts'

const SENSOR = JSON.stringify({ ENERGY: { Total: 431.927, Yesterday: 1.204 } })
let pki: TestPki
let gw: TestGateway
const pw: Record<string, string> = {}
const ports: Record<string, number> = {}
const clients: MqttClient[] = []

beforeAll(async () => {
  pki = createPki()
  const dir = tempDir('veil-tls-')
  const store = CredentialStore.open(dir.path)
  pw.tasmota_A = await store.add({ name: 'tasmota_A', role: 'device', profile: 'tasmota' }, { scrypt: { N: 2 ** 12 } })
  pw.tasmota_B = await store.add({ name: 'tasmota_B', role: 'device', profile: 'tasmota' }, { scrypt: { N: 2 ** 12 } })
  pw.app = await store.add({ name: 'app', role: 'consumer', domain: 'svc' }, { scrypt: { N: 2 ** 12 } })
  gw = await startGateway({
    dataDir: dir.path,
    security: {
      allowAnonymous: false,
      tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca },
      listeners: (['mqtts', 'ws', 'wss'] as const).map((kind) => ({
        kind,
        host: '127.0.0.1',
        port: 0,
        flag: `--listener ${kind}://`,
      })),
    },
  })
  for (const { kind, address } of gw.gateway.broker.addresses) ports[kind] = address.port
  const close = gw.close
  gw.close = async () => {
    await close()
    dir.remove()
  }
}, 60_000)

afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => {})))
  await gw?.close()
  pki?.remove()
})

async function login(url: string, options: IClientOptions): Promise<{ code: number | string; client?: MqttClient }> {
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
    return { code: typeof code === 'number' || typeof code === 'string' ? code : String(err) }
  }
}

async function suback(c: MqttClient, filter: string): Promise<number> {
  try {
    return ((await c.subscribeAsync(filter, { qos: 1 }))[0] as { qos: number }).qos
  } catch (err) {
    return ((err as { packet?: { granted?: number[] } }).packet?.granted ?? [-1])[0] as number
  }
}

async function consumer(): Promise<string[]> {
  const { client } = await login(`mqtt://127.0.0.1:${ports.mqtt}`, {
    username: 'app',
    password: pw.app,
    clientId: `app-${clients.length}`,
  })
  const got: string[] = []
  client?.on('message', (t) => got.push(t))
  await client?.subscribeAsync('veil/svc/#', { qos: 1 })
  return got
}

describe('TLS listener', () => {
  it('accepts a client that trusts the CA and logs in, over TLS 1.2 or later', async () => {
    const got = await consumer()
    const { code, client } = await login(`mqtts://127.0.0.1:${ports.mqtts}`, {
      ca: readFileSync(pki.ca),
      username: 'tasmota_A',
      password: pw.tasmota_A,
      clientId: 'tls-a',
    })
    expect(code).toBe(0)
    expect(['TLSv1.2', 'TLSv1.3']).toContain((client?.stream as TLSSocket | undefined)?.getProtocol())
    await client?.publishAsync('tele/tasmota_A/SENSOR', SENSOR, { qos: 1 })
    await until(() => got.length === 1, { timeoutMs: 5000, what: 'forwarded over TLS' })
  })

  it('refuses TLS 1.1 and a client without credentials or certificate', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const s = tlsConnect({
        host: '127.0.0.1',
        port: ports.mqtts,
        ca: readFileSync(pki.ca),
        minVersion: 'TLSv1',
        maxVersion: 'TLSv1.1',
        ciphers: 'DEFAULT@SECLEVEL=0',
      })
      s.on('secureConnect', () => {
        resolve(`connected ${s.getProtocol()}`)
        s.destroy()
      })
      s.on('error', (err) => resolve(`error ${err.message}`))
    })
    expect(outcome).toMatch(/^error /)
    expect(
      (await login(`mqtts://127.0.0.1:${ports.mqtts}`, { ca: readFileSync(pki.ca), clientId: 'tls-anon' })).code,
    ).toBe(5)
  })

  it("a client that does not trust the gateway's certificate does not connect (mqtt.js verifies by default)", async () => {
    const { code } = await login(`mqtts://127.0.0.1:${ports.mqtts}`, {
      username: 'tasmota_A',
      password: pw.tasmota_A,
      clientId: 'tls-untrusting',
    })
    expect(code).not.toBe(0)
  })
})

describe('mutual TLS', () => {
  it("maps a verified client certificate's CN to its device account: no password, and that device's rights only", async () => {
    const got = await consumer()
    const cert = pki.client('tasmota_A')
    const { code, client } = await login(`mqtts://127.0.0.1:${ports.mqtts}`, {
      ca: readFileSync(pki.ca),
      cert: readFileSync(cert.cert),
      key: readFileSync(cert.key),
      clientId: 'mtls-a',
    })
    expect(code).toBe(0)
    const c = client as MqttClient
    expect(await suback(c, 'cmnd/tasmota_A/#')).toBe(1)
    expect(await suback(c, 'cmnd/tasmota_B/#')).toBe(128)
    await c.publishAsync('tele/tasmota_A/SENSOR', SENSOR, { qos: 1 })
    await c.publishAsync('tele/tasmota_B/SENSOR', SENSOR, { qos: 1 })
    await until(() => got.length === 1, { timeoutMs: 5000, what: 'own telemetry forwarded' })
    await throughSentinel(
      () => c.publishAsync('tele/tasmota_A/SENSOR', SENSOR, { qos: 1 }),
      () => got.length >= 2,
      "tasmota_A's own telemetry again",
    )
    expect(got).toHaveLength(2)
    expect(got[1]).toBe(got[0])
  })

  it('refuses a certificate for another name than the user name, one of an unknown device, and one from an untrusted CA', async () => {
    const ca = readFileSync(pki.ca)
    const a = pki.client('tasmota_A')
    const unknown = pki.client('tasmota_Z')
    const foreign = pki.client('tasmota_A', { signedBy: 'other' })
    const url = `mqtts://127.0.0.1:${ports.mqtts}`
    expect(
      (
        await login(url, {
          ca,
          cert: readFileSync(a.cert),
          key: readFileSync(a.key),
          username: 'tasmota_B',
          password: pw.tasmota_B,
          clientId: 'mtls-x',
        })
      ).code,
    ).toBe(5)
    expect(
      (await login(url, { ca, cert: readFileSync(unknown.cert), key: readFileSync(unknown.key), clientId: 'mtls-z' }))
        .code,
    ).toBe(5)
    expect(
      (await login(url, { ca, cert: readFileSync(foreign.cert), key: readFileSync(foreign.key), clientId: 'mtls-f' }))
        .code,
    ).toBe(5)
  })
})

describe('tls.requireClientCert', () => {
  it('refuses a TLS client without a certificate from the CA at the handshake, even with a valid password', async () => {
    const strict = await startGateway({
      dataDir: gw.dataDir,
      security: {
        allowAnonymous: false,
        tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, requireClientCert: true },
        listeners: [{ kind: 'mqtts', host: '127.0.0.1', port: 0, flag: '--listener mqtts://' }],
      },
    })
    try {
      const url = `mqtts://127.0.0.1:${strict.gateway.broker.addresses[1]?.address.port}`
      const ca = readFileSync(pki.ca)
      expect(
        (await login(url, { ca, username: 'tasmota_A', password: pw.tasmota_A, clientId: 'strict-pw' })).code,
      ).not.toBe(0)
      const cert = pki.client('tasmota_A')
      expect(
        (await login(url, { ca, cert: readFileSync(cert.cert), key: readFileSync(cert.key), clientId: 'strict-cert' }))
          .code,
      ).toBe(0)
      expect(await strict.gateway.metrics.registry.getSingleMetricAsString('veil_auth_refusals_total')).toMatch(
        /stage="connection",reason="tls_handshake"\} [1-9]/,
      )
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => {})))
      await strict.gateway.close(500)
    }
  })
})

describe('WebSocket listeners', () => {
  it('ws:// and wss:// carry MQTT with the same accounts and rules', async () => {
    const got = await consumer()
    expect((await login(`ws://127.0.0.1:${ports.ws}/mqtt`, { clientId: 'ws-anon' })).code).toBe(5)
    expect(
      (
        await login(`ws://127.0.0.1:${ports.ws}/mqtt`, {
          username: 'tasmota_A',
          password: 'wrong',
          clientId: 'ws-wrong',
        })
      ).code,
    ).toBe(4)
    const ws = await login(`ws://127.0.0.1:${ports.ws}/mqtt`, {
      username: 'tasmota_A',
      password: pw.tasmota_A,
      clientId: 'ws-a',
    })
    expect(ws.code).toBe(0)
    await ws.client?.publishAsync('tele/tasmota_A/SENSOR', SENSOR, { qos: 1 })
    const wss = await login(`wss://127.0.0.1:${ports.wss}/mqtt`, {
      ca: readFileSync(pki.ca),
      username: 'tasmota_B',
      password: pw.tasmota_B,
      clientId: 'wss-b',
    })
    expect(wss.code).toBe(0)
    await wss.client?.publishAsync('tele/tasmota_B/SENSOR', SENSOR, { qos: 1 })
    expect(await suback(wss.client as MqttClient, '#')).toBe(128)
    await until(() => got.length === 2, { timeoutMs: 5000, what: 'forwarded over ws and wss' })
  })

  it('answers a plain HTTP request with 426', async () => {
    const res = await fetch(`http://127.0.0.1:${ports.ws}/`)
    expect(res.status).toBe(426)
  })
})

describe('upstream bridge', () => {
  it("verifies the upstream's certificate by default, and trusts a configured CA", async () => {
    const aedes = await Aedes.createBroker({ id: 'tls-upstream' })
    const server = createTlsServer(
      { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) },
      aedes.handle,
    )
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const url = `mqtts://127.0.0.1:${(server.address() as AddressInfo).port}`
    const dirs = [tempDir(), tempDir()]
    // Each bridge holds its own durable queue, so each gets its own data directory.
    const bridge = (config: UpstreamConfig, dataDir: string, logger: Logger = silentLogger()): UpstreamBridge =>
      new UpstreamBridge({
        domain: 'svc',
        config,
        queue: DEFAULT_QUEUE,
        reconnect: DEFAULT_RECONNECT,
        dataDir,
        metrics: new Metrics({ defaultMetrics: false }),
        logger,
        onDrop: () => {},
        onDelivered: () => {},
      })
    // The untrusting bridge's log: its refusal of the certificate is the event to wait for, not a fixed time.
    let log = ''
    const sink = new Writable({ write: (chunk: Buffer, _e, done) => ((log += chunk.toString('utf8')), done()) })
    const untrusting = bridge(upstreamConfig(url, { protocolVersion: 4 }), dirs[0]!.path, createLogger('warn', sink))
    const trusting = bridge(upstreamConfig(url, { protocolVersion: 4, ca: pki.ca }), dirs[1]!.path)
    try {
      await until(() => trusting.connected, { timeoutMs: 5000, what: 'bridge with the CA connected' })
      await until(() => /"event":"upstream_error"[^\n]*certificate/.test(log), {
        timeoutMs: 5000,
        what: 'the bridge without the CA to refuse the certificate',
      })
      expect(untrusting.connected).toBe(false)
    } finally {
      await Promise.all([untrusting.close(0), trusting.close(0)])
      for (const dir of dirs) dir.remove()
      await new Promise<void>((r) => server.close(() => r()))
      await new Promise<void>((r) => aedes.close(() => r()))
    }
  })
})
