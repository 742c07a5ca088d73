import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import { CATEGORIES, isCategory, type Category } from '../../sdk/model.ts'
import type { FrameKeys, QueuedMessage } from './frame.ts'
import { SegmentLog, type FsyncPolicy, type LogDropReason, type RecoveryReport } from './segment-log.ts'

/** The `queue` section of the configuration: one durable queue per upstream, bounded by bytes and by age. */
export interface QueueConfig {
  /** Disk bytes per upstream; past it the oldest segment is deleted and its messages counted as evicted. */
  readonly maxBytes: number
  readonly segmentBytes: number
  /** How long a message may wait for its upstream, per category (privacy.md: camera 72 h, telemetry 24 h). */
  readonly ttlSeconds: Readonly<Record<Category, number>>
  readonly fsync: FsyncPolicy
  readonly fsyncIntervalMs: number
  /**
   * While an upstream is connected and acknowledging but more than one in-flight window behind, device publishes
   * wait until it catches up (UpstreamBridge.catchUp): the backlog stays in memory and latency low, and devices are
   * paced to the upstream. False: devices are never slowed by a live upstream, and the backlog builds on disk up to
   * `maxBytes`, as for a disconnected one (which never slows anyone either way).
   */
  readonly flowControl: boolean
}

const HOUR = 3600
export const DEFAULT_QUEUE: QueueConfig = {
  maxBytes: 256 * 1024 * 1024,
  segmentBytes: 4 * 1024 * 1024,
  ttlSeconds: {
    smart_plug: 24 * HOUR,
    camera: 72 * HOUR,
    robot_vacuum: 24 * HOUR,
    body_scale: 24 * HOUR,
    gps_tracker: 24 * HOUR,
  },
  fsync: 'interval',
  fsyncIntervalMs: 1000,
  flowControl: true,
}

export type QueueDropReason = LogDropReason

/** The subject keys a queue seals its frames with, and the domain it belongs to (authenticated with each frame). */
export interface QueueSealing {
  readonly keys: FrameKeys
  readonly domain: string
}

export interface Taken {
  readonly category: Category
  readonly message: QueuedMessage
}

/** A segment holds at most 1/24 of its TTL, so an expired message leaves the disk at most that long after its TTL. */
const SEGMENT_SPAN_FRACTION = 24
const SWEEP_MAX_MS = 60_000

/**
 * The durable store-and-forward queue of one upstream: one {@link SegmentLog} per category under
 * `<dataDir>/queue/<domain>/<category>/`. A device belongs to one category, so per-category logs keep each device's
 * messages in order while giving every category its own TTL; `take` merges them oldest first. The byte bound is
 * shared: when an append would pass it, the oldest segment of any category goes first.
 */
export class UpstreamQueue {
  readonly #dir: string
  readonly #config: QueueConfig
  readonly #onDrop: (category: Category, reason: QueueDropReason, count: number) => void
  readonly #now: () => number
  readonly #logs = new Map<Category, SegmentLog>()
  readonly #peeked = new Map<Category, QueuedMessage>()
  readonly #sweep: NodeJS.Timeout
  #onAppended: (() => void) | undefined
  readonly recovered: RecoveryReport[] = []
  readonly #lock: string
  readonly #sealing: QueueSealing | undefined

  /** `sealing`: encrypt at rest under the subjects' keys (version 4 frames); absent, version 3 in the clear. */
  constructor(
    dir: string,
    config: QueueConfig,
    onDrop: (category: Category, reason: QueueDropReason, count: number) => void,
    now: () => number = Date.now,
    sealing?: QueueSealing,
  ) {
    this.#sealing = sealing
    this.#dir = dir
    this.#config = config
    this.#onDrop = onDrop
    this.#now = now
    this.#lock = lockDirectory(dir)
    // A backlog left by the previous run is opened (and recovered) now, so it is sent as soon as the upstream is up.
    if (existsSync(dir))
      for (const name of readdirSync(dir)) if (isCategory(name)) this.recovered.push(this.#log(name).recovery)
    const minTtlMs = Math.min(...CATEGORIES.map((c) => config.ttlSeconds[c])) * 1000
    this.#sweep = setInterval(
      () => this.expire(),
      Math.max(1000, Math.min(SWEEP_MAX_MS, minTtlMs / SEGMENT_SPAN_FRACTION)),
    )
    this.#sweep.unref()
  }

  set onAppended(listener: (() => void) | undefined) {
    this.#onAppended = listener
    for (const log of this.#logs.values()) log.onAppended = listener
  }

  #log(category: Category): SegmentLog {
    let log = this.#logs.get(category)
    if (log === undefined) {
      const ttlMs = this.#config.ttlSeconds[category] * 1000
      log = SegmentLog.open({
        dir: join(this.#dir, category),
        segmentBytes: Math.max(4096, Math.min(this.#config.segmentBytes, Math.floor(this.#config.maxBytes / 4))),
        segmentSpanMs: Math.max(1000, ttlMs / SEGMENT_SPAN_FRACTION),
        ttlMs,
        fsync: this.#config.fsync,
        fsyncIntervalMs: this.#config.fsyncIntervalMs,
        onDrop: (reason, count) => this.#onDrop(category, reason, count),
        now: this.#now,
        // The domain and category are authenticated with each frame: one copied into another queue does not open.
        sealing:
          this.#sealing === undefined
            ? undefined
            : { keys: this.#sealing.keys, context: `${this.#sealing.domain}/${category}` },
      })
      log.onAppended = this.#onAppended
      this.#logs.set(category, log)
    }
    return log
  }

  /**
   * Appends a filtered message, having evicted the oldest segments if the byte bound required it: `queue_full` at
   * once (only for a message larger than the whole bound), else a promise shared by the messages of one batch that
   * never rejects and resolves once the batch is with the kernel (see the fsync policy) to undefined, or to the
   * write error (see SegmentLog.appendSettled).
   */
  appendSettled(
    category: Category,
    topic: string,
    policy: string,
    payload: Buffer,
    contentType?: string,
    subject?: string,
    purpose?: string,
  ): 'queue_full' | Promise<Error | undefined> {
    if (
      !this.#makeRoom(
        SegmentLog.frameSize(topic, policy, payload, contentType, subject, purpose, this.#sealing !== undefined),
      )
    )
      return 'queue_full'
    return this.#log(category).appendSettled(topic, policy, payload, this.#now(), contentType, subject, purpose)
  }

  /** Evicts the oldest segments until `size` more bytes fit the bound; false for a message larger than the bound. */
  #makeRoom(size: number): boolean {
    if (size > this.#config.maxBytes) return false
    while (this.bytes + size > this.#config.maxBytes) {
      let oldest: SegmentLog | undefined
      for (const log of this.#logs.values()) {
        const t = log.headTime
        if (t !== undefined && (oldest === undefined || t < (oldest.headTime as number))) oldest = log
      }
      // Only unwritten appends left: they are written within this turn, so the bound is passed by one batch at most.
      if (oldest === undefined) break
      oldest.evictHead()
      this.#forgetDropped()
    }
    return true
  }

  /** The oldest message not yet taken across categories, or undefined. */
  take(): Taken | undefined {
    let best: Category | undefined
    let bestMessage: QueuedMessage | undefined
    for (const [category, log] of this.#logs) {
      let m = this.#peeked.get(category)
      if (m !== undefined && this.#erased(m)) {
        // Opened before its subject was forgotten, held here since: it must not leave now.
        this.#peeked.delete(category)
        log.ack(m.seq)
        this.#onDrop(category, 'erased', 1)
        m = undefined
      }
      if (m === undefined) {
        m = log.take()
        if (m === undefined) continue
        this.#peeked.set(category, m)
      }
      if (bestMessage === undefined || m.enqueuedAt < bestMessage.enqueuedAt) {
        best = category
        bestMessage = m
      }
    }
    if (best === undefined || bestMessage === undefined) return undefined
    this.#peeked.delete(best)
    return { category: best, message: bestMessage }
  }

  #erased(m: QueuedMessage): boolean {
    return m.keyId !== undefined && this.#sealing?.keys.keyById(m.subject, m.keyId) === undefined
  }

  ack(category: Category, seq: number): void {
    this.#logs.get(category)?.ack(seq)
  }

  /** A new upstream connection: everything not acknowledged is taken again, in order. */
  rewind(): void {
    this.#peeked.clear()
    for (const log of this.#logs.values()) log.rewind()
  }

  /** Deletes whatever is past its category's TTL (also done on a timer). */
  expire(): number {
    let n = 0
    for (const log of this.#logs.values()) n += log.expire()
    if (n > 0) this.#forgetDropped()
    return n
  }

  /** A message held for `take` whose segment was deleted (evicted, expired) is not handed out any more. */
  #forgetDropped(): void {
    for (const [c, m] of this.#peeked)
      if (m.seq <= (this.#logs.get(c) as SegmentLog).ackedThrough) this.#peeked.delete(c)
  }

  get depth(): number {
    let n = 0
    for (const log of this.#logs.values()) n += log.depth
    return n
  }

  get bytes(): number {
    let n = 0
    for (const log of this.#logs.values()) n += log.bytes
    return n
  }

  /** Age in ms of the oldest message still waiting for its PUBACK (0 when none). */
  get oldestAgeMs(): number {
    let oldest = Infinity
    for (const log of this.#logs.values()) oldest = Math.min(oldest, log.oldestUnacked ?? Infinity)
    return oldest === Infinity ? 0 : Math.max(0, this.#now() - oldest)
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep)
    await Promise.all([...this.#logs.values()].map((log) => log.close()))
    try {
      unlinkSync(this.#lock)
    } catch {
      // Already gone.
    }
  }
}

/**
 * Two processes appending to one queue would interleave frames and corrupt it: the first holds `<dir>/lock` with its
 * PID. A lock whose process is gone (killed) or is this very process (a restarted container is PID 1 again) is stale.
 */
function lockDirectory(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const path = join(dir, 'lock')
  try {
    const fd = openSync(path, 'wx', 0o600)
    writeSync(fd, `${process.pid}\n`)
    closeSync(fd)
    return path
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  const holder = Number.parseInt(readFileSync(path, 'utf8'), 10)
  if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
    throw new Error(
      `in use by process ${holder} (${path}); another Veil runs with this data directory, or remove the file if it does not`,
    )
  }
  writeFileSync(path, `${process.pid}\n`, { mode: 0o600 })
  return path
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
