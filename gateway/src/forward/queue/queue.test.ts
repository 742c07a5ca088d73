import { crc32 } from 'node:zlib'
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { until } from '../../../../test/helpers/poll.ts'
import { encodeFrame, frameAt as storedFrameAt, type QueuedMessage } from './frame.ts'
import { SegmentLog, type FsyncPolicy, type LogDropReason, type SegmentLogOptions } from './segment-log.ts'
import { DEFAULT_QUEUE, UpstreamQueue } from './upstream-queue.ts'

const dirs: string[] = []
const open: { close(): Promise<void> }[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((l) => l.close()))
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function temp(): string {
  const d = mkdtempSync(join(tmpdir(), 'veil-queue-'))
  dirs.push(d)
  return d
}

function clock(start = 1_700_000_000_000): { now: () => number; advance(ms: number): void } {
  let t = start
  return { now: () => t, advance: (ms) => (t += ms) }
}

function logAt(
  dir: string,
  options: Partial<SegmentLogOptions> = {},
): { log: SegmentLog; drops: [LogDropReason, number][] } {
  const drops: [LogDropReason, number][] = []
  const log = SegmentLog.open({
    dir,
    segmentBytes: 1 << 20,
    segmentSpanMs: 3_600_000,
    ttlMs: 86_400_000,
    fsync: 'never',
    fsyncIntervalMs: 1000,
    onDrop: (reason, count) => drops.push([reason, count]),
    ...options,
  })
  open.push(log)
  return { log, drops }
}

const payloadOf = (i: number): Buffer => Buffer.from(JSON.stringify({ policy: 'v1', data: { n: i } }))

function takeAll(log: { take(): { seq: number; payload: Buffer } | undefined }): { seq: number; n: number }[] {
  const out: { seq: number; n: number }[] = []
  for (let m = log.take(); m !== undefined; m = log.take())
    out.push({ seq: m.seq, n: (JSON.parse(m.payload.toString()) as { data: { n: number } }).data.n })
  return out
}

/** A version 2 or 3 frame: decoded whole, no key involved. */
function frameAt(data: Buffer, offset: number): { message: QueuedMessage; end: number } | undefined {
  const f = storedFrameAt(data, offset)
  if (f !== undefined && 'sealed' in f.message) throw new Error('a sealed frame where a plain one was expected')
  return f as { message: QueuedMessage; end: number } | undefined
}

async function closeAndForget(log: SegmentLog): Promise<void> {
  await log.close()
  open.splice(open.indexOf(log), 1)
}

describe('queue frames', () => {
  it('round-trips the content type, JSON unless given', () => {
    const proto = frameAt(
      encodeFrame(1, 1, 't', 'v1', Buffer.from([8, 1]), 'application/x-protobuf; messageType=veil.v1.Filtered'),
      0,
    )
    expect(proto?.message.contentType).toBe('application/x-protobuf; messageType=veil.v1.Filtered')
    expect(frameAt(encodeFrame(2, 1, 't', 'v1', Buffer.from('{}')), 0)?.message.contentType).toBe('application/json')
  })

  it('round-trips topic, policy, enqueue time and payload, and rejects a flipped bit', () => {
    const frame = encodeFrame(7, 1234.5, 'veil/svc/camera/abc/events', 'deadbeef', Buffer.from([0, 1, 2, 255]))
    const decoded = frameAt(frame, 0)
    expect(decoded?.end).toBe(frame.length)
    expect(decoded?.message).toMatchObject({
      seq: 7,
      enqueuedAt: 1234.5,
      topic: 'veil/svc/camera/abc/events',
      policy: 'deadbeef',
    })
    expect([...(decoded?.message.payload ?? [])]).toEqual([0, 1, 2, 255])
    const flipped = Buffer.from(frame)
    flipped.writeUInt8(flipped.readUInt8(frame.length - 2) ^ 0x10, frame.length - 2)
    expect(frameAt(flipped, 0)).toBeUndefined()
    expect(frameAt(frame.subarray(0, frame.length - 1), 0)).toBeUndefined()
  })

  it('round-trips the subject id and purpose a copy was filtered for, the household and the default unless given', () => {
    const frame = encodeFrame(
      3,
      1,
      't',
      'v1',
      Buffer.from('{}'),
      'application/json',
      'a11ce0000000000a',
      'health_consent',
    )
    expect(frameAt(frame, 0)?.message).toMatchObject({ subject: 'a11ce0000000000a', purpose: 'health_consent' })
    expect(
      SegmentLog.frameSize('t', 'v1', Buffer.from('{}'), 'application/json', 'a11ce0000000000a', 'health_consent'),
    ).toBe(frame.length)
    expect(frameAt(encodeFrame(4, 1, 't', 'v1', Buffer.from('{}')), 0)?.message).toMatchObject({
      subject: 'household',
      purpose: '',
    })
  })

  it("reads a version 2 frame (written before consent) as the household's, under the default policy", () => {
    // [u8 2][f64 seq][f64 enqueued][u16 topic len][topic][u8 policy len][policy][u8 type len][type][payload]
    const topic = Buffer.from('t')
    const policy = Buffer.from('v1')
    const type = Buffer.from('application/json')
    const payload = Buffer.from('{"a":1}')
    const body = Buffer.alloc(1 + 8 + 8 + 2 + topic.length + 1 + policy.length + 1 + type.length + payload.length)
    let o = body.writeUInt8(2, 0)
    o = body.writeDoubleLE(9, o)
    o = body.writeDoubleLE(5, o)
    o = body.writeUInt16LE(topic.length, o)
    o += topic.copy(body, o)
    o = body.writeUInt8(policy.length, o)
    o += policy.copy(body, o)
    o = body.writeUInt8(type.length, o)
    o += type.copy(body, o)
    payload.copy(body, o)
    const header = Buffer.alloc(8)
    header.writeUInt32LE(body.length, 0)
    header.writeUInt32LE(crc32(body), 4)
    const decoded = frameAt(Buffer.concat([header, body]), 0)?.message
    expect(decoded).toMatchObject({
      seq: 9,
      enqueuedAt: 5,
      topic: 't',
      policy: 'v1',
      subject: 'household',
      purpose: '',
    })
    expect(decoded?.payload.toString()).toBe('{"a":1}')
  })
})

describe('SegmentLog', () => {
  it('appends, hands messages out in order and survives a reopen with nothing acknowledged lost', async () => {
    const dir = temp()
    const { log } = logAt(dir)
    await Promise.all(Array.from({ length: 50 }, (_, i) => log.append('t', 'v1', payloadOf(i))))
    expect(log.depth).toBe(50)
    const first = takeAll(log)
    expect(first.map((m) => m.n)).toEqual(Array.from({ length: 50 }, (_, i) => i))
    for (const m of first.slice(0, 20)) log.ack(m.seq)
    expect(log.depth).toBe(30)
    await closeAndForget(log)

    const again = logAt(dir).log
    expect(again.recovery.messages).toBe(50)
    expect(takeAll(again).map((m) => m.n)).toEqual(Array.from({ length: 30 }, (_, i) => i + 20))
    // New appends number on from the old ones.
    await again.append('t', 'v1', payloadOf(99))
    expect(takeAll(again)).toEqual([{ seq: 51, n: 99 }])
  })

  it('hands out frames kept in memory and frames read back from disk alike, across segments, past the memory bound and after a rewind', async () => {
    const { log } = logAt(temp(), { segmentBytes: 256 * 1024 })
    // 3 MiB of 48 kB payloads: more than the 2 MiB of written frames kept in memory, over a dozen segments.
    const big = (i: number): Buffer =>
      Buffer.from(JSON.stringify({ policy: 'v1', data: { n: i }, pad: 'x'.repeat(48 * 1024) }))
    await Promise.all(Array.from({ length: 64 }, (_, i) => log.append('t', 'v1', big(i))))
    const firstTen = Array.from({ length: 10 }, () => log.take()?.seq)
    expect(firstTen).toEqual(Array.from({ length: 10 }, (_, i) => i + 1))
    log.ack(1)
    log.ack(2)
    log.rewind()
    // Interleaved with new appends taken from memory: every message once, in order, whole.
    const seen: number[] = []
    for (let round = 0; round < 3; round++) {
      for (let m = log.take(); m !== undefined; m = log.take()) {
        expect((JSON.parse(m.payload.toString()) as { data: { n: number } }).data.n).toBe(m.seq - 1)
        seen.push(m.seq)
      }
      await log.append('t', 'v1', big(64 + round))
    }
    expect(seen).toEqual(Array.from({ length: 64 + 2 - 2 }, (_, i) => i + 3))
    expect(log.take()?.seq).toBe(67)
  })

  it('acknowledged out of order: the cursor waits for the gap, a reopen resends from it', async () => {
    const dir = temp()
    const { log } = logAt(dir)
    await Promise.all([0, 1, 2, 3].map((i) => log.append('t', 'v1', payloadOf(i))))
    const taken = takeAll(log)
    log.ack(taken[0]!.seq)
    log.ack(taken[2]!.seq)
    log.ack(taken[3]!.seq)
    expect(log.ackedThrough).toBe(1)
    await closeAndForget(log)
    // At least once: 2 and 3 were acknowledged behind the gap, so they come again with 1.
    expect(takeAll(logAt(dir).log).map((m) => m.n)).toEqual([1, 2, 3])
  })

  it('acknowledged in a shuffled order: the cursor ends at the last message and every segment but the newest is gone', async () => {
    const dir = temp()
    const { log } = logAt(dir, { segmentBytes: 2048 })
    await Promise.all(Array.from({ length: 3000 }, (_, i) => log.append('t', 'v1', payloadOf(i))))
    const taken = takeAll(log)
    // A fixed shuffle (LCG) so a failure reproduces.
    let x = 12345
    for (let i = taken.length - 1; i > 0; i--) {
      x = (x * 1103515245 + 12345) % 2 ** 31
      const j = x % (i + 1)
      ;[taken[i], taken[j]] = [taken[j] as { seq: number; n: number }, taken[i] as { seq: number; n: number }]
    }
    for (const [k, m] of taken.entries()) {
      log.ack(m.seq)
      log.ack(m.seq) // a duplicate PUBACK changes nothing
      if (k === 1500) expect(log.ackedThrough).toBeLessThan(3000)
    }
    expect(log.ackedThrough).toBe(3000)
    expect(log.depth).toBe(0)
    expect(readdirSync(dir).filter((n) => n.endsWith('.seg'))).toHaveLength(1)
  })

  it('under fsync always, appends spanning several segment rolls resolve after the sync and all survive a reopen', async () => {
    const dir = temp()
    const { log } = logAt(dir, { segmentBytes: 1024, fsync: 'always' })
    for (let round = 0; round < 4; round++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => log.append('t', 'v1', payloadOf(round * 50 + i))))
    }
    expect(readdirSync(dir).filter((n) => n.endsWith('.seg')).length).toBeGreaterThan(5)
    await closeAndForget(log)
    expect(takeAll(logAt(dir).log).map((m) => m.n)).toEqual(Array.from({ length: 200 }, (_, i) => i))
  })

  it('truncates a torn tail on recovery and keeps every whole message before it', async () => {
    const dir = temp()
    const { log } = logAt(dir)
    await Promise.all([0, 1, 2].map((i) => log.append('t', 'v1', payloadOf(i))))
    await closeAndForget(log)
    const [segment] = readdirSync(dir).filter((n) => n.endsWith('.seg'))
    const path = join(dir, segment as string)
    const whole = statSync(path).size
    // A killed writer: the next frame's header and half its body.
    const next = encodeFrame(4, Date.now(), 't', 'v1', payloadOf(3))
    appendFileSync(path, next.subarray(0, next.length - 5))

    const recovered = logAt(dir).log
    expect(recovered.recovery).toEqual({ segments: 1, messages: 3, truncatedBytes: next.length - 5 })
    expect(statSync(path).size).toBe(whole)
    expect(takeAll(recovered).map((m) => m.n)).toEqual([0, 1, 2])
    await recovered.append('t', 'v1', payloadOf(3))
    expect(takeAll(recovered).map((m) => m.n)).toEqual([3])
  })

  it('a corrupt cursor slot falls back to the other one', async () => {
    const dir = temp()
    const { log } = logAt(dir)
    await Promise.all([0, 1, 2, 3].map((i) => log.append('t', 'v1', payloadOf(i))))
    const taken = takeAll(log)
    log.ack(taken[0]!.seq)
    // The cursor is persisted on a 200 ms timer: wait for slot 0 to hold it rather than for the timer's length.
    await until(
      () => {
        const cursor = readFileSync(join(dir, 'cursor'))
        return cursor.length >= 8 && cursor.readDoubleLE(0) === 1
      },
      { what: 'the first cursor in slot 0' },
    )
    log.ack(taken[1]!.seq)
    await closeAndForget(log)
    const cursor = readFileSync(join(dir, 'cursor'))
    // Tear the newer slot (slot 1 holds cursor 2, slot 0 cursor 1).
    expect(cursor.readDoubleLE(16)).toBe(2)
    cursor.writeUInt8(cursor.readUInt8(17) ^ 0xff, 17)
    writeFileSync(join(dir, 'cursor'), cursor)
    expect(takeAll(logAt(dir).log).map((m) => m.n)).toEqual([1, 2, 3])
  })

  it('deletes segments once fully acknowledged and keeps disk bytes to the unacknowledged tail', async () => {
    const dir = temp()
    const { log } = logAt(dir, { segmentBytes: 1024 })
    await Promise.all(Array.from({ length: 200 }, (_, i) => log.append('t', 'v1', payloadOf(i))))
    const segments = (): number => readdirSync(dir).filter((n) => n.endsWith('.seg')).length
    expect(segments()).toBeGreaterThan(10)
    for (const m of takeAll(log)) log.ack(m.seq)
    expect(log.depth).toBe(0)
    expect(segments()).toBe(1) // the one still taking appends
    expect(log.bytes).toBeLessThanOrEqual(1024)
  })

  it('never hands out a message past its TTL and deletes expired segments, counting them', async () => {
    const dir = temp()
    const c = clock()
    const { log, drops } = logAt(dir, { ttlMs: 10_000, segmentSpanMs: 1000, now: c.now })
    await log.append('t', 'v1', payloadOf(0))
    c.advance(5000)
    await log.append('t', 'v1', payloadOf(1))
    c.advance(6000) // message 0 is 11 s old, message 1 is 6 s old
    expect(takeAll(log).map((m) => m.n)).toEqual([1])
    expect(drops).toEqual([['expired', 1]])
    c.advance(5000)
    expect(log.expire()).toBe(1)
    expect(drops).toEqual([
      ['expired', 1],
      ['expired', 1],
    ])
    expect(readdirSync(dir).filter((n) => n.endsWith('.seg'))).toEqual([])
    expect(log.depth).toBe(0)
  })
})

describe('UpstreamQueue', () => {
  /** appendSettled, the path the bridge uses, awaited: `queued` once the batch is with the kernel. */
  async function append(
    q: UpstreamQueue,
    ...args: Parameters<UpstreamQueue['appendSettled']>
  ): Promise<'queued' | 'queue_full'> {
    const appended = q.appendSettled(...args)
    if (appended === 'queue_full') return appended
    const err = await appended
    if (err !== undefined) throw err
    return 'queued'
  }

  function queueAt(
    dir: string,
    maxBytes: number,
    now?: () => number,
    fsync: FsyncPolicy = 'always',
  ): { q: UpstreamQueue; drops: [string, string, number][] } {
    const drops: [string, string, number][] = []
    const q = new UpstreamQueue(
      dir,
      { ...DEFAULT_QUEUE, maxBytes, segmentBytes: 4096, fsync },
      (c, r, n) => drops.push([c, r, n]),
      now,
    )
    open.push(q)
    return { q, drops }
  }

  it('merges categories oldest first and keeps each category (so each device) in order across a reopen', async () => {
    const dir = temp()
    const c = clock()
    const { q } = queueAt(dir, 1 << 20, c.now)
    for (let i = 0; i < 6; i++) {
      await append(q, i % 2 === 0 ? 'camera' : 'smart_plug', `veil/svc/x/p${i % 2}/s`, 'v1', payloadOf(i))
      c.advance(10)
    }
    const order: number[] = []
    for (let t = q.take(); t !== undefined; t = q.take())
      order.push((JSON.parse(t.message.payload.toString()) as { data: { n: number } }).data.n)
    expect(order).toEqual([0, 1, 2, 3, 4, 5])
    await q.close()
    open.splice(open.indexOf(q), 1)
    const again = queueAt(dir, 1 << 20, c.now).q
    expect(again.depth).toBe(6)
    const taken: string[] = []
    for (let t = again.take(); t !== undefined; t = again.take()) {
      taken.push(`${t.category}:${(JSON.parse(t.message.payload.toString()) as { data: { n: number } }).data.n}`)
      again.ack(t.category, t.message.seq)
    }
    expect(taken).toEqual(['camera:0', 'smart_plug:1', 'camera:2', 'smart_plug:3', 'camera:4', 'smart_plug:5'])
    expect(again.depth).toBe(0)
  })

  it('at its byte bound drops the oldest segment first, counts it, and keeps the newest messages in order', async () => {
    const dir = temp()
    const { q, drops } = queueAt(dir, 16 * 1024, undefined, 'never')
    const total = 1000
    for (let i = 0; i < total; i++) {
      expect(await append(q, 'smart_plug', 'veil/svc/smart_plug/p/s', 'v1', payloadOf(i))).toBe('queued')
      expect(q.bytes).toBeLessThanOrEqual(16 * 1024)
    }
    const evicted = drops.filter(([, r]) => r === 'evicted').reduce((n, [, , k]) => n + k, 0)
    expect(evicted).toBeGreaterThan(0)
    const kept: number[] = []
    for (let t = q.take(); t !== undefined; t = q.take())
      kept.push((JSON.parse(t.message.payload.toString()) as { data: { n: number } }).data.n)
    expect(kept.length + evicted).toBe(total)
    // What survives is the newest stretch, contiguous and in order.
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => total - kept.length + i))
  })

  it('refuses a directory locked by another live process and takes over the lock of a dead one', async () => {
    const dir = temp()
    writeFileSync(join(dir, 'lock'), `${process.ppid}\n`)
    expect(() => new UpstreamQueue(dir, DEFAULT_QUEUE, () => {})).toThrow(`in use by process ${process.ppid}`)
    writeFileSync(join(dir, 'lock'), '2147483646\n') // no such process
    const { q } = queueAt(dir, 1 << 20)
    expect(readFileSync(join(dir, 'lock'), 'utf8')).toBe(`${process.pid}\n`)
    await q.close()
    open.splice(open.indexOf(q), 1)
    expect(readdirSync(dir)).not.toContain('lock')
  })

  it('refuses only a message larger than the whole bound', async () => {
    const { q } = queueAt(temp(), 1024)
    expect(await append(q, 'camera', 't', 'v1', Buffer.alloc(2048))).toBe('queue_full')
    expect(await append(q, 'camera', 't', 'v1', Buffer.alloc(100))).toBe('queued')
  })

  it('rewind hands out everything unacknowledged again, in order', async () => {
    const { q } = queueAt(temp(), 1 << 20)
    for (let i = 0; i < 5; i++) await append(q, 'gps_tracker', 't', 'v1', payloadOf(i))
    const first = [q.take(), q.take(), q.take()]
    q.ack('gps_tracker', first[0]!.message.seq)
    q.rewind()
    const seqs: number[] = []
    for (let t = q.take(); t !== undefined; t = q.take()) seqs.push(t.message.seq)
    expect(seqs).toEqual([2, 3, 4, 5])
  })

  it('appendSettled: one promise per batch that resolves to undefined once written, to the error when the disk refused it, never rejecting', async () => {
    const dir = temp()
    const { q } = queueAt(dir, 1 << 20)
    const a = q.appendSettled('camera', 't', 'v1', payloadOf(0))
    const b = q.appendSettled('camera', 't', 'v1', payloadOf(1))
    expect(a).toBe(b)
    expect(await a).toBeUndefined()
    expect(q.appendSettled('camera', 't', 'v1', Buffer.alloc(2 << 20))).toBe('queue_full')
    expect([q.take()?.message.seq, q.take()?.message.seq, q.take()]).toEqual([1, 2, undefined])

    // The category's directory replaced by a file: the next segment cannot be created (ENOTDIR, even as root).
    const broken = temp()
    const { log } = logAt(broken, { segmentBytes: 4096 })
    rmSync(broken, { recursive: true, force: true })
    writeFileSync(broken, 'not a directory')
    const c = log.appendSettled('t', 'v1', payloadOf(2))
    expect(log.appendSettled('t', 'v1', payloadOf(3))).toBe(c)
    const err = await c
    expect(err).toBeInstanceOf(Error)
    expect(log.take()).toBeUndefined()
  })
})
