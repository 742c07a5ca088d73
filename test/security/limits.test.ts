/**
 * Connection-level limits on a real gateway: the maximum number of connections, the new-connection rate per
 * address, and the CONNECT timeout. Refused sockets are closed before a byte of MQTT is read, and counted.
 */
import { connect as netConnect, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from '../../gateway/src/auth/guard.ts'
import { readFileSync } from 'node:fs'
import { createPki } from '../helpers/certs.ts'
import { connect, sleep, startGateway, type TestGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'
import { rawConnect } from '../helpers/raw.ts'

let gw: TestGateway | undefined
const sockets: Socket[] = []

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy()
  await gw?.close()
  gw = undefined
})

function start(limits: Partial<ConnectionLimits>): Promise<TestGateway> {
  return startGateway({ security: { connections: { ...DEFAULT_CONNECTION_LIMITS, ...limits } } })
}

/** Opens a TCP connection and reports whether the gateway closed it within `ms` without any MQTT sent. */
function openAndWatch(port: number, ms = 300): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port })
    sockets.push(socket)
    socket.on('error', () => {})
    const timer = setTimeout(() => resolve(false), ms)
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

async function refusals(g: TestGateway): Promise<string> {
  return (await g.gateway.metrics.registry.getSingleMetricAsString('veil_auth_refusals_total')) ?? ''
}

describe('connection limits', () => {
  it('closes connections beyond maxConnections, and accepts again once one has gone', async () => {
    gw = await start({ maxConnections: 3 })
    const port = gw.gateway.broker.address.port
    const first = await Promise.all([openAndWatch(port), openAndWatch(port), openAndWatch(port)])
    expect(first).toEqual([false, false, false])
    expect(await openAndWatch(port)).toBe(true)
    expect(await refusals(gw)).toMatch(/stage="connection",reason="max_connections"\} 1/)
    sockets[0]?.destroy()
    await sleep(50)
    const mqtt = await rawConnect(port, { clientId: 'after', clean: true })
    expect(mqtt.returnCode).toBe(0)
  })

  it('closes an address\'s connections beyond its burst until the rate refills', async () => {
    gw = await start({ burst: 3, ratePerSecond: 4 })
    const port = gw.gateway.broker.address.port
    // Opened together, so the bucket has no time to refill in between.
    const opened = await Promise.all(Array.from({ length: 5 }, () => openAndWatch(port, 150)))
    expect(opened.filter((closed) => !closed)).toHaveLength(3)
    expect(await refusals(gw)).toMatch(/stage="connection",reason="rate_limited"\} 2/)
    // 4 per second: a token back after 250 ms.
    await sleep(350)
    expect(await openAndWatch(port, 100)).toBe(false)
  })

  it('disconnects a client that does not send CONNECT within connectTimeoutMs', async () => {
    gw = await start({ connectTimeoutMs: 300 })
    const port = gw.gateway.broker.address.port
    const t0 = Date.now()
    expect(await openAndWatch(port, 3000)).toBe(true)
    const ms = Date.now() - t0
    expect(ms).toBeGreaterThanOrEqual(250)
    expect(ms).toBeLessThan(2000)
    // The slot is given back: the guard's count returns to zero.
    await until(() => (gw?.gateway.broker.aedes.connectedClients ?? 1) === 0, { timeoutMs: 2000, what: 'no clients' })
  })

  it('gives a WebSocket upgrade the same budget: a socket that never sends its HTTP request is closed', async () => {
    gw = await start({ connectTimeoutMs: 300 })
    await gw.close()
    gw = await startGateway({ security: { connections: { ...DEFAULT_CONNECTION_LIMITS, connectTimeoutMs: 300 }, listeners: [{ kind: 'ws', host: '127.0.0.1', port: 0, flag: '--listener ws://' }] } })
    const ws = gw.gateway.broker.addresses.find((l) => l.kind === 'ws')?.address.port as number
    const t0 = Date.now()
    expect(await openAndWatch(ws, 3000)).toBe(true)
    expect(Date.now() - t0).toBeLessThan(2000)
  })

  it('leaves an upgraded WebSocket and secure WebSocket client alone when it idles past the CONNECT budget', async () => {
    const pki = createPki()
    try {
      gw = await startGateway({
        security: {
          connections: { ...DEFAULT_CONNECTION_LIMITS, connectTimeoutMs: 300 },
          tls: { cert: pki.serverCert, key: pki.serverKey },
          listeners: (['ws', 'wss'] as const).map((kind) => ({ kind, host: '127.0.0.1', port: 0, flag: `--listener ${kind}://` })),
        },
      })
      const port = (kind: string): number => gw?.gateway.broker.addresses.find((l) => l.kind === kind)?.address.port as number
      const ws = await connect(`ws://127.0.0.1:${port('ws')}/mqtt`, { keepalive: 60 })
      const wss = await connect(`wss://127.0.0.1:${port('wss')}/mqtt`, { keepalive: 60, ca: readFileSync(pki.ca) })
      await sleep(900)
      expect([ws.connected, wss.connected]).toEqual([true, true])
      expect((await wss.subscribeAsync('veil/#', { qos: 1 }))[0]?.qos).toBe(1)
      await Promise.all([ws.endAsync(), wss.endAsync()])
    } finally {
      pki.remove()
    }
  })
})
