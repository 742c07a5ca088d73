/**
 * A short run of the stalled-upstream soak (test/soak/stalled-upstream.ts; run it alone for minutes and RSS
 * samples). No timing assertions: only the bounds that must hold however fast the machine is.
 */
import { describe, expect, it } from 'vitest'
import { runSoak } from './stalled-upstream.ts'

describe('stalled upstream (short soak)', () => {
  it('keeps the in-flight window and the queue within their bounds, evicts the oldest, and never disconnects a device', async () => {
    const maxBytes = 256 * 1024
    const lines: string[] = []
    // 96 MiB of old space: what a leak of a few hundred bytes per message (tens of thousands a second) fills in
    // seconds, and well above what the gateway holds live (its RSS settles near 200 MiB with the heap's own slack).
    const result = await runSoak({
      seconds: 6,
      devices: 2,
      sampleMs: 1000,
      inflightPerDevice: 10,
      queueMaxBytes: maxBytes,
      payloadBytes: 300,
      maxOldSpaceMiB: 96,
      log: (l) => lines.push(l),
    })
    console.info(lines.join('\n'))
    expect(result.samples.length).toBeGreaterThanOrEqual(5)
    expect(result.disconnects).toBe(0)
    expect(result.publishErrors).toBe(0)
    for (const s of result.samples) {
      expect(s.clients).toBe(2)
      expect(s.inflight).toBeLessThanOrEqual(result.maxPending)
      // One batch of appends may pass the bound for a moment before it is written and the oldest segment goes.
      expect(s.queueBytes).toBeLessThanOrEqual(maxBytes + 64 * 1024)
    }
    const last = result.samples.at(-1)
    expect(last?.acked).toBeGreaterThan(0)
    // The stalled upstream acknowledged nothing, so all that was acknowledged to devices is queued, in flight or evicted.
    expect(last?.evicted).toBeGreaterThan(0)
    // Alive to the end under the capped heap (a crash would have disconnected the devices, asserted above), and RSS
    // flat with it: memory kept outside the heap (buffers) would still show here.
    expect(result.samples.at(-1)?.clients).toBe(2)
    const rss = result.samples.map((s) => s.rssMiB)
    expect(Math.max(...rss) - Math.min(...rss)).toBeLessThan(32)
  }, 30_000)
})
