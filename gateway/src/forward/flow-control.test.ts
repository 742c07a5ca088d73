/**
 * Flow control of the upstream bridge: while a connected upstream acknowledges but falls more than one in-flight
 * window behind, catchUp() hands the gateway a promise to wait on before the pipeline; it resolves once half a
 * window or less waits, and an upstream that acknowledges nothing for a second (stalled) is never waited for.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { append, heldBridge } from '../../../test/helpers/held-upstream.ts'
import { until } from '../../../test/helpers/poll.ts'
import { FlowControl, STALL_MS } from './flow-control.ts'
import { DEFAULT_QUEUE } from './queue/upstream-queue.ts'

const cleanup: (() => Promise<void>)[] = []

afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

describe('upstream flow control', () => {
  it('makes devices wait while a connected upstream falls behind, and never for a stalled one', async () => {
    const { upstream, bridge } = await heldBridge(DEFAULT_QUEUE, cleanup)
    await until(() => bridge.connected, { what: 'the connection' })
    expect(bridge.catchUp()).toBeUndefined()

    await append(bridge, 12)
    await until(() => upstream.held.length === 4, { what: 'the window of four to be sent' })
    // Eight wait unsent, more than one window of four: devices wait.
    const waiting = bridge.catchUp()
    expect(waiting).toBeInstanceOf(Promise)
    expect(bridge.catchUp()).toBe(waiting)
    let released = false
    void waiting?.then(() => (released = true))
    upstream.ack(4)
    // The next four reached the upstream, so the pump that sent them has measured the backlog: still held, the
    // devices share the same promise (a release would have cleared it).
    await until(() => upstream.held.length === 4, { what: 'the next four' })
    expect(bridge.catchUp()).toBe(waiting)
    expect(released).toBe(false) // four unsent, over half a window
    upstream.ack(4)
    await until(() => released, { what: 'the devices to be let through at half a window or less' })
    expect(bridge.catchUp()).toBeUndefined()

    // Stalled: nothing acknowledged. Devices are let through (within a second: flow-control.slow.test.ts), and not
    // held again.
    await append(bridge, 12)
    const stalled = bridge.catchUp()
    expect(stalled).toBeInstanceOf(Promise)
    await stalled
    expect(bridge.catchUp()).toBeUndefined()
  })

  it('lets every waiting device through at shutdown, and holds nobody after it', async () => {
    const { upstream, bridge } = await heldBridge(DEFAULT_QUEUE, cleanup)
    await until(() => bridge.connected, { what: 'the connection' })
    await append(bridge, 12)
    await until(() => upstream.held.length === 4, { what: 'the window of four to be sent' })
    // Keep the upstream acknowledging now and then, so it is not stalled, while one waits.
    upstream.ack(1)
    await until(() => upstream.held.length === 4, { what: 'the window refilled' })
    const waiting = bridge.catchUp()
    expect(waiting).toBeInstanceOf(Promise)
    bridge.stopPacing()
    await waiting
    expect(bridge.catchUp()).toBeUndefined()
  })

  it('never makes devices wait with queue.flowControl off: the backlog builds on disk instead', async () => {
    const { upstream, bridge } = await heldBridge({ ...DEFAULT_QUEUE, flowControl: false }, cleanup)
    await until(() => bridge.connected, { what: 'the connection' })
    await append(bridge, 12)
    await until(() => upstream.held.length === 4, { what: 'the window of four to be sent' })
    upstream.ack(1)
    await until(() => upstream.held.length === 4, { what: 'the window refilled' })
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

  it('lets waiting devices through once the upstream has acknowledged nothing for STALL_MS, by its own timer', async () => {
    // Only the interval is faked: the clock is injected, so the test moves both without waiting a second.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    try {
      let now = 10_000
      const flow = new FlowControl(true, 4, () => now)
      flow.progressed()
      const waiting = flow.catchUp({ live: true, outstanding: 4, depth: 9 })
      let released = false
      void waiting?.then(() => (released = true))
      now += STALL_MS
      vi.advanceTimersByTime(STALL_MS)
      await Promise.resolve()
      expect(released).toBe(false) // exactly STALL_MS without an acknowledgement is not yet a stall
      now += STALL_MS / 4
      vi.advanceTimersByTime(STALL_MS / 4)
      await waiting
      expect(flow.catchUp({ live: true, outstanding: 4, depth: 9 })).toBeUndefined()
      expect(vi.getTimerCount()).toBe(0)
    } finally {
      vi.useRealTimers()
    }
  })
})
