/**
 * The wall-clock side of flow control: devices held for an upstream that stopped acknowledging are let through
 * within about a second (STALL_MS and its check interval), on the real clock. A busy machine can stretch this, so it
 * runs in the slow project; flow-control.test.ts proves the same release without timing it.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { append, heldBridge } from '../../../test/helpers/held-upstream.ts'
import { until } from '../../../test/helpers/poll.ts'
import { STALL_MS } from './flow-control.ts'
import { DEFAULT_QUEUE } from './queue/upstream-queue.ts'

const cleanup: (() => Promise<void>)[] = []

afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

describe('upstream flow control on the clock', () => {
  it('lets devices through within STALL_MS and a check interval or so once the upstream acknowledges nothing', async () => {
    const { upstream, bridge } = await heldBridge(DEFAULT_QUEUE, cleanup)
    await until(() => bridge.connected, { what: 'the connection' })
    await append(bridge, 12)
    await until(() => upstream.held.length === 4, { what: 'the window of four to be sent' })
    const stalled = bridge.catchUp()
    expect(stalled).toBeInstanceOf(Promise)
    const started = Date.now()
    await stalled
    expect(Date.now() - started).toBeLessThan(STALL_MS + 1500)
    expect(bridge.catchUp()).toBeUndefined()
  })
})
