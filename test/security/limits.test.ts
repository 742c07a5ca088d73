/**
 * Connection-level limits on a real gateway: the maximum number of connections, the new-connection rate per
 * address, and the CONNECT timeout. Refused sockets are closed before a byte of MQTT is read, and counted.
 */
import { connect as netConnect, type Socket } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from '../../gateway/src/auth/guard.ts'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'
import { connectPacket, rawConnect } from '../helpers/raw.ts'

let gw: TestGateway | undefined
const sockets: Socket[] = []

afterEach(async () => {
  vi.useRealTimers()
  for (const s of sockets.splice(0)) s.destroy()
  await gw?.close()
  gw = undefined
})

function start(limits: Partial<ConnectionLimits>): Promise<TestGateway> {
  return startGateway({ security: { connections: { ...DEFAULT_CONNECTION_LIMITS, ...limits } } })
}

/** A TCP connection to the gateway, and its close (the gateway's refusal) as a promise. */
function open(port: number): { socket: Socket; closed: Promise<void> } {
  const socket = netConnect({ host: '127.0.0.1', port })
  sockets.push(socket)
  socket.on('error', () => {})
  return { socket, closed: new Promise((resolve) => socket.once('close', () => resolve())) }
}

/**
 * Whether the gateway accepted the connection: it answers a CONNECT with a CONNACK, or it has closed the socket
 * (a refused connection is closed at once, before a byte of MQTT is read). Waits for one of the two events, so no
 * fixed time decides.
 */
function outcome(port: number, clientId: string): Promise<'accepted' | 'closed'> {
  const { socket, closed } = open(port)
  return new Promise((resolve) => {
    void closed.then(() => resolve('closed'))
    socket.once('connect', () => socket.write(connectPacket({ clientId, clean: true })))
    socket.on('data', (data: Buffer) => {
      if (data[0] === 0x20 && data[3] === 0) resolve('accepted')
    })
  })
}

/** Resolves once the gateway has closed a connection that sent nothing; the caller's test timeout bounds it. */
async function closedUnprompted(port: number): Promise<true> {
  await open(port).closed
  return true
}

async function refusals(g: TestGateway): Promise<string> {
  return (await g.gateway.metrics.registry.getSingleMetricAsString('veil_auth_refusals_total')) ?? ''
}

describe('connection limits', () => {
  it('closes connections beyond maxConnections, and accepts again once one has gone', async () => {
    gw = await start({ maxConnections: 3 })
    const port = gw.gateway.broker.address.port
    expect(await Promise.all([outcome(port, 'a'), outcome(port, 'b'), outcome(port, 'c')])).toEqual([
      'accepted',
      'accepted',
      'accepted',
    ])
    expect(await outcome(port, 'd')).toBe('closed')
    expect(await refusals(gw)).toMatch(/stage="connection",reason="max_connections"\} 1/)
    sockets[0]?.destroy()
    // The slot comes back when the gateway sees the close: until then a connection is still refused.
    await until(async () => (await rawConnect(port, { clientId: 'after', clean: true })).returnCode === 0, {
      what: 'a connection accepted again',
    })
  })

  it("closes an address's connections beyond its burst until the rate refills", async () => {
    // The bucket refills on Date.now(): a fake clock stands still while the five connect, then moves 250 ms.
    vi.useFakeTimers({ toFake: ['Date'] })
    gw = await start({ burst: 3, ratePerSecond: 4 })
    const port = gw.gateway.broker.address.port
    const opened = await Promise.all(Array.from({ length: 5 }, (_, i) => outcome(port, `burst${i}`)))
    expect(opened.filter((o) => o === 'accepted')).toHaveLength(3)
    expect(await refusals(gw)).toMatch(/stage="connection",reason="rate_limited"\} 2/)
    // 4 per second: one token back after 250 ms, and only one.
    vi.setSystemTime(Date.now() + 250)
    expect(await outcome(port, 'refilled')).toBe('accepted')
    expect(await outcome(port, 'beyond')).toBe('closed')
  })

  it('disconnects a client that does not send CONNECT within connectTimeoutMs (how soon: limits.slow.test.ts)', async () => {
    gw = await start({ connectTimeoutMs: 300 })
    const port = gw.gateway.broker.address.port
    expect(await closedUnprompted(port)).toBe(true)
    // The slot is given back: the guard's count returns to zero.
    await until(() => (gw?.gateway.broker.aedes.connectedClients ?? 1) === 0, { timeoutMs: 2000, what: 'no clients' })
  })

  it('gives a WebSocket upgrade the same budget: a socket that never sends its HTTP request is closed', async () => {
    gw = await startGateway({
      security: {
        connections: { ...DEFAULT_CONNECTION_LIMITS, connectTimeoutMs: 300 },
        listeners: [{ kind: 'ws', host: '127.0.0.1', port: 0, flag: '--listener ws://' }],
      },
    })
    const ws = gw.gateway.broker.addresses.find((l) => l.kind === 'ws')?.address.port as number
    expect(await closedUnprompted(ws)).toBe(true)
  })
})
