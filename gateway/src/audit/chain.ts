import { hash } from 'node:crypto'
import { closeSync, fstatSync, openSync, readdirSync, readSync } from 'node:fs'
import { join } from 'node:path'

export const AUDIT_FILE = 'audit.jsonl'

/** The `prev` of the very first line of a log: no line came before it. */
export const GENESIS = '0'.repeat(64)

/**
 * SHA-256 (hex) of one line's bytes, without its newline: what the next line names as `prev`. The one-shot
 * crypto.hash: a third cheaper per line than createHash().update().digest(), on every audited drop.
 */
export function lineHash(line: string | Uint8Array): string {
  return hash('sha256', line, 'hex')
}

/** An audit file of a data directory: the current one (`seq` Infinity) or a rotated `audit.jsonl.<seq>`. */
export interface AuditFileName {
  readonly name: string
  readonly seq: number
}

const ROTATED = /^audit\.jsonl\.([1-9][0-9]{0,15})$/

/** The audit files of `dir`, oldest first: rotated ones by number, the current one last. Throws when unreadable. */
export function auditFiles(dir: string): AuditFileName[] {
  const files: AuditFileName[] = []
  for (const name of readdirSync(dir)) {
    if (name === AUDIT_FILE) files.push({ name, seq: Number.POSITIVE_INFINITY })
    else {
      const m = ROTATED.exec(name)
      if (m?.[1] !== undefined) files.push({ name, seq: Number(m[1]) })
    }
  }
  return files.sort((a, b) => a.seq - b.seq)
}

/** The end of an audit file: its last newline-terminated line, and the bytes after it (a write cut short). */
export interface FileTail {
  readonly lastLine: string | undefined
  readonly torn: boolean
}

/** Reads only the end of the file: the log continues its chain on open without reading what may be gigabytes. */
export function readTail(file: string): FileTail {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { lastLine: undefined, torn: false }
    throw err
  }
  try {
    const size = fstatSync(fd).size
    // Audit lines are a few hundred bytes; the window grows until it holds a whole line (or the whole file).
    for (let window = 16 * 1024; ; window *= 4) {
      const start = Math.max(0, size - window)
      const buf = Buffer.alloc(size - start)
      readSync(fd, buf, 0, buf.length, start)
      const end = buf.lastIndexOf(0x0a)
      const torn = end !== buf.length - 1 && buf.length > 0
      if (end < 0) {
        if (start === 0) return { lastLine: undefined, torn }
        continue
      }
      const begin = buf.lastIndexOf(0x0a, end - 1)
      if (begin < 0 && start > 0) continue
      return { lastLine: buf.subarray(begin + 1, end).toString('utf8'), torn }
    }
  } finally {
    closeSync(fd)
  }
}

/** The chain fields of a line the log wrote, when it has them. */
export function chainOf(line: string): { seq: number; prev: string; time: string | undefined } | undefined {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const r = value as Record<string, unknown>
  if (typeof r.seq !== 'number' || !Number.isSafeInteger(r.seq) || typeof r.prev !== 'string') return undefined
  return { seq: r.seq, prev: r.prev, time: typeof r.time === 'string' ? r.time : undefined }
}

export const auditPath = (dir: string, name: string): string => join(dir, name)
