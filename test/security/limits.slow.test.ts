/**
 * The CONNECT budget on the clock: a silent socket is closed about connectTimeoutMs after it opened, not much sooner
 * or later, and an upgraded WebSocket idling past the budget is left alone. Real waits and elapsed-time bounds, so
 * these run in the slow project; limits.test.ts proves the closes themselves.
 */
import { readFileSync } from 'node:fs'
import { connect as netConnect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { DEFAULT_CONNECTION_LIMITS } from '../../gateway/src/auth/guard.ts'
import { createPki } from '../helpers/certs.ts'
import { connect, startGateway, type TestGateway } from '../helpers/gateway.ts'

let gw: TestGateway | undefined
const sockets: Socket[] = []

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy()
  await gw?.close()
  gw = undefined
})

/** Opens a TCP connection that sends nothing and resolves with how long the gateway took to close it. */
function msUntilClosed(port: number): Promise<number> {
  const t0 = Date.now()
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port })
    sockets.push(socket)
    socket.on('error', () => {})
    socket.once('close', () => resolve(Date.now() - t0))
  })
}

/** Gateway options with a 300 ms CONNECT budget, over `security`'s listeners and TLS. */
const budget = (security: NonNullable<Parameters<typeof startGateway>[0]>['security'] = {}) => ({
  security: { connections: { ...DEFAULT_CONNECTION_LIMITS, connectTimeoutMs: 300 }, ...security },
})

describe('the CONNECT budget on the clock', () => {
  it('closes a client that sends no CONNECT after about connectTimeoutMs', async () => {
    gw = await startGateway(budget())
    const ms = await msUntilClosed(gw.gateway.broker.address.port)
    expect(ms).toBeGreaterThanOrEqual(250)
    expect(ms).toBeLessThan(2000)
  })

  it('closes a socket that never sends its WebSocket upgrade within the same budget', async () => {
    gw = await startGateway(
      budget({ listeners: [{ kind: 'ws', host: '127.0.0.1', port: 0, flag: '--listener ws://' }] }),
    )
    const ws = gw.gateway.broker.addresses.find((l) => l.kind === 'ws')?.address.port as number
    expect(await msUntilClosed(ws)).toBeLessThan(2000)
  })

  it('leaves an upgraded WebSocket and secure WebSocket client alone when it idles past the CONNECT budget', async () => {
    const pki = createPki()
    try {
      gw = await startGateway(
        budget({
          tls: { cert: pki.serverCert, key: pki.serverKey },
          listeners: (['ws', 'wss'] as const).map((kind) => ({
            kind,
            host: '127.0.0.1',
            port: 0,
            flag: `--listener ${kind}://`,
          })),
        }),
      )
      const port = (kind: string): number =>
        gw?.gateway.broker.addresses.find((l) => l.kind === kind)?.address.port as number
      const ws = await connect(`ws://127.0.0.1:${port('ws')}/mqtt`, { keepalive: 60 })
      const wss = await connect(`wss://127.0.0.1:${port('wss')}/mqtt`, { keepalive: 60, ca: readFileSync(pki.ca) })
      // Three budgets long: the timer under test would have fired by now. Nothing can be waited for instead.
      await sleep(900)
      expect([ws.connected, wss.connected]).toEqual([true, true])
      expect((await wss.subscribeAsync('veil/#', { qos: 1 }))[0]?.qos).toBe(1)
      await Promise.all([ws.endAsync(), wss.endAsync()])
    } finally {
      pki.remove()
    }
  })
})
