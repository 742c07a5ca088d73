/**
 * The durable queue's per-message cost as the bridge drives it, through the calls the bridge makes
 * (UpstreamQueue.appendSettled, take, ack): batches of appends (one writev per turn), then take and ack of each
 * message, with the Frigate event of section (b) as payload. Prints µs per message, the
 * median of `rounds` rounds. Usage: node --import tsx bench/queue-path.ts [rounds=7] [messagesPerRound=20000]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_QUEUE, UpstreamQueue } from '../gateway/src/forward/queue/upstream-queue.ts'
import { e2eMessages } from './e2e.ts'

const rounds = Number(process.argv[2] ?? 7)
const perRound = Number(process.argv[3] ?? 20_000)
const BATCH = 320
const payload = Buffer.from((e2eMessages(1)[0] as { payload: string }).payload)
const topic = 'veil/svc/camera/p0123456789abcdef/frigate/events'
const dir = mkdtempSync(join(tmpdir(), 'veil-queue-bench-'))
const queue = new UpstreamQueue(
  dir,
  { ...DEFAULT_QUEUE, segmentBytes: 64 << 20, fsync: 'interval', fsyncIntervalMs: 1000 },
  () => {},
)
const results: number[] = []
try {
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint()
    for (let done = 0; done < perRound; done += BATCH) {
      // One promise per batch, as on the bridge's per-message path.
      let batch: 'queue_full' | Promise<Error | undefined> = 'queue_full'
      for (let i = 0; i < BATCH; i++) batch = queue.appendSettled('camera', topic, 'v1', payload)
      if (batch === 'queue_full' || (await batch) !== undefined)
        throw new Error('the queue refused the benchmark batch')
      for (let t = queue.take(); t !== undefined; t = queue.take()) queue.ack(t.category, t.message.seq)
    }
    results.push(Number(process.hrtime.bigint() - start) / 1000 / perRound)
  }
} finally {
  await queue.close()
  rmSync(dir, { recursive: true, force: true })
}
results.sort((a, b) => a - b)
console.log(
  `queue append + take + ack: median ${results[Math.floor(results.length / 2)]?.toFixed(2)} µs per message (rounds: ${results.map((x) => x.toFixed(2)).join(', ')})`,
)
