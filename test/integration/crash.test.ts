/**
 * Crash and shutdown of a real `veil start` process (bin/veil.js) with a durable queue:
 * - SIGKILL mid-stream, with a backlog on disk because the upstream went away first: after a restart on the same
 *   data directory, every message whose PUBACK a device received reaches the upstream (at least once).
 * - SIGTERM mid-stream: the process exits 0, and every acknowledged message is in the queue on disk (how soon it
 *   exits is a wall-clock bound: crash.slow.test.ts).
 * The upstream is an in-process aedes (MQTT 3.1.1, so the configuration sets protocolVersion 4).
 */
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { DEFAULT_QUEUE, UpstreamQueue } from '../../gateway/src/forward/queue/upstream-queue.ts'
import { loadOrCreateMasterKey } from '../../gateway/src/keys/keyring.ts'
import { SubjectKeys } from '../../gateway/src/keys/subject-keys.ts'
import { tempDir } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'
import { freePort } from '../helpers/mosquitto.ts'
import { publish, veilProcesses } from '../helpers/veil-process.ts'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const { upstreamOn, startVeil, devices } = veilProcesses(cleanups)

// Each test runs one or two `veil start` processes; typical runs take 4 to 15 s. The limits are watchdogs for a
// loaded machine (a load of 15 on 2 cores has stretched a run past 20 s), not bounds.
describe('veil start: durability across SIGKILL and SIGTERM', () => {
  it('SIGKILL mid-stream with a backlog on disk: after a restart every acknowledged message reaches the upstream', async () => {
    const dir = tempDir('veil-crash-')
    cleanups.push(() => dir.remove())
    const dataDir = join(dir.path, 'data')
    const received: number[] = []
    let up = await upstreamOn(0, received)
    const port = up.port

    const first = await startVeil(dataDir, port)
    await until(() => first.output().includes('"event":"upstream_connected"'), {
      timeoutMs: 20_000,
      what: 'bridge connected',
    })
    const run = publish(await devices(first, 2))
    await until(() => run.acked.length >= 60, { timeoutMs: 45_000, what: '60 messages acknowledged' })
    // The upstream goes away: what devices publish now waits on Veil's disk only.
    await up.close()
    await until(() => run.acked.length >= 200, { timeoutMs: 45_000, what: '200 messages acknowledged' })
    first.child.kill('SIGKILL')
    expect((await first.exited).signal).toBe('SIGKILL')
    run.stop()
    const acked = [...run.acked]
    const before = new Set(received)
    expect(
      acked.filter((v) => !before.has(v)).length,
      'a backlog existed only on disk when Veil was killed',
    ).toBeGreaterThan(30)

    up = await upstreamOn(port, received)
    const second = await startVeil(dataDir, port)
    const have = (): Set<number> => new Set(received)
    await until(() => acked.every((v) => have().has(v)), {
      timeoutMs: 60_000,
      what: `all ${acked.length} acknowledged messages upstream`,
    })
    expect(second.output()).toMatch(/"event":"queue_recovered"/)
    const duplicates = received.length - have().size
    console.info(
      `SIGKILL: ${acked.length} acknowledged before the kill, ${acked.length - before.size} of them only on disk; ${received.length} arrivals, ${duplicates} duplicates`,
    )
    // Nothing arrives that no device sent.
    for (const v of received) expect(v % 10_000).toBeGreaterThan(0)
  }, 150_000)

  it('SIGTERM mid-stream exits 0 and leaves every acknowledged message in the durable queue', async () => {
    const dir = tempDir('veil-term-')
    cleanups.push(() => dir.remove())
    const dataDir = join(dir.path, 'data')
    // An upstream that is down for the whole run: everything acknowledged must be on disk at exit.
    const veil = await startVeil(dataDir, await freePort())
    const run = publish(await devices(veil, 3))
    await until(() => run.acked.length >= 150, { timeoutMs: 45_000, what: '150 messages acknowledged' })
    const t0 = Date.now()
    veil.child.kill('SIGTERM')
    const exit = await veil.exited
    const ms = Date.now() - t0
    run.stop()
    const acked = [...run.acked]
    expect(exit).toEqual({ code: 0, signal: null })
    expect(veil.output()).toMatch(/"event":"stopped"/)

    // Sealed under the subjects' keys (version 4 frames): opened with the key store of the same data directory.
    const keys = SubjectKeys.open(dataDir, loadOrCreateMasterKey(dataDir))
    const queue = new UpstreamQueue(join(dataDir, 'queue', 'svc'), DEFAULT_QUEUE, () => {}, Date.now, {
      keys,
      domain: 'svc',
    })
    cleanups.push(() => queue.close())
    const queued: number[] = []
    for (let t = queue.take(); t !== undefined; t = queue.take()) {
      const doc = JSON.parse(t.message.payload.toString('utf8')) as { data: { ENERGY: Record<string, unknown> } }
      // The queue holds filtered messages only: Power is not in the policy's allowlist.
      expect(Object.keys(doc.data.ENERGY)).toEqual(['Yesterday'])
      expect(t.message.topic).toMatch(/^veil\/svc\/smart_plug\/[a-z2-7]{26}\/sensor$/)
      queued.push(doc.data.ENERGY.Yesterday as number)
    }
    const inQueue = new Set(queued)
    expect(acked.filter((v) => !inQueue.has(v))).toEqual([])
    expect(queued.length).toBe(inQueue.size)
    console.info(`SIGTERM: exited 0 after ${ms} ms; ${acked.length} acknowledged, ${queued.length} in the queue`)
  }, 150_000)
})
