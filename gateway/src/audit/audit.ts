import { createWriteStream, mkdirSync, openSync, renameSync, statSync, type WriteStream } from 'node:fs'
import { join } from 'node:path'
import type { CategoryLabel, Domain, DropReason, StageName } from '../sdk/model.ts'

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

export const AUDIT_FILE = 'audit.jsonl'

/**
 * Append-only JSON lines in the data directory. Writes go through one stream (no fsync per line: the audit log
 * must not become the pipeline's bottleneck), and the file is rotated to `audit.jsonl.1` at `maxBytes` so a flood
 * of bad messages cannot fill the disk.
 *
 * Lines are collected and handed to the stream once per event-loop turn (or at MAX_BATCH_BYTES), not one write
 * each: a gateway audits every copy a policy withholds (166 of 167 energy readings), and a stream write per line
 * cost more than the rest of the suppressed message's pipeline. The stream buffered each line in memory before
 * too, so what a crash can lose is unchanged: lines not yet handed to the kernel.
 */
export class FileAuditLog implements AuditSink {
  readonly #file: string
  readonly #maxBytes: number
  readonly #onError: (err: Error) => void
  #stream: WriteStream
  #bytes: number
  /** Lines not yet handed to the stream, and whether a flush is scheduled for the end of this turn. */
  #batch = ''
  #scheduled = false
  readonly #flush = (): void => {
    this.#scheduled = false
    this.#writeBatch()
  }

  constructor(dataDir: string, options: { maxBytes?: number; onError?: (err: Error) => void } = {}) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    this.#file = join(dataDir, AUDIT_FILE)
    this.#maxBytes = options.maxBytes ?? 64 * 1024 * 1024
    this.#onError = options.onError ?? (() => {})
    this.#bytes = sizeOf(this.#file)
    this.#stream = this.#open()
  }

  #open(): WriteStream {
    // Opened synchronously so the file exists at once: a rotation right after start renames a real file.
    const stream = createWriteStream(this.#file, { fd: openSync(this.#file, 'a', 0o600) })
    stream.on('error', this.#onError)
    return stream
  }

  record(entry: AuditEntry, policyVersion: string, nowMs: number): void {
    const line =
      `{"time":"${isoTime(nowMs)}","stage":"${entry.stage}","category":"${entry.category}",` +
      (entry.domain === undefined ? '' : `"domain":"${entry.domain}",`) +
      `"reason":"${entry.reason}",` +
      (entry.count === undefined || entry.count === 1 ? '' : `"count":${entry.count},`) +
      `"policy":"${policyVersion}"}\n`
    // Auditing must never break the pipeline: a failing disk is reported (a metric), not thrown.
    try {
      if (this.#bytes + line.length > this.#maxBytes) this.#rotate()
      this.#bytes += line.length
      this.#batch += line
      if (this.#batch.length >= MAX_BATCH_BYTES) this.#writeBatch()
      else if (!this.#scheduled) {
        this.#scheduled = true
        setImmediate(this.#flush)
      }
    } catch (err) {
      this.#onError(err as Error)
    }
  }

  #writeBatch(): void {
    if (this.#batch === '') return
    const batch = this.#batch
    this.#batch = ''
    try {
      this.#stream.write(batch)
    } catch (err) {
      this.#onError(err as Error)
    }
  }

  #rotate(): void {
    // Lines before the rotation belong to the old file.
    this.#writeBatch()
    this.#stream.end()
    renameSync(this.#file, `${this.#file}.1`)
    this.#bytes = 0
    this.#stream = this.#open()
  }

  close(): Promise<void> {
    this.#writeBatch()
    return new Promise((resolve) => this.#stream.end(resolve))
  }
}

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

function sizeOf(file: string): number {
  try {
    return statSync(file).size
  } catch {
    return 0
  }
}
