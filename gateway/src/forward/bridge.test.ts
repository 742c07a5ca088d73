import { describe, expect, it } from 'vitest'
import { startUpstream, tempDir } from '../../../test/helpers/gateway.ts'
import { until } from '../../../test/helpers/poll.ts'
import { upstreamConfig } from '../config/config.ts'
import type { Category } from '../sdk/model.ts'
import { silentLogger } from '../telemetry/log.ts'
import { Metrics } from '../telemetry/metrics.ts'
import { MAX_DELIVERY_ATTEMPTS, UpstreamBridge } from './bridge.ts'
import { DEFAULT_QUEUE } from './queue/upstream-queue.ts'

/** A bridge to `url` that reconnects within milliseconds and records its drops. */
function fastRetryingBridge(
  url: string,
  dataDir: string,
  drops: { category: Category; reason: string; count: number }[],
): UpstreamBridge {
  return new UpstreamBridge({
    domain: 'svc',
    config: upstreamConfig(url, { protocolVersion: 4 }),
    queue: DEFAULT_QUEUE,
    reconnect: { minMs: 5, maxMs: 20 },
    dataDir,
    metrics: new Metrics({ defaultMetrics: false }),
    logger: silentLogger(),
    onDrop: (category, reason, count) => drops.push({ category, reason, count }),
    onDelivered: () => {},
  })
}

/** Queues one message on the per-message path the gateway uses; `queued` once its batch is with the kernel. */
async function enqueue(bridge: UpstreamBridge, topic: string, body: string, category: Category): Promise<string> {
  const queued = bridge.enqueueBatched(topic, Buffer.from(body), category, 'v1')
  if (typeof queued === 'string') return queued
  return (await queued) === undefined ? 'queued' : 'queue_error'
}

describe('upstream bridge', () => {
  it('drops a message the upstream closes the connection on, after a bounded number of attempts, and delivers the rest in order', async () => {
    const upstream = await startUpstream()
    let closedOn = 0
    // aedes closes the connection when authorizePublish fails, as mosquitto does past its max_packet_size.
    upstream.aedes.authorizePublish = (_client, packet, callback) => {
      if (packet.payload.toString().includes('poison')) {
        closedOn++
        return callback(new Error('refused'))
      }
      callback(null)
    }
    const dir = tempDir()
    const drops: { category: Category; reason: string; count: number }[] = []
    const bridge = fastRetryingBridge(upstream.url, dir.path, drops)
    try {
      await until(() => bridge.connected, { timeoutMs: 5000, what: 'bridge connected' })
      for (const body of ['one', 'two', 'poison', 'three', 'four']) {
        expect(await enqueue(bridge, `veil/svc/smart_plug/p/${body}`, body, 'smart_plug')).toBe('queued')
      }
      await until(() => upstream.received.filter((p) => p.topic.startsWith('veil/')).length >= 4, {
        timeoutMs: 10_000,
        what: 'the other four delivered',
      })
      expect(upstream.received.map((p) => p.payload.toString())).toEqual(['one', 'two', 'three', 'four'])
      expect(drops).toEqual([{ category: 'smart_plug', reason: 'upstream_error', count: 1 }])
      // Sent in the full window (on a connection that also delivered others, then on one that delivered none), then
      // alone until the bound; never again once dropped.
      expect(closedOn).toBeGreaterThanOrEqual(MAX_DELIVERY_ATTEMPTS - 1)
      expect(closedOn).toBeLessThanOrEqual(MAX_DELIVERY_ATTEMPTS + 1)
      await until(() => bridge.pending === 0, { timeoutMs: 5000, what: 'queue empty' })
    } finally {
      await bridge.close(0)
      await upstream.close()
      dir.remove()
    }
  }, 30_000)

  it('drops at most one message while the upstream refuses every message, and delivers the rest once it takes them', async () => {
    const upstream = await startUpstream()
    let refusing = true
    let closes = 0
    // An ACL that disconnects on every publish (or a broker that crashes after CONNACK): no message is to blame.
    upstream.aedes.authorizePublish = (_client, _packet, callback) => {
      if (!refusing) return callback(null)
      closes++
      callback(new Error('denied'))
    }
    const dir = tempDir()
    const drops: { category: Category; reason: string; count: number }[] = []
    const bridge = fastRetryingBridge(upstream.url, dir.path, drops)
    try {
      await until(() => bridge.connected, { timeoutMs: 5000, what: 'bridge connected' })
      for (let i = 0; i < 10; i++)
        expect(await enqueue(bridge, `veil/svc/smart_plug/p/m${i}`, `m${i}`, 'smart_plug')).toBe('queued')
      await until(() => closes >= 4 * MAX_DELIVERY_ATTEMPTS, { timeoutMs: 15_000, what: 'many refused connections' })
      // The first suspect may be dropped; the next one is the upstream's fault, not its own.
      expect(drops.length).toBeLessThanOrEqual(1)
      expect(bridge.pending).toBeGreaterThanOrEqual(9)
      refusing = false
      await until(() => bridge.pending === 0, {
        timeoutMs: 15_000,
        what: 'the queue delivered once the upstream takes messages',
      })
      expect(upstream.received.length).toBe(10 - drops.length)
    } finally {
      await bridge.close(0)
      await upstream.close()
      dir.remove()
    }
  }, 40_000)

  it('keeps a message whose connections were lost for other reasons once it is acknowledged', async () => {
    const upstream = await startUpstream()
    let refusals = 2
    // The upstream closes the first two connections that send anything, then accepts: the message is not to blame.
    upstream.aedes.authorizePublish = (_client, _packet, callback) =>
      refusals-- > 0 ? callback(new Error('flaky')) : callback(null)
    const dir = tempDir()
    const drops: { category: Category; reason: string; count: number }[] = []
    const bridge = fastRetryingBridge(upstream.url, dir.path, drops)
    try {
      await until(() => bridge.connected, { timeoutMs: 5000, what: 'bridge connected' })
      for (const body of ['a', 'b', 'c'])
        expect(await enqueue(bridge, `veil/svc/camera/p/${body}`, body, 'camera')).toBe('queued')
      await until(() => upstream.received.length >= 3, { timeoutMs: 10_000, what: 'all three delivered' })
      expect(upstream.received.map((p) => p.payload.toString())).toEqual(['a', 'b', 'c'])
      expect(drops).toEqual([])
    } finally {
      await bridge.close(0)
      await upstream.close()
      dir.remove()
    }
  }, 30_000)
})
