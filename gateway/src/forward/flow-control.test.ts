/**
 * Flow control of the upstream bridge: while a connected upstream acknowledges but falls more than one in-flight
 * window behind, catchUp() hands the gateway a promise to wait on before the pipeline; it resolves once half a
 * window or less waits, and an upstream that acknowledges nothing for a second (stalled) is never waited for.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqttPacket from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'
import { upstreamConfig } from '../config/config.ts'
import { silentLogger } from '../telemetry/log.ts'
import { Metrics } from '../telemetry/metrics.ts'
import { DEFAULT_RECONNECT, UpstreamBridge } from './bridge.ts'
import { FlowControl, STALL_MS } from './flow-control.ts'
import { DEFAULT_QUEUE, type QueueConfig } from './queue/upstream-queue.ts'

/** A raw MQTT upstream that accepts the connection and acknowledges publishes only when told to. */
async function heldUpstream(): Promise<{ url: string; held: number[]; ack(count: number): void; close(): Promise<void> }> {
  const held: number[] = []
  const sockets: Socket[] = []
  const server: Server = createServer((socket) => {
    sockets.push(socket)
    const parser = mqttPacket.parser({ protocolVersion: 5 })
    parser.on('packet', (packet) => {
      if (packet.cmd === 'connect') socket.write(mqttPacket.generate({ cmd: 'connack', returnCode: 0, reasonCode: 0, sessionPresent: false }, { protocolVersion: 5 }))
      if (packet.cmd === 'publish' && packet.messageId !== undefined) held.push(packet.messageId)
    })
    socket.on('data', (chunk) => parser.parse(chunk))
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`,
    held,
    ack(count) {
      for (const messageId of held.splice(0, count)) sockets[0]?.write(mqttPacket.generate({ cmd: 'puback', messageId, reasonCode: 0 }, { protocolVersion: 5 }))
    },
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

const until = async (predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

const cleanup: (() => Promise<void>)[] = []

/** A bridge with an in-flight window of four to a held upstream, both closed after the test. */
async function heldBridge(queue: QueueConfig): Promise<{ upstream: Awaited<ReturnType<typeof heldUpstream>>; bridge: UpstreamBridge }> {
  const upstream = await heldUpstream()
  cleanup.push(upstream.close)
  const dataDir = mkdtempSync(join(tmpdir(), 'veil-flow-'))
  cleanup.push(async () => rmSync(dataDir, { recursive: true, force: true }))
  const bridge = new UpstreamBridge({
    domain: 'svc',
    config: upstreamConfig(upstream.url, { maxPending: 4 }),
    queue,
    reconnect: DEFAULT_RECONNECT,
    dataDir,
    metrics: new Metrics(),
    logger: silentLogger(),
    onDrop: () => {},
    onDelivered: () => {},
  })
  cleanup.push(() => bridge.close(0))
  return { upstream, bridge }
}
/** Queues `n` copies for the upstream and waits until their batch is with the kernel. */
async function append(bridge: UpstreamBridge, n: number): Promise<void> {
  let last: Promise<Error | undefined> | string = 'none'
  for (let i = 0; i < n; i++) last = bridge.enqueueBatched('veil/svc/camera/p/s', Buffer.from(`m${i}`), 'camera', 'v1')
  expect(await last).toBeUndefined()
}

afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

describe('upstream flow control', () => {
  it('makes devices wait while a connected upstream falls behind, and never for a stalled one', async () => {
    const { upstream, bridge } = await heldBridge(DEFAULT_QUEUE)
    await until(() => bridge.connected, 'the connection')
    expect(bridge.catchUp()).toBeUndefined()

    await append(bridge, 12)
    await until(() => upstream.held.length === 4, 'the window of four to be sent')
    // Eight wait unsent, more than one window of four: devices wait.
    const waiting = bridge.catchUp()
    expect(waiting).toBeInstanceOf(Promise)
    expect(bridge.catchUp()).toBe(waiting)
    let released = false
    void waiting?.then(() => (released = true))
    upstream.ack(4)
    await until(() => upstream.held.length === 4, 'the next four')
    await new Promise((r) => setTimeout(r, 20))
    expect(released).toBe(false) // four unsent, over half a window
    upstream.ack(4)
    await until(() => released, 'the devices to be let through at half a window or less')
    expect(bridge.catchUp()).toBeUndefined()

    // Stalled: nothing acknowledged. Devices are let through within a second, and not held again.
    await append(bridge, 12)
    const stalled = bridge.catchUp()
    expect(stalled).toBeInstanceOf(Promise)
    const started = Date.now()
    await stalled
    expect(Date.now() - started).toBeLessThan(2500)
    expect(bridge.catchUp()).toBeUndefined()
  })

  it('lets every waiting device through at shutdown, and holds nobody after it', async () => {
    const { upstream, bridge } = await heldBridge(DEFAULT_QUEUE)
    await until(() => bridge.connected, 'the connection')
    await append(bridge, 12)
    await until(() => upstream.held.length === 4, 'the window of four to be sent')
    // Keep the upstream acknowledging now and then, so it is not stalled, while one waits.
    upstream.ack(1)
    await until(() => upstream.held.length === 4, 'the window refilled')
    const waiting = bridge.catchUp()
    expect(waiting).toBeInstanceOf(Promise)
    bridge.stopPacing()
    await waiting
    expect(bridge.catchUp()).toBeUndefined()
  })

  it('never makes devices wait with queue.flowControl off: the backlog builds on disk instead', async () => {
    const { upstream, bridge } = await heldBridge({ ...DEFAULT_QUEUE, flowControl: false })
    await until(() => bridge.connected, 'the connection')
    await append(bridge, 12)
    await until(() => upstream.held.length === 4, 'the window of four to be sent')
    upstream.ack(1)
    await until(() => upstream.held.length === 4, 'the window refilled')
    expect(bridge.pending).toBeGreaterThan(8)
    expect(bridge.catchUp()).toBeUndefined()
  })
})

describe('FlowControl on its own', () => {
  it('waits past one window unsent, releases at half a window, and never holds for a stalled or stopped upstream', async () => {
    let now = 10_000
    const flow = new FlowControl(true, 4, () => now)
    flow.progressed()
    expect(flow.catchUp({ live: true, outstanding: 4, depth: 8 })).toBeUndefined()
    expect(flow.catchUp({ live: false, outstanding: 4, depth: 20 })).toBeUndefined()
    const waiting = flow.catchUp({ live: true, outstanding: 4, depth: 9 })
    expect(waiting).toBeInstanceOf(Promise)
    expect(flow.catchUp({ live: true, outstanding: 0, depth: 0 })).toBe(waiting)
    flow.refilled(3)
    expect(flow.catchUp({ live: true, outstanding: 0, depth: 0 })).toBe(waiting)
    flow.refilled(2)
    await waiting
    now += STALL_MS + 1
    expect(flow.catchUp({ live: true, outstanding: 4, depth: 20 })).toBeUndefined()
    flow.progressed()
    flow.stop()
    expect(flow.catchUp({ live: true, outstanding: 4, depth: 20 })).toBeUndefined()
    expect(new FlowControl(false, 4, () => now).catchUp({ live: true, outstanding: 4, depth: 20 })).toBeUndefined()
  })
})
