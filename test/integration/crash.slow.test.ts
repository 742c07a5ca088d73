/**
 * `veil start`'s shutdown on the clock: SIGTERM mid-stream, with devices publishing and the upstream down, ends the
 * process with status 0 within 8 s (the queue is flushed and synced first). A busy machine stretches a process's
 * exit, so the bound runs in the slow project; crash.test.ts proves what is on disk afterwards.
 */
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'
import { freePort } from '../helpers/mosquitto.ts'
import { publish, veilProcesses } from '../helpers/veil-process.ts'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const { startVeil, devices } = veilProcesses(cleanups)

describe('veil start: shutdown on the clock', () => {
  it('SIGTERM mid-stream exits 0 within 8 s', async () => {
    const dir = tempDir('veil-term-slow-')
    cleanups.push(() => dir.remove())
    const veil = await startVeil(join(dir.path, 'data'), await freePort())
    const run = publish(await devices(veil, 3))
    await until(() => run.acked.length >= 150, { timeoutMs: 45_000, what: '150 messages acknowledged' })
    const t0 = Date.now()
    veil.child.kill('SIGTERM')
    const exit = await veil.exited
    const ms = Date.now() - t0
    run.stop()
    expect(exit).toEqual({ code: 0, signal: null })
    expect(ms).toBeLessThan(8000)
  }, 150_000)
})
