import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  truncateSync,
  unlinkSync,
  writeSync,
  writevSync,
} from 'node:fs'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import {
  DEFAULT_CONTENT_TYPE,
  FRAME_HEADER,
  LEGACY_SUBJECT,
  bodyLengthOf,
  decodeBody,
  encodeFrame,
  encodeSealedFrame,
  frameAt,
  openFrame,
  sealedFrameSize,
  type FrameKeys,
  type QueuedMessage,
  type StoredFrame,
} from './frame.ts'

/**
 * When appended messages are forced to stable storage. Every policy hands the bytes to the kernel before the
 * append resolves, so a killed process (SIGKILL, OOM) loses nothing acknowledged; the policy only decides what a
 * power cut can take: `always` nothing (one fdatasync per batch of appends), `interval` up to that many ms,
 * `never` whatever the kernel had not written back.
 */
export type FsyncPolicy = 'always' | 'interval' | 'never'

/** `corrupt`: unreadable, or a sealed frame whose tag fails; `erased`: sealed under a subject key that was forgotten. */
export type LogDropReason = 'expired' | 'evicted' | 'corrupt' | 'erased'

/**
 * Encryption at rest: appends are written as version 4 frames under the subject's data key, with `context` (the
 * queue's `<domain>/<category>`) authenticated with each, so a frame copied into another queue does not open.
 */
export interface FrameSealing {
  readonly keys: FrameKeys
  readonly context: string
}

export interface SegmentLogOptions {
  readonly dir: string
  /** A segment takes appends up to this size; whole segments are the unit of deletion. */
  readonly segmentBytes: number
  /** A segment stops taking appends once its first message is this old, so expired bytes leave the disk within it. */
  readonly segmentSpanMs: number
  readonly ttlMs: number
  readonly fsync: FsyncPolicy
  readonly fsyncIntervalMs: number
  /** Messages that leave the log without an acknowledgement: expired, evicted for space, or unreadable. */
  readonly onDrop: (reason: LogDropReason, count: number) => void
  readonly now?: () => number
  /** Absent: version 3 frames in the clear (tests, the plain benchmark). */
  readonly sealing?: FrameSealing | undefined
}

interface Segment {
  readonly base: number
  readonly path: string
  /** Bytes and messages handed to the kernel. */
  bytes: number
  count: number
  oldest: number
  newest: number
  /** Open for appends: only the newest segment, and only after it took its first append in this process. */
  fd: number | undefined
}

interface Batch {
  readonly frames: Buffer[]
  readonly times: number[]
  readonly firstSeq: number
  bytes: number
  readonly done: Promise<void>
  /** `done` as a value, made on the first appendSettled of the batch: one promise per batch, not per message. */
  settled: Promise<Error | undefined> | undefined
  resolve(): void
  reject(err: Error): void
}

const NO_ERROR = (): undefined => undefined
const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)))

interface Reader {
  segment: Segment
  fd: number
  offset: number
  seq: number
}

/** A frame just written, kept in memory so that taking it soon after needs no read from disk. */
interface HotFrame {
  readonly seq: number
  readonly frame: Buffer
  readonly segment: Segment
  /** Where the frame starts in its segment file. */
  readonly offset: number
}

/**
 * Bytes of recently written frames a log keeps for `take`. With a connected upstream a message is taken within a
 * turn or two of its append, so this is a few batches; a backlog beyond it is read from disk as before.
 */
const HOT_TAIL_BYTES = 2 * 1024 * 1024

interface InFlight {
  readonly seq: number
  readonly enqueuedAt: number
  acked: boolean
}

const SEGMENT_NAME = /^(\d{16})\.seg$/
const CURSOR_FILE = 'cursor'
const CURSOR_SLOT = 16
const CURSOR_PERSIST_MS = 200

export interface RecoveryReport {
  readonly segments: number
  readonly messages: number
  readonly truncatedBytes: number
}

/**
 * An append-only log of one upstream's messages of one category, in numbered segment files, with a persisted
 * acknowledgement cursor. Appends are batched (one writev per turn of the event loop) and resolve once the batch
 * is with the kernel (and on disk under `fsync: always`). Messages are taken in order, acknowledged in any order;
 * the cursor is the highest sequence number up to which everything is acknowledged, and a segment is deleted once
 * the cursor passes its end. Memory does not grow with the backlog: the log keeps a few numbers per segment, never
 * an index per message, and the newest written frames up to HOT_TAIL_BYTES, which `take` hands out without reading
 * them back from disk. See README.md.
 */
export class SegmentLog {
  readonly #options: SegmentLogOptions
  readonly #now: () => number
  readonly #keys: FrameKeys | undefined
  readonly #context: Buffer
  readonly #segments: Segment[] = []
  readonly #cursorFd: number
  #cursorSlot = 0
  #cursorDirty = false
  #cursorTimer: NodeJS.Timeout | undefined
  #fsyncTimer: NodeJS.Timeout | undefined
  #nextSeq: number
  #flushedSeq: number
  #ackedThrough: number
  #readSeq: number
  #reader: Reader | undefined
  /** Written frames not yet taken, in sequence order from `#hotHead` on; bounded by HOT_TAIL_BYTES (oldest go first). */
  #hot: HotFrame[] = []
  #hotHead = 0
  #hotBytes = 0
  #batch: Batch | undefined
  #bytes = 0
  #pendingBytes = 0
  /** Taken and not yet passed by the cursor, in sequence order, from `#inflightHead` on (no shift per PUBACK). */
  #inflight: InFlight[] = []
  #inflightHead = 0
  #syncing = false
  #dirty = false
  #awaitingSync: Batch[] = []
  #deferredClose: number[] = []
  /** Descriptors of segments rolled since the last sync: synced, then closed. */
  #rolled: number[] = []
  #closed = false
  /** Called after appends reach the kernel: there is something new to take. */
  onAppended: (() => void) | undefined
  readonly recovery: RecoveryReport

  private constructor(options: SegmentLogOptions) {
    this.#options = options
    this.#now = options.now ?? Date.now
    this.#keys = options.sealing?.keys
    this.#context = Buffer.from(options.sealing?.context ?? '')
    mkdirSync(options.dir, { recursive: true, mode: 0o700 })
    this.recovery = this.#recoverSegments()
    const last = this.#segments.at(-1)
    const tail = last === undefined ? 0 : last.base + last.count - 1
    const cursorPath = join(options.dir, CURSOR_FILE)
    // Created if missing ('a'), then opened for positioned writes ('r+': in append mode pwrite ignores the offset).
    closeSync(openSync(cursorPath, 'a', 0o600))
    this.#cursorFd = openSync(cursorPath, 'r+')
    const cursor = this.#readCursor()
    const head = this.#segments[0]
    // The cursor may trail deleted segments (crash between delete and persist) or, after a power cut under a lax
    // fsync policy, pass the surviving tail: numbering continues above both so a number is never reused.
    this.#ackedThrough = Math.max(cursor, head === undefined ? tail : head.base - 1)
    this.#nextSeq = Math.max(tail, this.#ackedThrough) + 1
    this.#flushedSeq = this.#nextSeq - 1
    this.#readSeq = this.#ackedThrough + 1
    this.#deleteAcknowledged(true)
    for (const s of this.#segments) this.#bytes += s.bytes
    if (options.fsync === 'interval') {
      this.#fsyncTimer = setInterval(() => this.#sync(), options.fsyncIntervalMs)
      this.#fsyncTimer.unref()
    }
  }

  /** Opens (and recovers) the log in `options.dir`: a torn tail is truncated, fully acknowledged segments deleted. */
  static open(options: SegmentLogOptions): SegmentLog {
    return new SegmentLog(options)
  }

  /** Bytes on disk plus bytes of appends not yet written. */
  get bytes(): number {
    return this.#bytes + this.#pendingBytes
  }

  /** Messages not yet acknowledged (written or about to be). */
  get depth(): number {
    let n = this.#batch?.frames.length ?? 0
    for (const s of this.#segments) n += Math.max(0, s.base + s.count - 1 - Math.max(this.#ackedThrough, s.base - 1))
    return n
  }

  /** Enqueue time of the oldest message not yet acknowledged, or undefined when there is none. */
  get oldestUnacked(): number | undefined {
    for (let i = this.#inflightHead; i < this.#inflight.length; i++) {
      const f = this.#inflight[i] as InFlight
      if (!f.acked) return f.enqueuedAt
    }
    const head = this.#segments.find((s) => s.base + s.count - 1 > this.#ackedThrough)
    if (head !== undefined) return head.oldest
    return this.#batch?.times[0]
  }

  /** Enqueue time of the oldest segment's first message: the candidate to evict when the upstream is over its bound. */
  get headTime(): number | undefined {
    return this.#segments[0]?.oldest
  }

  get ackedThrough(): number {
    return this.#ackedThrough
  }

  /** Appends one message; resolves once it is with the kernel (on disk under `fsync: always`). */
  append(
    topic: string,
    policy: string,
    payload: Buffer,
    enqueuedAt: number = this.#now(),
    contentType = DEFAULT_CONTENT_TYPE,
    subject?: string,
    purpose?: string,
  ): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('queue closed'))
    return this.#add(topic, policy, payload, enqueuedAt, contentType, subject, purpose).done
  }

  /**
   * As `append`, but the promise never rejects: it resolves to undefined once the message is with the kernel, or to
   * the error that kept its batch from the disk. Every message of a batch (one turn of the event loop) shares it.
   */
  appendSettled(
    topic: string,
    policy: string,
    payload: Buffer,
    enqueuedAt: number = this.#now(),
    contentType = DEFAULT_CONTENT_TYPE,
    subject?: string,
    purpose?: string,
  ): Promise<Error | undefined> {
    if (this.#closed) return Promise.resolve(new Error('queue closed'))
    const batch = this.#add(topic, policy, payload, enqueuedAt, contentType, subject, purpose)
    return (batch.settled ??= batch.done.then(NO_ERROR, asError))
  }

  #add(
    topic: string,
    policy: string,
    payload: Buffer,
    enqueuedAt: number,
    contentType: string,
    subject: string | undefined,
    purpose: string | undefined,
  ): Batch {
    const seq = this.#nextSeq
    const keys = this.#keys
    const who = subject ?? LEGACY_SUBJECT
    const frame =
      keys === undefined
        ? encodeFrame(seq, enqueuedAt, topic, policy, payload, contentType, who, purpose)
        : encodeSealedFrame(
            seq,
            enqueuedAt,
            topic,
            policy,
            payload,
            contentType,
            who,
            purpose ?? '',
            keys.keyFor(who),
            this.#context,
          )
    // Numbered only once framed: a frame that could not be made (no key stored) must not leave a hole in the segment.
    this.#nextSeq++
    let batch = this.#batch
    if (batch === undefined) {
      let resolve!: () => void
      let reject!: (err: Error) => void
      const done = new Promise<void>((res, rej) => {
        resolve = res
        reject = rej
      })
      batch = this.#batch = {
        frames: [],
        times: [],
        firstSeq: seq,
        bytes: 0,
        done,
        settled: undefined,
        resolve,
        reject,
      }
      setImmediate(() => this.#flush())
    }
    batch.frames.push(frame)
    batch.times.push(enqueuedAt)
    batch.bytes += frame.length
    this.#pendingBytes += frame.length
    return batch
  }

  /** Size on disk of a message as `append` would frame it (`sealed`: as a version 4 frame). */
  static frameSize(
    topic: string,
    policy: string,
    payload: Buffer,
    contentType = DEFAULT_CONTENT_TYPE,
    subject = LEGACY_SUBJECT,
    purpose = '',
    sealed = false,
  ): number {
    if (sealed) return sealedFrameSize(topic, policy, payload.length, contentType, subject, purpose)
    return (
      FRAME_HEADER +
      23 +
      Buffer.byteLength(topic) +
      Buffer.byteLength(policy) +
      Buffer.byteLength(contentType) +
      subject.length +
      purpose.length +
      payload.length
    )
  }

  #flush(): void {
    const batch = this.#batch
    if (batch === undefined) return
    this.#batch = undefined
    this.#pendingBytes -= batch.bytes
    if (this.#closed) {
      batch.reject(new Error('queue closed'))
      return
    }
    const { frames, times } = batch
    try {
      let i = 0
      while (i < frames.length) {
        const segment = this.#appendTarget(batch.firstSeq + i, frames[i] as Buffer, times[i] as number)
        let j = i
        let size = 0
        while (
          j < frames.length &&
          (j === i || segment.bytes + size + (frames[j] as Buffer).length <= this.#options.segmentBytes)
        ) {
          size += (frames[j] as Buffer).length
          j++
        }
        const written = writevSync(segment.fd as number, frames.slice(i, j))
        if (written !== size) {
          ftruncateSync(segment.fd as number, segment.bytes)
          throw Object.assign(new Error(`short write to the queue (${written} of ${size} bytes)`), { code: 'ENOSPC' })
        }
        for (let k = i, offset = segment.bytes; k < j; k++) {
          const frame = frames[k] as Buffer
          this.#keepHot({ seq: batch.firstSeq + k, frame, segment, offset })
          offset += frame.length
        }
        if (segment.count === 0) segment.oldest = times[i] as number
        segment.bytes += size
        segment.count += j - i
        segment.newest = times[j - 1] as number
        this.#bytes += size
        this.#flushedSeq = batch.firstSeq + j - 1
        i = j
      }
    } catch (err) {
      this.#rollBack()
      batch.reject(err as Error)
      this.onAppended?.()
      return
    }
    this.#dirty = true
    if (this.#options.fsync === 'always') {
      this.#awaitingSync.push(batch)
      this.#sync()
    } else {
      batch.resolve()
    }
    this.onAppended?.()
  }

  /** The segment the message `seq` goes to: the newest, or a new one when that is full, old or not open. */
  #appendTarget(seq: number, frame: Buffer, enqueuedAt: number): Segment {
    const last = this.#segments.at(-1)
    if (
      last !== undefined &&
      last.fd !== undefined &&
      !(
        last.count > 0 &&
        (last.bytes + frame.length > this.#options.segmentBytes ||
          enqueuedAt - last.oldest > this.#options.segmentSpanMs)
      )
    ) {
      return last
    }
    if (last?.fd !== undefined) {
      // Synced (then closed) by the next #sync, off the event loop, together with the new segment.
      if (this.#options.fsync === 'never') this.#closeFd(last.fd)
      else this.#rolled.push(last.fd)
      last.fd = undefined
    }
    const path = join(this.#options.dir, `${String(seq).padStart(16, '0')}.seg`)
    // 'w': a file of this number can only be a leftover of a rolled-back batch.
    const segment: Segment = {
      base: seq,
      path,
      bytes: 0,
      count: 0,
      oldest: enqueuedAt,
      newest: enqueuedAt,
      fd: openSync(path, 'w', 0o600),
    }
    this.#segments.push(segment)
    return segment
  }

  /** A failed write: forget the batch, drop segments it created and number on from what was written. */
  #rollBack(): void {
    for (let last = this.#segments.at(-1); last !== undefined && last.count === 0; last = this.#segments.at(-1)) {
      this.#segments.pop()
      if (last.fd !== undefined) this.#closeFd(last.fd)
      unlinkQuietly(last.path)
    }
    this.#nextSeq = this.#flushedSeq + 1
  }

  /**
   * The next message to send, in order, or undefined when everything written is taken. Messages past their TTL are
   * acknowledged on the spot and reported as expired: they never leave the gateway.
   */
  take(): QueuedMessage | undefined {
    const now = this.#now()
    let expired = 0
    let corrupt = 0
    let erased = 0
    let message: QueuedMessage | undefined
    for (let frame = this.#readNext(); frame !== undefined; frame = this.#readNext()) {
      // Expired ones are not even decrypted: they are dropped on their clear enqueue time.
      if (frame.enqueuedAt + this.#options.ttlMs <= now) expired++
      else if (!('sealed' in frame)) message = frame
      else {
        const key = this.#keys?.keyById(frame.subject, frame.keyId)
        if (key === undefined) erased++
        else if ((message = openFrame(frame, key, this.#context)) === undefined) corrupt++
      }
      this.#inflight.push({ seq: frame.seq, enqueuedAt: frame.enqueuedAt, acked: message === undefined })
      if (message !== undefined) break
    }
    if (expired > 0) this.#options.onDrop('expired', expired)
    if (corrupt > 0) this.#options.onDrop('corrupt', corrupt)
    if (erased > 0) this.#options.onDrop('erased', erased)
    if (expired + corrupt + erased > 0) this.#advance()
    return message
  }

  /** Marks a taken message acknowledged; the cursor moves over every leading acknowledged one. */
  ack(seq: number): void {
    const head = this.#inflight[this.#inflightHead]
    if (head === undefined || seq < head.seq) return
    // Taken messages are numbered consecutively (but for a skipped corrupt stretch): index by the difference.
    let entry = this.#inflight[this.#inflightHead + seq - head.seq]
    if (entry?.seq !== seq) entry = this.#inflight.find((f) => f.seq === seq)
    if (entry === undefined) return
    entry.acked = true
    if (entry === head) this.#advance()
  }

  /** Forgets what was taken and not acknowledged: the next take starts again after the cursor (a new connection). */
  rewind(): void {
    this.#inflight = []
    this.#inflightHead = 0
    this.#readSeq = this.#ackedThrough + 1
  }

  /** Deletes leading segments whose every message is past its TTL; the records they still held count as expired. */
  expire(): number {
    const now = this.#now()
    let expired = 0
    for (
      let head = this.#segments[0];
      head !== undefined && head.newest + this.#options.ttlMs <= now;
      head = this.#segments[0]
    ) {
      expired += this.#dropHead()
    }
    if (expired > 0) this.#options.onDrop('expired', expired)
    return expired
  }

  /** Deletes the oldest segment to make room; its unacknowledged messages count as evicted. Returns how many. */
  evictHead(): number {
    if (this.#segments.length === 0) return 0
    const evicted = this.#dropHead()
    if (evicted > 0) this.#options.onDrop('evicted', evicted)
    return evicted
  }

  #dropHead(): number {
    const head = this.#segments.shift() as Segment
    const last = head.base + head.count - 1
    const dropped = Math.max(0, last - Math.max(this.#ackedThrough, head.base - 1))
    if (head.fd !== undefined) this.#closeFd(head.fd)
    if (this.#reader?.segment === head) this.#closeReader()
    unlinkQuietly(head.path)
    this.#bytes -= head.bytes
    if (last > this.#ackedThrough) {
      this.#ackedThrough = last
      this.#markCursorDirty()
    }
    this.#inflight = this.#inflight.slice(this.#inflightHead).filter((f) => f.seq > last)
    this.#inflightHead = 0
    if (this.#readSeq <= last) this.#readSeq = last + 1
    return dropped
  }

  #advance(): void {
    let moved = false
    for (let f = this.#inflight[this.#inflightHead]; f?.acked; f = this.#inflight[this.#inflightHead]) {
      this.#ackedThrough = f.seq
      this.#inflightHead++
      moved = true
    }
    if (!moved) return
    if (this.#inflightHead === this.#inflight.length) {
      this.#inflight = []
      this.#inflightHead = 0
    } else if (this.#inflightHead >= 1024) {
      this.#inflight.splice(0, this.#inflightHead)
      this.#inflightHead = 0
    }
    this.#markCursorDirty()
    this.#deleteAcknowledged(false)
  }

  /** Deletes segments the cursor passed; the one taking appends stays unless `all`. */
  #deleteAcknowledged(all: boolean): void {
    for (let head = this.#segments[0]; head !== undefined; head = this.#segments[0]) {
      if (head.base + head.count - 1 > this.#ackedThrough || (!all && head.fd !== undefined)) break
      this.#dropHead()
    }
  }

  #keepHot(entry: HotFrame): void {
    this.#hot.push(entry)
    this.#hotBytes += entry.frame.length
    while (this.#hotBytes > HOT_TAIL_BYTES) this.#hotBytes -= (this.#hot[this.#hotHead++] as HotFrame).frame.length
    if (this.#hotHead >= 1024) {
      this.#hot.splice(0, this.#hotHead)
      this.#hotHead = 0
    }
  }

  /**
   * The frame of message `#readSeq` from memory, if it is still there; frames before it are forgotten. The disk
   * reader, when it is in the same segment, is moved past the frame so that reading on from disk stays in step.
   */
  #takeHot(): StoredFrame | undefined {
    let entry = this.#hot[this.#hotHead]
    while (entry !== undefined && entry.seq < this.#readSeq) {
      this.#hotBytes -= entry.frame.length
      entry = this.#hot[++this.#hotHead]
    }
    if (this.#hotHead === this.#hot.length) {
      this.#hot = []
      this.#hotHead = 0
    }
    if (entry === undefined || entry.seq !== this.#readSeq || !this.#segments.includes(entry.segment)) return undefined
    const { frame } = entry
    const message = decodeBody(frame.subarray(FRAME_HEADER), frame.readUInt32LE(4))
    if (message === undefined) return undefined
    this.#hotBytes -= frame.length
    this.#hotHead++
    this.#readSeq = entry.seq + 1
    const reader = this.#reader
    if (reader !== undefined && reader.segment === entry.segment) {
      reader.offset = entry.offset + frame.length
      reader.seq = entry.seq + 1
    }
    return message
  }

  #readNext(): StoredFrame | undefined {
    for (;;) {
      if (this.#readSeq > this.#flushedSeq) return undefined
      const hot = this.#takeHot()
      if (hot !== undefined) return hot
      const reader =
        this.#reader !== undefined && this.#reader.seq === this.#readSeq ? this.#reader : this.#position(this.#readSeq)
      if (reader === undefined) return undefined
      if (reader.offset >= reader.segment.bytes) {
        // The end of a closed segment: continue in the next one (numbers may skip over a corrupt stretch).
        const next = this.#segments[this.#segments.indexOf(reader.segment) + 1]
        if (next === undefined) return undefined
        this.#readSeq = Math.max(this.#readSeq, next.base)
        this.#closeReader()
        continue
      }
      const message = this.#readAt(reader)
      if (message === undefined) {
        // Changed under us (disk error, manual edit): skip the rest of this segment rather than resend garbage.
        const lost = reader.segment.base + reader.segment.count - reader.seq
        this.#options.onDrop('corrupt', lost)
        for (let s = reader.seq; s < reader.segment.base + reader.segment.count; s++)
          this.#inflight.push({ seq: s, enqueuedAt: 0, acked: true })
        reader.offset = reader.segment.bytes
        reader.seq = reader.segment.base + reader.segment.count
        this.#readSeq = reader.seq
        this.#advance()
        continue
      }
      this.#readSeq = reader.seq
      return message
    }
  }

  #readAt(reader: Reader): StoredFrame | undefined {
    const header = Buffer.allocUnsafe(FRAME_HEADER)
    if (readSync(reader.fd, header, 0, FRAME_HEADER, reader.offset) !== FRAME_HEADER) return undefined
    const length = bodyLengthOf(header)
    if (length < 0 || reader.offset + FRAME_HEADER + length > reader.segment.bytes) return undefined
    const body = Buffer.allocUnsafe(length)
    if (readSync(reader.fd, body, 0, length, reader.offset + FRAME_HEADER) !== length) return undefined
    const message = decodeBody(body, header.readUInt32LE(4))
    if (message === undefined || message.seq !== reader.seq) return undefined
    reader.offset += FRAME_HEADER + length
    reader.seq++
    return message
  }

  /** A reader at message `seq` (or at the first message after a gap), scanning frame headers from the segment start. */
  #position(seq: number): Reader | undefined {
    this.#closeReader()
    const segment = this.#segments.find((s) => s.base + s.count - 1 >= seq)
    if (segment === undefined) return undefined
    const fd = openSync(segment.path, 'r')
    const reader: Reader = { segment, fd, offset: 0, seq: segment.base }
    this.#reader = reader
    const header = Buffer.allocUnsafe(FRAME_HEADER)
    while (reader.seq < seq && reader.offset < segment.bytes) {
      if (readSync(fd, header, 0, FRAME_HEADER, reader.offset) !== FRAME_HEADER) break
      const length = bodyLengthOf(header)
      if (length < 0) break
      reader.offset += FRAME_HEADER + length
      reader.seq++
    }
    this.#readSeq = reader.seq
    return reader
  }

  #closeReader(): void {
    if (this.#reader === undefined) return
    closeSync(this.#reader.fd)
    this.#reader = undefined
  }

  /**
   * fdatasync of the segment taking appends and of segments rolled since the last sync, off the event loop; batches
   * waiting under `always` resolve after it.
   */
  #sync(): void {
    if (this.#syncing) return
    const rolled = this.#rolled.splice(0)
    const fds = [...rolled]
    const active = this.#segments.at(-1)?.fd
    if (active !== undefined && this.#dirty) fds.push(active)
    const waiting = this.#awaitingSync.splice(0)
    if (fds.length === 0) {
      // Nothing unsynced: an eviction deleted what was written.
      for (const b of waiting) b.resolve()
      return
    }
    this.#syncing = true
    this.#dirty = false
    let left = fds.length
    let failure: Error | null = null
    for (const fd of fds) {
      fdatasync(fd, (err) => {
        failure ??= err
        if (--left > 0) return
        this.#syncing = false
        for (const f of rolled) closeSync(f)
        for (const b of waiting)
          if (failure === null) b.resolve()
          else b.reject(failure)
        for (const f of this.#deferredClose.splice(0)) closeSync(f)
        if (this.#awaitingSync.length > 0) this.#sync()
      })
    }
  }

  /** A descriptor an fdatasync may still be using is closed after it, so its number cannot be reused under it. */
  #closeFd(fd: number): void {
    if (this.#syncing) this.#deferredClose.push(fd)
    else closeSync(fd)
  }

  #markCursorDirty(): void {
    this.#cursorDirty = true
    if (this.#cursorTimer !== undefined || this.#closed) return
    // Persisting the cursor on every PUBACK would double the writes; a crash re-sends at most this window's worth.
    this.#cursorTimer = setTimeout(() => {
      this.#cursorTimer = undefined
      this.#persistCursor()
    }, CURSOR_PERSIST_MS)
    this.#cursorTimer.unref()
  }

  /** Two checksummed slots written alternately: a torn write leaves the other, older, valid one. */
  #persistCursor(): void {
    if (!this.#cursorDirty) return
    this.#cursorDirty = false
    const slot = Buffer.alloc(CURSOR_SLOT)
    slot.writeDoubleLE(this.#ackedThrough, 0)
    slot.writeUInt32LE(crc32(slot.subarray(0, 8)), 8)
    writeSync(this.#cursorFd, slot, 0, CURSOR_SLOT, this.#cursorSlot * CURSOR_SLOT)
    this.#cursorSlot ^= 1
  }

  #readCursor(): number {
    let data: Buffer
    try {
      data = readFileSync(join(this.#options.dir, CURSOR_FILE))
    } catch {
      return 0
    }
    let best = 0
    for (let slot = 0; slot < 2; slot++) {
      const o = slot * CURSOR_SLOT
      if (o + CURSOR_SLOT > data.length) break
      const value = data.readDoubleLE(o)
      if (data.readUInt32LE(o + 8) === crc32(data.subarray(o, o + 8)) && Number.isSafeInteger(value) && value > best) {
        best = value
        this.#cursorSlot = slot ^ 1
      }
    }
    return best
  }

  #recoverSegments(): RecoveryReport {
    const names = readdirSync(this.#options.dir)
      .filter((n) => SEGMENT_NAME.test(n))
      .sort()
    let messages = 0
    let truncatedBytes = 0
    for (const name of names) {
      const path = join(this.#options.dir, name)
      const base = Number((SEGMENT_NAME.exec(name) as RegExpExecArray)[1])
      const data = readFileSync(path)
      let offset = 0
      let count = 0
      let oldest = 0
      let newest = 0
      for (
        let f = frameAt(data, offset);
        f !== undefined && f.message.seq === base + count;
        f = frameAt(data, offset)
      ) {
        if (count === 0) oldest = f.message.enqueuedAt
        newest = f.message.enqueuedAt
        count++
        offset = f.end
      }
      if (offset < data.length) {
        // A torn tail (killed mid-write) or corruption: everything after the last whole, checksummed frame goes.
        truncatedBytes += data.length - offset
        truncateSync(path, offset)
      }
      if (count === 0) {
        unlinkQuietly(path)
        continue
      }
      messages += count
      this.#segments.push({ base, path, bytes: offset, count, oldest, newest, fd: undefined })
    }
    return { segments: this.#segments.length, messages, truncatedBytes }
  }

  /** Writes pending appends and the cursor, syncs and closes the files. Appends after this reject. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#flush()
    while (this.#syncing || this.#awaitingSync.length > 0) await new Promise((r) => setTimeout(r, 1))
    this.#closed = true
    for (const fd of this.#rolled.splice(0)) {
      fdatasyncSync(fd)
      closeSync(fd)
    }
    clearTimeout(this.#cursorTimer)
    clearInterval(this.#fsyncTimer)
    this.#persistCursor()
    const fd = this.#segments.at(-1)?.fd
    if (fd !== undefined) {
      if (this.#options.fsync !== 'never') fdatasyncSync(fd)
      closeSync(fd)
      ;(this.#segments.at(-1) as Segment).fd = undefined
    }
    if (this.#options.fsync !== 'never') fdatasyncSync(this.#cursorFd)
    closeSync(this.#cursorFd)
    this.#closeReader()
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path)
  } catch {
    // Already gone: deleting is idempotent.
  }
}
