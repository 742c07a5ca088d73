/**
 * The queue encrypted at rest (issue 16 part 1): version 4 frames under per-subject keys, what a changed byte, a
 * moved frame or a forgotten key does at take, and a bridge that sends the others' copies in order and the forgotten
 * subject's never.
 */
import { randomBytes } from 'node:crypto'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { startUpstream } from '../../../../test/helpers/gateway.ts'
import { until } from '../../../../test/helpers/poll.ts'
import { SubjectKeys } from '../../keys/subject-keys.ts'
import type { Category } from '../../sdk/model.ts'
import { silentLogger } from '../../telemetry/log.ts'
import { Metrics } from '../../telemetry/metrics.ts'
import { UpstreamBridge } from '../bridge.ts'
import { encodeFrame, encodeSealedFrame, FRAME_HEADER, frameAt, openFrame, type QueuedMessage } from './frame.ts'
import { SegmentLog, type LogDropReason, type SegmentLogOptions } from './segment-log.ts'
import { DEFAULT_QUEUE, UpstreamQueue } from './upstream-queue.ts'

const ALICE = '3f9c0a7d12e4b605'
const BOB = 'b70e6a21c9d3f048'
const TOPIC = 'veil/svc/camera/pq2x7c4m9ktj3f6v/frigate/events'
const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'veil-sealed-'))
  cleanups.push(() => rmSync(d, { recursive: true, force: true }))
  return d
}

function logIn(
  dir: string,
  keys: SubjectKeys | undefined,
  drops: [LogDropReason, number][],
  context = 'svc/camera',
): SegmentLog {
  const options: SegmentLogOptions = {
    dir,
    segmentBytes: 1 << 20,
    segmentSpanMs: 3_600_000,
    ttlMs: 3_600_000,
    fsync: 'never',
    fsyncIntervalMs: 1000,
    onDrop: (reason, count) => drops.push([reason, count]),
    sealing: keys === undefined ? undefined : { keys, context },
  }
  const log = SegmentLog.open(options)
  cleanups.push(() => log.close())
  return log
}

function takeAll(log: SegmentLog): QueuedMessage[] {
  const out: QueuedMessage[] = []
  for (let m = log.take(); m !== undefined; m = log.take()) {
    out.push(m)
    log.ack(m.seq)
  }
  return out
}

function segmentsOf(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.seg'))
    .sort()
    .map((n) => join(dir, n))
}

/** The same bytes with the body's CRC made right again: what the tag alone must catch. */
function withCrc(frame: Buffer): Buffer {
  frame.writeUInt32LE(crc32(frame.subarray(FRAME_HEADER)), 4)
  return frame
}

describe('sealed queue frames (version 4)', () => {
  it('round-trips every field through a sealing log, and still reads version 3 frames written before', async () => {
    const dir = tempDir()
    const keys = SubjectKeys.open(tempDir(), randomBytes(32))
    // A backlog from before encryption: plain version 3 frames.
    writeFileSync(
      join(dir, '0000000000000001.seg'),
      encodeFrame(1, Date.now(), 'veil/svc/camera/old/events', 'v0', Buffer.from('{"old":1}'), undefined, BOB, ''),
    )
    const drops: [LogDropReason, number][] = []
    const log = logIn(dir, keys, drops)
    const payload = Buffer.from(JSON.stringify({ type: 'new', score: 0.93 }))
    await log.append(TOPIC, 'v7', payload, Date.now(), 'application/x-protobuf; messageType=x', ALICE, 'health')
    await log.append(TOPIC, 'v7', Buffer.alloc(0), Date.now(), undefined, undefined, undefined)
    await log.close()
    // The file holds a version 4 frame, its plaintext nowhere in it.
    const bytes = readFileSync(segmentsOf(dir).at(-1) as string)
    expect(bytes.includes(payload)).toBe(false)
    expect(bytes.includes(Buffer.from(TOPIC))).toBe(false)
    expect(bytes.includes(Buffer.from('health'))).toBe(false)

    const again = logIn(dir, keys, drops)
    const got = takeAll(again)
    expect(got.map((m) => m.seq)).toEqual([1, 2, 3])
    expect(got[0]).toMatchObject({ topic: 'veil/svc/camera/old/events', policy: 'v0', subject: BOB })
    expect(got[1]).toMatchObject({
      topic: TOPIC,
      policy: 'v7',
      contentType: 'application/x-protobuf; messageType=x',
      subject: ALICE,
      purpose: 'health',
    })
    expect(got[1]?.payload.equals(payload)).toBe(true)
    expect(got[2]).toMatchObject({ subject: 'household', purpose: '', contentType: 'application/json' })
    expect(got[2]?.payload.length).toBe(0)
    expect(drops).toEqual([])
  })

  it('a bit flipped anywhere in a frame (nonce, ciphertext, tag, clear fields; CRC fixed or not) is never opened', () => {
    const keys = SubjectKeys.open(tempDir(), randomBytes(32))
    const context = Buffer.from('svc/camera')
    const key = keys.keyFor(ALICE)
    const frame = encodeSealedFrame(
      5,
      1000,
      TOPIC,
      'v1',
      Buffer.from('{"a":1}'),
      'application/json',
      ALICE,
      'p',
      key,
      context,
    )
    const open = (bytes: Buffer): QueuedMessage | undefined => {
      const f = frameAt(bytes, 0)
      if (f === undefined) return undefined
      if (!('sealed' in f.message)) throw new Error('a sealed frame read as plain')
      const k = keys.keyById(f.message.subject, f.message.keyId)
      return k === undefined ? undefined : openFrame(f.message, k, context)
    }
    expect(open(frame)?.topic).toBe(TOPIC)
    for (let i = FRAME_HEADER; i < frame.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const flipped = Buffer.from(frame)
        flipped[i] = (flipped[i] as number) ^ bit
        expect(open(flipped), `byte ${i} bit ${bit}`).toBeUndefined()
        expect(open(withCrc(flipped)), `byte ${i} bit ${bit}, CRC fixed`).toBeUndefined()
      }
    }
  })

  it('at take, a failed tag is dropped as corrupt and a forgotten key as erased; the frames around them go on in order', async () => {
    const dir = tempDir()
    const keys = SubjectKeys.open(tempDir(), randomBytes(32))
    const drops: [LogDropReason, number][] = []
    const log = logIn(dir, keys, drops)
    for (let i = 1; i <= 4; i++) await log.append(TOPIC, 'v1', Buffer.from(`{"n":${i}}`), Date.now(), undefined, ALICE)
    await log.close()
    const [segment] = segmentsOf(dir)
    const data = readFileSync(segment as string)
    // Frame boundaries, then one flip in the nonce of #2, the ciphertext of #3 and the tag of #4 (CRCs fixed).
    const starts: number[] = []
    for (let o = 0; o < data.length; o += FRAME_HEADER + data.readUInt32LE(o)) starts.push(o)
    const nonceAt = (s: number): number => s + FRAME_HEADER + 18 + ALICE.length + 4
    const ends = [...starts.slice(1), data.length]
    for (const [frame, at] of [
      [1, nonceAt(starts[1] as number)],
      [2, nonceAt(starts[2] as number) + 12 + 3],
      [3, (ends[3] as number) - 1],
    ] as const) {
      data[at] = (data[at] as number) ^ 0x04
      withCrc(data.subarray(starts[frame], ends[frame]))
    }
    writeFileSync(segment as string, data)
    const reopened = logIn(dir, keys, drops)
    expect(takeAll(reopened).map((m) => m.payload.toString())).toEqual(['{"n":1}'])
    expect(drops).toEqual([['corrupt', 3]])
    await reopened.close()
  })

  it('a frame copied into another category, or renumbered to another place, does not open', async () => {
    const keys = SubjectKeys.open(tempDir(), randomBytes(32))
    const camera = tempDir()
    const drops: [LogDropReason, number][] = []
    const log = logIn(camera, keys, drops, 'svc/camera')
    await log.append(TOPIC, 'v1', Buffer.from('{"n":1}'), Date.now(), undefined, ALICE)
    await log.append(TOPIC, 'v1', Buffer.from('{"n":2}'), Date.now(), undefined, ALICE)
    await log.close()
    const [segment] = segmentsOf(camera)
    const plug = tempDir()
    copyFileSync(segment as string, join(plug, '0000000000000001.seg'))
    const other = logIn(plug, keys, drops, 'svc/smart_plug')
    expect(takeAll(other)).toEqual([])
    expect(drops).toEqual([['corrupt', 2]])

    // Frame 2 moved in front, its clear seq rewritten to 1 (CRC fixed): a replay in another order.
    const data = readFileSync(segment as string)
    const second = Buffer.from(data.subarray(FRAME_HEADER + data.readUInt32LE(0)))
    second.writeDoubleLE(1, FRAME_HEADER + 1)
    const moved = tempDir()
    writeFileSync(join(moved, '0000000000000001.seg'), withCrc(second))
    drops.length = 0
    expect(takeAll(logIn(moved, keys, drops, 'svc/camera'))).toEqual([])
    expect(drops).toEqual([['corrupt', 1]])
  })

  it('forget: the subject’s queued frames never open again, even with the files kept; others still do, in order', async () => {
    const dir = tempDir()
    const keyDir = tempDir()
    const master = randomBytes(32)
    const keys = SubjectKeys.open(keyDir, master)
    const drops: [LogDropReason, number][] = []
    const log = logIn(dir, keys, drops)
    for (let i = 1; i <= 6; i++)
      await log.append(TOPIC, 'v1', Buffer.from(`{"n":${i}}`), Date.now(), undefined, i % 2 === 0 ? ALICE : BOB)
    await log.close()
    expect(keys.forget(ALICE)).toBe(true)
    // A restart: the key store from disk, the segment files untouched.
    const again = logIn(dir, SubjectKeys.open(keyDir, master), drops)
    const got = takeAll(again)
    expect(got.map((m) => m.payload.toString())).toEqual(['{"n":1}', '{"n":3}', '{"n":5}'])
    expect(got.every((m) => m.subject === BOB)).toBe(true)
    expect(drops.filter(([r]) => r === 'erased').reduce((n, [, c]) => n + c, 0)).toBe(3)
    expect(drops.some(([r]) => r === 'corrupt')).toBe(false)
  })

  it('a bridge never sends a forgotten subject’s queued copies; the others reach an in-process upstream in order', async () => {
    const dataDir = tempDir()
    const keys = SubjectKeys.open(dataDir, randomBytes(32))
    // The backlog of an upstream that was down: written by the queue exactly as the bridge writes it.
    const queue = new UpstreamQueue(join(dataDir, 'queue', 'svc'), DEFAULT_QUEUE, () => {}, Date.now, {
      keys,
      domain: 'svc',
    })
    const N = 30
    let last: Promise<Error | undefined> | 'queue_full' = 'queue_full'
    for (let i = 0; i < N; i++) {
      const category: Category = i % 3 === 0 ? 'smart_plug' : 'camera'
      last = queue.appendSettled(
        category,
        `${TOPIC}/${i}`,
        'v1',
        Buffer.from(`{"n":${i}}`),
        undefined,
        i % 2 ? ALICE : BOB,
      )
    }
    expect(await last).toBeUndefined()
    await queue.close()
    expect(keys.forget(ALICE)).toBe(true)

    const upstream = await startUpstream()
    cleanups.push(() => upstream.close())
    const drops: [string, string, number][] = []
    let delivered = 0
    const bridge = new UpstreamBridge({
      domain: 'svc',
      config: {
        url: upstream.url,
        protocolVersion: 4,
        topicPrefix: '',
        required: false,
        maxPending: 4,
        maxPendingBytes: 1 << 20,
      },
      queue: DEFAULT_QUEUE,
      reconnect: { minMs: 50, maxMs: 200 },
      dataDir,
      metrics: new Metrics({ defaultMetrics: false }),
      logger: silentLogger(),
      onDrop: (category, reason, count) => drops.push([category, reason, count]),
      onDelivered: () => delivered++,
      subjectKeys: keys,
    })
    cleanups.push(() => bridge.close(0))
    const bob = [...Array(N).keys()].filter((i) => i % 2 === 0)
    await until(() => bridge.pending === 0, { timeoutMs: 10_000, what: 'the backlog sent or dropped' })
    expect(delivered).toBe(bob.length)
    // In order per category (so per device); the categories are merged by enqueue time, equal here.
    const sent = upstream.received.map((p) => ({ n: Number(p.topic.split('/').at(-1)), payload: p.payload.toString() }))
    expect(sent.every(({ n, payload }) => payload === `{"n":${n}}`)).toBe(true)
    for (const inCategory of [(i: number) => i % 3 === 0, (i: number) => i % 3 !== 0])
      expect(sent.map(({ n }) => n).filter(inCategory)).toEqual(bob.filter(inCategory))
    expect(sent.length).toBe(bob.length)
    expect(drops.every(([, reason]) => reason === 'erased')).toBe(true)
    expect(drops.reduce((n, [, , c]) => n + c, 0)).toBe(N - bob.length)
  })

  it('a copy opened and held for the merge before its subject was forgotten is dropped, not handed out', async () => {
    const keys = SubjectKeys.open(tempDir(), randomBytes(32))
    let t = 1_000_000
    const drops: [Category, string, number][] = []
    const queue = new UpstreamQueue(
      join(tempDir(), 'svc'),
      DEFAULT_QUEUE,
      (category, reason, count) => drops.push([category, reason, count]),
      () => t++,
      { keys, domain: 'svc' },
    )
    cleanups.push(() => queue.close())
    await queue.appendSettled('camera', TOPIC, 'v1', Buffer.from('{"n":1}'), undefined, ALICE)
    await queue.appendSettled('smart_plug', TOPIC, 'v1', Buffer.from('{"n":2}'), undefined, ALICE)
    await queue.appendSettled('smart_plug', TOPIC, 'v1', Buffer.from('{"n":3}'), undefined, BOB)
    // Taking the oldest opens the head of every category: alice's plug copy waits, decrypted, for the next take.
    expect(queue.take()?.message.payload.toString()).toBe('{"n":1}')
    keys.forget(ALICE)
    expect(queue.take()?.message.payload.toString()).toBe('{"n":3}')
    expect(queue.take()).toBeUndefined()
    expect(drops).toEqual([['smart_plug', 'erased', 1]])
  })

  it('a log given no keys reads a sealed frame as unreadable, not as plaintext', async () => {
    const dir = tempDir()
    const keys = SubjectKeys.open(tempDir(), randomBytes(32))
    const drops: [LogDropReason, number][] = []
    const log = logIn(dir, keys, drops)
    await log.append(TOPIC, 'v1', Buffer.from('{}'), Date.now(), undefined, ALICE)
    await log.close()
    mkdirSync(dir, { recursive: true })
    expect(takeAll(logIn(dir, undefined, drops))).toEqual([])
    expect(drops).toEqual([['erased', 1]])
  })
})
