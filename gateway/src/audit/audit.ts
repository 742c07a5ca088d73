import {
  appendFileSync,
  createWriteStream,
  mkdirSync,
  openSync,
  renameSync,
  statSync,
  unlinkSync,
  type WriteStream,
} from 'node:fs'
import { join } from 'node:path'
import type { CategoryLabel, Domain, DropReason, StageName } from '../sdk/model.ts'
import { AUDIT_FILE, auditFiles, chainOf, GENESIS, lineHash, readTail } from './chain.ts'

export { AUDIT_FILE } from './chain.ts'

/** One audited decision. By construction it holds names from closed vocabularies only: never a value or an id. */
export interface AuditEntry {
  readonly stage: StageName
  readonly category: CategoryLabel
  readonly reason: DropReason
  readonly domain?: Domain | undefined
  /** How many messages this one decision dropped (a queue segment evicted or expired at once); 1 when absent. */
  readonly count?: number | undefined
}

export interface AuditSink {
  record(entry: AuditEntry, policyVersion: string, nowMs: number): void
  close(): Promise<void>
}

/** Rotated audit files older than this are deleted (configuration `audit.retentionDays`). */
export const DEFAULT_AUDIT_RETENTION_DAYS = 180

export interface FileAuditOptions {
  /** Size of one file; past it the file is rotated. Default 64 MiB. */
  readonly maxBytes?: number
  /** Rotated files whose last line is older are deleted, at open and every hour. Default 180. */
  readonly retentionDays?: number
  /** The clock of retention (tests move it); lines carry the time the caller gives record(). */
  readonly now?: () => number
  readonly onError?: (err: Error) => void
  /**
   * false writes lines without `seq` and `prev`: the baseline of bench/audit-chain.ts only, so the cost of the chain
   * is measured against the same code. Not a configuration key: a gateway's log is always chained.
   */
  readonly chain?: boolean
}

/**
 * Append-only JSON lines in the data directory. Writes go through one stream (no fsync per line: the audit log
 * must not become the pipeline's bottleneck). The file is rotated to `audit.jsonl.<n>` (n counting up, the
 * highest the newest) at `maxBytes`, so one file stays small, and at the first line of a new UTC day, so a file
 * holds one day and retention deletes whole days; rotated files past `retentionDays` are deleted.
 *
 * Lines are collected and handed to the stream once per event-loop turn (or at MAX_BATCH_BYTES), not one write
 * each: a gateway audits every copy a policy withholds (166 of 167 energy readings), and a stream write per line
 * cost more than the rest of the suppressed message's pipeline. The stream buffered each line in memory before
 * too, so what a crash can lose is unchanged: lines not yet handed to the kernel.
 *
 * Every line ends with `"seq":n,"prev":"<sha-256 hex of the line before>"` (README.md here): one chain from the
 * first line ever written, across rotated files and restarts, that `veil audit verify` walks.
 */
export class FileAuditLog implements AuditSink {
  readonly #dir: string
  readonly #file: string
  readonly #maxBytes: number
  readonly #retentionMs: number
  readonly #retentionDays: number
  readonly #now: () => number
  readonly #onError: (err: Error) => void
  readonly #chain: boolean
  #stream: WriteStream
  #bytes: number
  /** The chain: the next line's number, the hash of the line before it, the UTC day of the current file's lines. */
  #seq = 0
  #prev = GENESIS
  #day: number | undefined
  #nextRotated: number
  /** Lines not yet handed to the stream, and whether a flush is scheduled for the end of this turn. */
  #batch = ''
  #scheduled = false
  #retaining: Promise<readonly string[]> | undefined
  readonly #timer: NodeJS.Timeout
  readonly #flush = (): void => {
    this.#scheduled = false
    this.#writeBatch()
  }

  constructor(dataDir: string, options: FileAuditOptions = {}) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    this.#dir = dataDir
    this.#file = join(dataDir, AUDIT_FILE)
    this.#maxBytes = options.maxBytes ?? 64 * 1024 * 1024
    this.#retentionDays = options.retentionDays ?? DEFAULT_AUDIT_RETENTION_DAYS
    this.#retentionMs = this.#retentionDays * DAY_MS
    this.#now = options.now ?? Date.now
    this.#onError = options.onError ?? (() => {})
    this.#chain = options.chain ?? true
    const rotated = auditFiles(dataDir).filter((f) => f.name !== AUDIT_FILE)
    this.#nextRotated = (rotated.at(-1)?.seq ?? 0) + 1
    this.#continueChain(rotated.at(-1)?.name)
    this.#bytes = sizeOf(this.#file)
    this.#stream = this.#open()
    void this.enforceRetention()
    this.#timer = setInterval(() => void this.enforceRetention(), RETENTION_CHECK_MS).unref()
  }

  /**
   * Picks the chain up where the last run left it: the last line of the current file, or of the newest rotated
   * one when a crash came between a rotation and the first line of the new file. A line cut short by a crash (no
   * newline) stays as evidence: it is ended and followed by a `restart` record chained to the last whole line, in
   * one write, so the verifier can tell a torn line from an edited one.
   */
  #continueChain(newestRotated: string | undefined): void {
    const tail = readTail(this.#file)
    let lastLine = tail.lastLine
    if (lastLine !== undefined) this.#day = dayOf(timeOf(lastLine))
    else if (newestRotated !== undefined) lastLine = readTail(join(this.#dir, newestRotated)).lastLine
    if (lastLine !== undefined) {
      this.#prev = lineHash(lastLine)
      this.#seq = (chainOf(lastLine)?.seq ?? -1) + 1
    }
    if (tail.torn && this.#chain) {
      const now = this.#now()
      const line = this.#chained(`{"time":"${isoTime(now)}","kind":"restart","torn":true`)
      appendFileSync(this.#file, `\n${line}\n`, { mode: 0o600 })
      this.#day = Math.floor(now / DAY_MS)
    } else if (tail.torn) appendFileSync(this.#file, '\n')
  }

  #open(): WriteStream {
    // Opened synchronously so the file exists at once: a rotation right after start renames a real file.
    const stream = createWriteStream(this.#file, { fd: openSync(this.#file, 'a', 0o600) })
    stream.on('error', this.#onError)
    return stream
  }

  record(entry: AuditEntry, policyVersion: string, nowMs: number): void {
    this.#append(
      `{"time":"${isoTime(nowMs)}","stage":"${entry.stage}","category":"${entry.category}",` +
        (entry.domain === undefined ? '' : `"domain":"${entry.domain}",`) +
        `"reason":"${entry.reason}",` +
        (entry.count === undefined || entry.count === 1 ? '' : `"count":${entry.count},`) +
        `"policy":"${policyVersion}"`,
      nowMs,
    )
  }

  /** `body` is a JSON object without its closing brace; the chain fields end it. False when it was not written. */
  #append(body: string, nowMs: number): boolean {
    // Auditing must never break the pipeline: a failing disk is reported (a metric), not thrown.
    try {
      const day = Math.floor(nowMs / DAY_MS)
      // The chain fields have a fixed size but for seq's digits: the bound is checked on the line as written.
      const length = body.length + (this.#chain ? 82 + String(this.#seq).length : 1) + 1
      // A new day rotates; a clock stepped back does not (lines of the day before join the newer file), so a clock
      // that wavers around midnight cannot make a file per line.
      if (this.#bytes > 0 && (this.#bytes + length > this.#maxBytes || (this.#day !== undefined && day > this.#day)))
        this.#rotate()
      const line = this.#chain ? this.#chained(body) : `${body}}`
      if (this.#day === undefined || day > this.#day) this.#day = day
      this.#bytes += line.length + 1
      this.#batch += `${line}\n`
      if (this.#batch.length >= MAX_BATCH_BYTES) this.#writeBatch()
      else if (!this.#scheduled) {
        this.#scheduled = true
        setImmediate(this.#flush)
      }
      return true
    } catch (err) {
      this.#onError(err as Error)
      return false
    }
  }

  #chained(body: string): string {
    const line = `${body},"seq":${this.#seq},"prev":"${this.#prev}"}`
    this.#seq++
    this.#prev = lineHash(line)
    return line
  }

  #writeBatch(done?: (err: Error | null | undefined) => void): void {
    if (this.#batch === '') return
    const batch = this.#batch
    this.#batch = ''
    try {
      this.#stream.write(batch, done)
    } catch (err) {
      this.#onError(err as Error)
    }
  }

  #rotate(): void {
    // Lines before the rotation belong to the old file; its stream keeps writing them to the renamed file (the
    // descriptor follows the rename), and a failed rename leaves the log writing where it was.
    this.#writeBatch()
    renameSync(this.#file, join(this.#dir, `${AUDIT_FILE}.${this.#nextRotated}`))
    this.#nextRotated++
    this.#stream.end()
    this.#bytes = 0
    this.#stream = this.#open()
  }

  /**
   * Deletes the oldest rotated files whose last line is older than `retentionDays` at `nowMs`, oldest first and
   * only a run of them from the oldest (the chain stays one piece). Before deleting it writes a `retention` record
   * naming the files and the hash of the last line deleted (`anchor`), which the oldest remaining file's first line
   * names as `prev`: the verifier accepts the missing start for that record only. Files are deleted once the record
   * has reached the kernel, so a crash in between leaves files without a deletion, never a deletion without a record.
   * Returns the names deleted.
   */
  enforceRetention(nowMs: number = this.#now()): Promise<readonly string[]> {
    if (this.#retaining !== undefined) return this.#retaining
    let expired: string[]
    let anchor: string | undefined
    try {
      expired = []
      for (const f of auditFiles(this.#dir)) {
        if (f.name === AUDIT_FILE) break
        const tail = readTail(join(this.#dir, f.name))
        if (!(lastTimeOf(join(this.#dir, f.name), tail.lastLine) < nowMs - this.#retentionMs)) break
        expired.push(f.name)
        if (tail.lastLine !== undefined) anchor = lineHash(tail.lastLine)
      }
    } catch (err) {
      this.#onError(err as Error)
      return Promise.resolve([])
    }
    if (expired.length === 0) return Promise.resolve([])
    const body =
      `{"time":"${isoTime(nowMs)}","kind":"retention","retentionDays":${this.#retentionDays},` +
      `"deleted":${JSON.stringify(expired)},"anchor":"${anchor ?? GENESIS}"`
    if (!this.#append(body, nowMs)) return Promise.resolve([])
    this.#retaining = new Promise<readonly string[]>((resolve) => {
      this.#writeBatch((err) => {
        this.#retaining = undefined
        if (err) return resolve([])
        const deleted: string[] = []
        for (const name of expired) {
          try {
            unlinkSync(join(this.#dir, name))
            deleted.push(name)
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'ENOENT') deleted.push(name)
            else this.#onError(e as Error)
          }
        }
        resolve(deleted)
      })
    })
    return this.#retaining
  }

  close(): Promise<void> {
    clearInterval(this.#timer)
    this.#writeBatch()
    return new Promise((resolve) => this.#stream.end(resolve))
  }
}

/** Retention is checked this often (and at open); files are deleted by the day, so an hour late is soon enough. */
const RETENTION_CHECK_MS = 3_600_000

/** A batch is written at once past this size, so a flood of drops within one turn does not grow one huge string. */
const MAX_BATCH_BYTES = 64 * 1024

/** Keeps entries in memory: for `veil filter`, `veil replay` and tests. */
export class MemoryAuditLog implements AuditSink {
  readonly entries: (AuditEntry & { policy: string; time: number })[] = []

  record(entry: AuditEntry, policyVersion: string, nowMs: number): void {
    this.entries.push({ ...entry, policy: policyVersion, time: nowMs })
  }

  async close(): Promise<void> {}
}

const DAY_MS = 86_400_000
/** 9999-12-31T23:59:59.999Z: beyond it toISOString writes six-digit years. */
const LAST_FOUR_DIGIT_YEAR_MS = 253_402_300_799_999
let dayStart = Number.NaN
let dayPrefix = ''
const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`)
const pad3 = (n: number): string => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`)

/**
 * `new Date(ms).toISOString()`, with the date part computed once per UTC day: toISOString was most of the cost
 * of an audit line, and a gateway audits every withheld copy (166 of 167 energy messages).
 */
export function isoTime(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0 || ms > LAST_FOUR_DIGIT_YEAR_MS) return new Date(ms).toISOString()
  if (!(ms >= dayStart && ms < dayStart + DAY_MS)) {
    dayStart = ms - (ms % DAY_MS)
    dayPrefix = new Date(dayStart).toISOString().slice(0, 11)
  }
  const t = ms - dayStart
  const h = Math.floor(t / 3_600_000)
  const m = Math.floor((t % 3_600_000) / 60_000)
  const s = Math.floor((t % 60_000) / 1000)
  return `${dayPrefix}${pad2(h)}:${pad2(m)}:${pad2(s)}.${pad3(t % 1000)}Z`
}

function dayOf(time: string | undefined): number | undefined {
  const ms = time === undefined ? Number.NaN : Date.parse(time)
  return Number.isFinite(ms) ? Math.floor(ms / DAY_MS) : undefined
}

/** The `time` of a line that is JSON, chained or not (a line written before the chain). */
function timeOf(line: string): string | undefined {
  try {
    const value = JSON.parse(line) as unknown
    const time = typeof value === 'object' && value !== null ? (value as Record<string, unknown>).time : undefined
    return typeof time === 'string' ? time : undefined
  } catch {
    return undefined
  }
}

/** When a rotated file's last line was written; its modification time when that line says nothing. */
function lastTimeOf(file: string, lastLine: string | undefined): number {
  const ms = lastLine === undefined ? Number.NaN : Date.parse(timeOf(lastLine) ?? '')
  return Number.isFinite(ms) ? ms : statSync(file).mtimeMs
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size
  } catch {
    return 0
  }
}
