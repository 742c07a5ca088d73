/**
 * An upstream that acknowledges only when told to, and a bridge to it: flow control's tests (the unit ones in
 * gateway/src/forward/flow-control.test.ts and the stall's wall-clock bound in flow-control.slow.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqttPacket from 'mqtt-packet'
import { expect } from 'vitest'
import { upstreamConfig } from '../../gateway/src/config/config.ts'
import { DEFAULT_RECONNECT, UpstreamBridge } from '../../gateway/src/forward/bridge.ts'
import type { QueueConfig } from '../../gateway/src/forward/queue/upstream-queue.ts'
import { silentLogger } from '../../gateway/src/telemetry/log.ts'
import { Metrics } from '../../gateway/src/telemetry/metrics.ts'

/** A raw MQTT upstream that accepts the connection and acknowledges publishes only when told to. */
export async function heldUpstream(): Promise<{
  url: string
  held: number[]
  ack(count: number): void
  close(): Promise<void>
}> {
  const held: number[] = []
  const sockets: Socket[] = []
  const server: Server = createServer((socket) => {
    sockets.push(socket)
    const parser = mqttPacket.parser({ protocolVersion: 5 })
    parser.on('packet', (packet) => {
      if (packet.cmd === 'connect')
        socket.write(
          mqttPacket.generate(
            { cmd: 'connack', returnCode: 0, reasonCode: 0, sessionPresent: false },
            { protocolVersion: 5 },
          ),
        )
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
      for (const messageId of held.splice(0, count))
        sockets[0]?.write(mqttPacket.generate({ cmd: 'puback', messageId, reasonCode: 0 }, { protocolVersion: 5 }))
    },
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** A bridge with an in-flight window of four to a held upstream; `cleanup` gets what closes both after the test. */
export async function heldBridge(
  queue: QueueConfig,
  cleanup: (() => Promise<void>)[],
): Promise<{ upstream: Awaited<ReturnType<typeof heldUpstream>>; bridge: UpstreamBridge }> {
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
export async function append(bridge: UpstreamBridge, n: number): Promise<void> {
  let last: Promise<Error | undefined> | string = 'none'
  for (let i = 0; i < n; i++) last = bridge.enqueueBatched('veil/svc/camera/p/s', Buffer.from(`m${i}`), 'camera', 'v1')
  expect(await last).toBeUndefined()
}
