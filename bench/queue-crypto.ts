/**
 * What encryption at rest costs the durable queue per message (issue 16 part 1): the loop of bench/queue-path.ts
 * (UpstreamQueue.appendSettled in batches, then take and ack of each message, the Frigate event of section (b) as
 * payload) on a plain queue (version 3 frames) and on a sealed one (version 4, AES-256-GCM under per-subject keys),
 * in interleaved rounds so that a busy machine weighs on both alike. The sealed queue's messages go round-robin to
 * `subjects` subjects. Prints the median µs per message of each and the difference, then the frame codec alone
 * (encode and decode/open of one frame, no disk).
 * Usage: node --import tsx bench/queue-crypto.ts [rounds=9] [messagesPerRound=20000] [subjects=4]
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  decodeBody,
  encodeFrame,
  encodeSealedFrame,
  FRAME_HEADER,
  openFrame,
  type SealedFrame,
} from '../gateway/src/forward/queue/frame.ts'
import { DEFAULT_QUEUE, UpstreamQueue } from '../gateway/src/forward/queue/upstream-queue.ts'
import { SubjectKeys } from '../gateway/src/keys/subject-keys.ts'
import { e2eMessages } from './e2e.ts'

const rounds = Number(process.argv[2] ?? 9)
const perRound = Number(process.argv[3] ?? 20_000)
const subjectCount = Number(process.argv[4] ?? 4)
const BATCH = 320
const payload = Buffer.from((e2eMessages(1)[0] as { payload: string }).payload)
const topic = 'veil/svc/camera/p0123456789abcdef/frigate/events'
const subjects = Array.from({ length: subjectCount }, () => randomBytes(8).toString('hex'))
const config = { ...DEFAULT_QUEUE, segmentBytes: 64 << 20, fsync: 'interval' as const, fsyncIntervalMs: 1000 }

const plainDir = mkdtempSync(join(tmpdir(), 'veil-queue-crypto-plain-'))
const sealedDir = mkdtempSync(join(tmpdir(), 'veil-queue-crypto-sealed-'))
const keys = SubjectKeys.open(sealedDir, randomBytes(32))
const plain = new UpstreamQueue(join(plainDir, 'queue', 'svc'), config, () => {})
const sealed = new UpstreamQueue(join(sealedDir, 'queue', 'svc'), config, () => {}, Date.now, { keys, domain: 'svc' })

async function round(queue: UpstreamQueue): Promise<number> {
  const start = process.hrtime.bigint()
  let n = 0
  for (let done = 0; done < perRound; done += BATCH) {
    // One promise per batch, as on the bridge's per-message path.
    let batch: 'queue_full' | Promise<Error | undefined> = 'queue_full'
    for (let i = 0; i < BATCH; i++)
      batch = queue.appendSettled('camera', topic, 'v1', payload, undefined, subjects[n++ % subjectCount], '')
    if (batch === 'queue_full' || (await batch) !== undefined) throw new Error('the queue refused the benchmark batch')
    for (let t = queue.take(); t !== undefined; t = queue.take()) queue.ack(t.category, t.message.seq)
  }
  return Number(process.hrtime.bigint() - start) / 1000 / perRound
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

/** µs per call of `f`, the median of 7 runs of `n` calls. */
function perCall(n: number, f: () => void): number {
  const runs: number[] = []
  for (let r = 0; r < 7; r++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < n; i++) f()
    runs.push(Number(process.hrtime.bigint() - start) / 1000 / n)
  }
  return median(runs)
}

const plainRounds: number[] = []
const sealedRounds: number[] = []
try {
  // A warm-up round each (JIT, first key creation), not counted.
  await round(plain)
  await round(sealed)
  for (let r = 0; r < rounds; r++) {
    // Alternating which goes first, so neither always follows the other's garbage.
    if (r % 2 === 0) {
      plainRounds.push(await round(plain))
      sealedRounds.push(await round(sealed))
    } else {
      sealedRounds.push(await round(sealed))
      plainRounds.push(await round(plain))
    }
  }
} finally {
  await plain.close()
  await sealed.close()
  rmSync(plainDir, { recursive: true, force: true })
  rmSync(sealedDir, { recursive: true, force: true })
}
const p = median(plainRounds)
const s = median(sealedRounds)
const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(2)).join(', ')
console.log(`payload ${payload.length} bytes, ${perRound} messages per round, ${subjectCount} subjects`)
console.log(`plain  (v3) append + take + ack: median ${p.toFixed(2)} µs per message (rounds: ${fmt(plainRounds)})`)
console.log(`sealed (v4) append + take + ack: median ${s.toFixed(2)} µs per message (rounds: ${fmt(sealedRounds)})`)
console.log(`encryption at rest: +${(s - p).toFixed(2)} µs per message (${((s / p - 1) * 100).toFixed(0)} %)`)

// The codec alone: where the difference comes from.
const key = keys.keyFor(subjects[0] as string)
const context = Buffer.from('svc/camera')
const v3 = encodeFrame(1, Date.now(), topic, 'v1', payload, undefined, subjects[0], '')
const v4 = encodeSealedFrame(
  1,
  Date.now(),
  topic,
  'v1',
  payload,
  'application/json',
  subjects[0] as string,
  '',
  key,
  context,
)
const v3crc = v3.readUInt32LE(4)
const v4crc = v4.readUInt32LE(4)
const v4body = v4.subarray(FRAME_HEADER)
const N = 20_000
const enc3 = perCall(N, () => encodeFrame(1, 1, topic, 'v1', payload, undefined, subjects[0], ''))
const enc4 = perCall(N, () =>
  encodeSealedFrame(1, 1, topic, 'v1', payload, 'application/json', subjects[0] as string, '', key, context),
)
const dec3 = perCall(N, () => decodeBody(v3.subarray(FRAME_HEADER), v3crc))
const dec4 = perCall(N, () => openFrame(decodeBody(v4body, v4crc) as SealedFrame, key, context))
console.log(
  `codec: encode v3 ${enc3.toFixed(2)} µs, v4 ${enc4.toFixed(2)} µs; decode v3 ${dec3.toFixed(2)} µs, decode + open v4 ${dec4.toFixed(2)} µs`,
)
