import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { AUDIT_FILE, type AuditFileName, auditFiles, GENESIS, lineHash } from './chain.ts'

/** Where a line is: the file's name in the data directory and its line number (1-based). */
export interface LinePlace {
  readonly file: string
  readonly line: number
}

export type ChainProblemKind = 'changed' | 'removed' | 'inserted' | 'reordered' | 'missing_start'

export interface ChainProblem extends LinePlace {
  readonly kind: ChainProblemKind
  readonly message: string
}

export interface VerifyResult {
  /** The files walked, oldest first. */
  readonly files: readonly string[]
  /** Lines whose place in the chain was checked (legacy lines before the chain included). */
  readonly lines: number
  /** Lines written before the chain began (by a Veil without it): accepted only ahead of the first chained line. */
  readonly legacy: number
  /** Lines a crash cut short, each ended by the restart after it (or the end of the log). Not tampering. */
  readonly torn: readonly LinePlace[]
  /** The retention record that accounts for the lines before the oldest file, when the log does not start at 0. */
  readonly retention: (LinePlace & { readonly deleted: readonly string[] }) | undefined
  /** The newest line and its hash: a copy of it kept elsewhere detects a removal of the newest lines. */
  readonly head: (LinePlace & { readonly hash: string; readonly seq: number }) | undefined
  /** The first line changed, removed or inserted; undefined when the chain is whole. */
  readonly problem: ChainProblem | undefined
}

interface Chained {
  readonly seq: number
  readonly prev: string
  readonly kind: unknown
  readonly torn: unknown
  readonly anchor: unknown
  readonly deleted: unknown
}

interface Entry extends LinePlace {
  readonly hash: string
  /** The chain fields; 'legacy' for a JSON object without them; undefined for what is not a JSON object. */
  readonly chained: Chained | 'legacy' | undefined
  /** The last bytes of a file without a newline after them. */
  readonly unterminated: boolean
}

const HEX64 = /^[0-9a-f]{64}$/

function parse(bytes: Buffer): Chained | 'legacy' | undefined {
  let value: unknown
  try {
    value = JSON.parse(bytes.toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const r = value as Record<string, unknown>
  if (!('seq' in r) && !('prev' in r)) return 'legacy'
  if (typeof r.seq !== 'number' || !Number.isSafeInteger(r.seq) || typeof r.prev !== 'string' || !HEX64.test(r.prev))
    return undefined
  return { seq: r.seq, prev: r.prev, kind: r.kind, torn: r.torn, anchor: r.anchor, deleted: r.deleted }
}

function* entriesOf(dir: string, files: readonly AuditFileName[]): Generator<Entry> {
  for (const f of files) {
    const buf = readFileSync(join(dir, f.name))
    let start = 0
    let line = 0
    while (start < buf.length) {
      const nl = buf.indexOf(0x0a, start)
      const end = nl < 0 ? buf.length : nl
      const bytes = buf.subarray(start, end)
      line++
      yield { file: f.name, line, hash: lineHash(bytes), chained: parse(bytes), unterminated: nl < 0 }
      start = end + 1
    }
  }
}

/**
 * Walks the audit files of `dir` oldest first and checks every line's `prev` against the hash of the line before
 * it and its `seq` against the count; at the first break it looks one line ahead to tell what happened there (a
 * changed line, lines removed, a line inserted, two lines swapped). Throws when the directory or a file cannot be
 * read.
 *
 * What a chain cannot show by itself: an edit of the newest line's content (no line after it names its hash) and
 * the removal of the newest lines or of the whole log; `head` is the value to keep elsewhere for those.
 */
export function verifyAuditLog(dir: string): VerifyResult {
  const files = auditFiles(dir)
  const anchors = retentionAnchors(dir, files)
  const torn: LinePlace[] = []
  let lines = 0
  let legacy = 0
  let retention: VerifyResult['retention']
  let head: VerifyResult['head']
  let expected: string | undefined
  let lastSeq: number | undefined
  let started = false
  let before: Entry | undefined
  const done = (problem?: ChainProblem): VerifyResult => ({
    files: files.map((f) => f.name),
    lines,
    legacy,
    torn,
    retention,
    head,
    problem,
  })

  const it = entriesOf(dir, files)
  let next = it.next()
  while (!next.done) {
    const e = next.value
    next = it.next()
    const after = next.done ? undefined : next.value
    const c = e.chained
    if (c === undefined) {
      const restart = after?.chained
      const endsLog = after === undefined && e.unterminated
      const restarted =
        typeof restart === 'object' &&
        restart.kind === 'restart' &&
        restart.torn === true &&
        restart.prev === (expected ?? GENESIS)
      if (endsLog || restarted) {
        torn.push({ file: e.file, line: e.line })
        continue
      }
      return done(problemAt(e, 'changed', 'is not a whole audit line (not JSON, or its seq or prev is damaged)'))
    }
    if (c === 'legacy') {
      if (started) return done(problemAt(e, 'changed', 'has no seq or prev: a line of the chain lost them'))
      legacy++
      lines++
      expected = e.hash
      before = e
      continue
    }
    if (!started && expected === undefined && c.prev !== GENESIS) {
      const anchor = anchors.get(c.prev)
      if (anchor === undefined)
        return done(
          problemAt(
            e,
            'missing_start',
            `names a line before it (prev ${c.prev.slice(0, 12)}…) that no file holds and no retention record accounts for: the oldest lines or files were removed`,
          ),
        )
      retention = anchor
    } else if (c.prev !== (expected ?? GENESIS)) return done(diagnose(e, c, before, lastSeq, after, files))
    else if (lastSeq !== undefined && c.seq !== lastSeq + 1)
      return done(problemAt(e, 'changed', `has seq ${c.seq} where ${lastSeq + 1} follows: the line was edited`))
    started = true
    lines++
    expected = e.hash
    lastSeq = c.seq
    before = e
    head = { file: e.file, line: e.line, hash: e.hash, seq: c.seq }
  }
  return done()
}

/** The first break is at `e` (its prev is not the hash of `before`): the line after it tells which kind. */
function diagnose(
  e: Entry,
  c: Chained,
  before: Entry | undefined,
  lastSeq: number | undefined,
  after: Entry | undefined,
  files: readonly AuditFileName[],
): ChainProblem {
  const next = typeof after?.chained === 'object' ? after.chained : undefined
  if (before !== undefined && next !== undefined && next.prev === before.hash) {
    // The line after e continues from the line before e: e does not belong there.
    if (after !== undefined && c.prev === after.hash)
      return problemAt(e, 'reordered', `and the line after it are swapped (each names the other as prev)`)
    return problemAt(e, 'inserted', 'was inserted: the line after it names the line before it as prev')
  }
  if (next === undefined || next.prev === e.hash) {
    if (lastSeq !== undefined && c.seq > lastSeq + 1) {
      const n = c.seq - lastSeq - 1
      const missing = before !== undefined && before.file !== e.file ? missingFiles(before.file, e.file, files) : ''
      return problemAt(e, 'removed', `follows a removal: ${n} line${n === 1 ? '' : 's'} before it are gone${missing}`)
    }
    if (before !== undefined && lastSeq !== undefined && c.seq <= lastSeq)
      return problemAt(before, 'inserted', `was inserted: the line after it has the same or an earlier seq`)
    if (before !== undefined)
      return problemAt(before, 'changed', `was changed: the line after it names another hash as prev`)
  }
  return problemAt(e, 'changed', 'was changed: its prev names no line before it')
}

/** Rotated files are numbered one up each; a gap between two files of a break names what went missing. */
function missingFiles(older: string, newer: string, files: readonly AuditFileName[]): string {
  const a = files.find((f) => f.name === older)?.seq
  const b = files.find((f) => f.name === newer)?.seq
  if (a === undefined || b === undefined) return ''
  const last = b === Number.POSITIVE_INFINITY ? undefined : b - 1
  if (last !== undefined && last <= a) return ''
  const from = `${AUDIT_FILE}.${a + 1}`
  return last === undefined
    ? ` (with any file after ${older})`
    : ` (${from}${last > a + 1 ? ` to ${AUDIT_FILE}.${last}` : ''} missing)`
}

/** The `anchor` of every retention record: the prev the oldest remaining line may name. */
function retentionAnchors(
  dir: string,
  files: readonly AuditFileName[],
): Map<string, LinePlace & { deleted: readonly string[] }> {
  const anchors = new Map<string, LinePlace & { deleted: readonly string[] }>()
  for (const f of files) {
    const text = readFileSync(join(dir, f.name), 'utf8')
    if (!text.includes('"kind":"retention"')) continue
    text.split('\n').forEach((line, i) => {
      if (!line.includes('"kind":"retention"')) return
      const c = parse(Buffer.from(line))
      if (typeof c !== 'object' || c.kind !== 'retention' || typeof c.anchor !== 'string') return
      const deleted = Array.isArray(c.deleted) ? c.deleted.filter((d): d is string => typeof d === 'string') : []
      anchors.set(c.anchor, { file: f.name, line: i + 1, deleted })
    })
  }
  return anchors
}

function problemAt(place: LinePlace, kind: ChainProblemKind, what: string): ChainProblem {
  return { file: place.file, line: place.line, kind, message: `${place.file}:${place.line}: line ${what}` }
}
