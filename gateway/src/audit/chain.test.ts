import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../../../test/helpers/gateway.ts'
import { type AuditEntry, FileAuditLog } from './audit.ts'
import { AUDIT_FILE, auditFiles, GENESIS, lineHash } from './chain.ts'
import { verifyAuditLog } from './verify.ts'

const DAY = 86_400_000
const T0 = Date.UTC(2026, 0, 10)
const ENTRY: AuditEntry = { stage: 'filter', category: 'smart_plug', reason: 'suppressed', domain: 'ana' }

/** `n` lines a second apart from `start`, in files of about four lines each. */
async function writeLog(dir: string, n: number, start = T0, options: { maxBytes?: number } = {}): Promise<void> {
  const log = new FileAuditLog(dir, { maxBytes: options.maxBytes ?? 1000, now: () => start })
  for (let i = 0; i < n; i++) log.record(ENTRY, 'v1', start + i * 1000)
  await log.close()
}

/** Every line of the log, oldest first, with its place. */
function linesOf(dir: string): { file: string; line: number; text: string }[] {
  return auditFiles(dir).flatMap((f) =>
    readFileSync(join(dir, f.name), 'utf8')
      .split('\n')
      .slice(0, -1)
      .map((text, i) => ({ file: f.name, line: i + 1, text })),
  )
}

/** Rewrites the files from a list of lines (each with the file it belongs in). */
function writeLines(dir: string, lines: readonly { file: string; text: string }[], files: readonly string[]): void {
  for (const f of files)
    writeFileSync(
      join(dir, f),
      lines
        .filter((l) => l.file === f)
        .map((l) => `${l.text}\n`)
        .join(''),
    )
}

const placeOf = (r: ReturnType<typeof verifyAuditLog>): string | undefined =>
  r.problem === undefined ? undefined : `${r.problem.file}:${r.problem.line}`

describe('the audit hash chain', () => {
  it('chains every line to the one before, across rotated files and a restart', async () => {
    const dir = tempDir()
    try {
      await writeLog(dir.path, 10)
      await writeLog(dir.path, 10, T0 + 10_000)
      const lines = linesOf(dir.path)
      expect(new Set(lines.map((l) => l.file)).size).toBeGreaterThan(3)
      expect(lines).toHaveLength(20)
      lines.forEach((l, i) => {
        const parsed = JSON.parse(l.text) as { seq: number; prev: string }
        expect(parsed.seq).toBe(i)
        expect(parsed.prev).toBe(i === 0 ? GENESIS : lineHash(lines[i - 1]?.text ?? ''))
      })
      const r = verifyAuditLog(dir.path)
      expect(r.problem).toBeUndefined()
      expect(r.lines).toBe(20)
      expect(r.head).toMatchObject({ file: AUDIT_FILE, seq: 19, hash: lineHash(lines[19]?.text ?? '') })
      // The oldest file first, the current one last.
      expect(r.files.at(0)).toBe(`${AUDIT_FILE}.1`)
      expect(r.files.at(-1)).toBe(AUDIT_FILE)
    } finally {
      dir.remove()
    }
  })

  it('continues from the newest rotated file when a crash came between a rotation and the next line', async () => {
    const dir = tempDir()
    try {
      await writeLog(dir.path, 6)
      const lines = linesOf(dir.path)
      // What a rotation leaves: the last lines in the newest rotated file, an empty current one.
      const n = auditFiles(dir.path).length
      writeFileSync(join(dir.path, `${AUDIT_FILE}.${n}`), readFileSync(join(dir.path, AUDIT_FILE)))
      writeFileSync(join(dir.path, AUDIT_FILE), '')
      await writeLog(dir.path, 2, T0 + 6000)
      expect(verifyAuditLog(dir.path).problem).toBeUndefined()
      expect(JSON.parse(readFileSync(join(dir.path, AUDIT_FILE), 'utf8').split('\n')[0] ?? '')).toMatchObject({
        seq: 6,
        prev: lineHash(lines[5]?.text ?? ''),
      })
    } finally {
      dir.remove()
    }
  })

  it('names the place of each kind of tampering', async () => {
    const dir = tempDir()
    try {
      await writeLog(dir.path, 16)
      const files = auditFiles(dir.path).map((f) => f.name)
      const original = linesOf(dir.path)
      const at = (i: number): string => `${original[i]?.file}:${original[i]?.line}`
      const check = (lines: { file: string; text: string }[], kind: string, place: string): void => {
        writeLines(dir.path, lines, files)
        const r = verifyAuditLog(dir.path)
        expect({ kind: r.problem?.kind, place: placeOf(r) }).toEqual({ kind, place })
      }
      const edited = original.map((l) => ({ ...l }))
      const target = edited[6]
      if (target === undefined) throw new Error('no line 6')
      target.text = target.text.replace('"ana"', '"anb"')
      check(edited, 'changed', at(6))

      check(
        original.filter((_, i) => i !== 6),
        'removed',
        at(7).startsWith(original[6]?.file ?? '') ? at(6) : `${original[7]?.file}:1`,
      )
      // The last line of a rotated file: the break shows at the first line of the next file.
      const lastOfFirst = original.findIndex((l) => l.file !== files[0]) - 1
      check(
        original.filter((_, i) => i !== lastOfFirst),
        'removed',
        `${files[1]}:1`,
      )

      const forged = {
        file: original[9]?.file ?? '',
        line: 0,
        text: `{"time":"2026-01-10T00:00:09.000Z","stage":"filter","category":"smart_plug","reason":"suppressed","policy":"v1","seq":9,"prev":"${lineHash(original[8]?.text ?? '')}"}`,
      }
      check([...original.slice(0, 9), forged, ...original.slice(9)], 'inserted', at(9))

      const swapped = original.map((l, i) => ({
        file: l.file,
        text: original[i === 4 ? 5 : i === 5 ? 4 : i]?.text ?? '',
      }))
      check(swapped, 'reordered', at(4))

      writeLines(dir.path, original, files)
      expect(verifyAuditLog(dir.path).problem).toBeUndefined()
    } finally {
      dir.remove()
    }
  })

  it('reports a whole file deleted in the middle, and the oldest deleted without a retention record', async () => {
    const dir = tempDir()
    try {
      await writeLog(dir.path, 16)
      const files = auditFiles(dir.path).map((f) => f.name)
      rmSync(join(dir.path, `${AUDIT_FILE}.2`))
      const r = verifyAuditLog(dir.path)
      expect(r.problem).toMatchObject({ kind: 'removed', file: `${AUDIT_FILE}.3`, line: 1 })
      expect(r.problem?.message).toContain(`${AUDIT_FILE}.2 missing`)

      const dir2 = tempDir()
      try {
        await writeLog(dir2.path, 16)
        rmSync(join(dir2.path, files[0] ?? ''))
        expect(verifyAuditLog(dir2.path).problem).toMatchObject({
          kind: 'missing_start',
          file: files[1],
          line: 1,
        })
      } finally {
        dir2.remove()
      }
    } finally {
      dir.remove()
    }
  })

  it('tells a line torn by a crash from tampering, at the end of the log and after the restart', async () => {
    const dir = tempDir()
    try {
      await writeLog(dir.path, 3, T0, { maxBytes: 1 << 20 })
      const file = join(dir.path, AUDIT_FILE)
      appendFileSync(file, '{"time":"2026-01-10T00:00:03.000Z","stage":"fil')
      let r = verifyAuditLog(dir.path)
      expect(r.problem).toBeUndefined()
      expect(r.torn).toEqual([{ file: AUDIT_FILE, line: 4 }])

      await writeLog(dir.path, 2, T0 + 10_000, { maxBytes: 1 << 20 })
      const lines = readFileSync(file, 'utf8').split('\n')
      expect(lines[3]).toBe('{"time":"2026-01-10T00:00:03.000Z","stage":"fil')
      expect(JSON.parse(lines[4] ?? '')).toMatchObject({
        kind: 'restart',
        torn: true,
        seq: 3,
        prev: lineHash(lines[2] ?? ''),
      })
      r = verifyAuditLog(dir.path)
      expect(r.problem).toBeUndefined()
      expect(r.torn).toEqual([{ file: AUDIT_FILE, line: 4 }])
      expect(r.lines).toBe(6)

      // The same fragment without the restart after it is an edit, at its own place.
      writeFileSync(file, [...lines.slice(0, 4), ...lines.slice(5)].join('\n'))
      expect(placeOf(verifyAuditLog(dir.path))).toBe(`${AUDIT_FILE}:4`)
    } finally {
      dir.remove()
    }
  })

  it('accepts the lines of a Veil without the chain only before the chain begins', async () => {
    const dir = tempDir()
    try {
      const old =
        '{"time":"2026-01-09T00:00:00.000Z","stage":"filter","category":"camera","reason":"suppressed","policy":"v0"}'
      writeFileSync(join(dir.path, AUDIT_FILE), `${old}\n${old}\n`)
      await writeLog(dir.path, 2, T0, { maxBytes: 1 << 20 })
      const r = verifyAuditLog(dir.path)
      expect(r.problem).toBeUndefined()
      expect(r.legacy).toBe(2)
      // The old lines are of the day before: the first chained line went to a new file.
      expect(r.files).toEqual([`${AUDIT_FILE}.1`, AUDIT_FILE])
      appendFileSync(join(dir.path, AUDIT_FILE), `${old}\n`)
      expect(verifyAuditLog(dir.path).problem).toMatchObject({ kind: 'changed', file: AUDIT_FILE, line: 3 })
    } finally {
      dir.remove()
    }
  })

  it('finds any one edit, removal, insertion or swap at its place (random positions)', async () => {
    const dir = tempDir()
    try {
      await writeLog(dir.path, 14)
      const files = auditFiles(dir.path).map((f) => f.name)
      const original = linesOf(dir.path)
      const n = original.length
      type Op =
        | { op: 'edit'; k: number; at: number; byte: number }
        | { op: 'remove'; k: number }
        | { op: 'insert'; k: number; copy: number; forge: boolean }
        | { op: 'swap'; k: number; j: number }
      // The newest line is left alone: no line after it names its hash (the head the verifier prints covers it).
      const ops = fc.oneof(
        fc.record({
          op: fc.constant('edit' as const),
          k: fc.integer({ min: 0, max: n - 2 }),
          at: fc.nat(),
          byte: fc.integer({ min: 1, max: 255 }),
        }),
        fc.record({ op: fc.constant('remove' as const), k: fc.integer({ min: 0, max: n - 2 }) }),
        fc.record({
          op: fc.constant('insert' as const),
          k: fc.integer({ min: 0, max: n - 1 }),
          copy: fc.integer({ min: 0, max: n - 1 }),
          forge: fc.boolean(),
        }),
        fc.record({ op: fc.constant('swap' as const), k: fc.integer({ min: 0, max: n - 2 }), j: fc.nat() }),
      )
      fc.assert(
        fc.property(ops, (o: Op) => {
          // Raw lines with their newlines, as latin1 text: an edit may replace a newline or write any byte.
          const lines = original.map((l) => ({ file: l.file, text: `${l.text}\n` }))
          let expected: string
          const place = (i: number): string => `${original[i]?.file}:${original[i]?.line}`
          if (o.op === 'edit') {
            const l = lines[o.k]
            if (l === undefined) return
            const bytes = Buffer.from(l.text, 'latin1')
            const at = o.at % bytes.length
            bytes[at] = (bytes[at] ?? 0) ^ o.byte
            l.text = bytes.toString('latin1')
            expected = place(o.k)
          } else if (o.op === 'remove') {
            lines.splice(o.k, 1)
            const next = original[o.k + 1]
            expected = next?.file === original[o.k]?.file ? place(o.k) : `${next?.file}:1`
          } else if (o.op === 'insert') {
            if (o.copy === o.k) return
            const prevHash = o.k === 0 ? GENESIS : lineHash(original[o.k - 1]?.text ?? '')
            const text = o.forge
              ? `{"time":"2026-01-10T00:00:00.500Z","stage":"filter","category":"camera","reason":"suppressed","policy":"v1","seq":${o.k},"prev":"${prevHash}"}`
              : (original[o.copy]?.text ?? '')
            lines.splice(o.k, 0, { file: original[o.k]?.file ?? '', text: `${text}\n` })
            expected = place(o.k)
          } else {
            const j = o.k + 1 + (o.j % (n - 1 - o.k))
            const a = lines[o.k]
            const b = lines[j]
            if (a === undefined || b === undefined) return
            lines[o.k] = { file: a.file, text: b.text }
            lines[j] = { file: b.file, text: a.text }
            expected = place(o.k)
          }
          writeRaw(dir.path, lines, files)
          const r = verifyAuditLog(dir.path)
          expect(placeOf(r)).toBe(expected)
        }),
        { numRuns: 300 },
      )
    } finally {
      dir.remove()
    }
  })
})

/** Writes raw lines (latin1 text with their newlines) to their files. */
function writeRaw(dir: string, lines: readonly { file: string; text: string }[], files: readonly string[]): void {
  for (const f of files)
    writeFileSync(
      join(dir, f),
      Buffer.from(
        lines
          .filter((l) => l.file === f)
          .map((l) => l.text)
          .join(''),
        'latin1',
      ),
    )
}

describe('audit retention', () => {
  it('rotates at the first line of a new UTC day', async () => {
    const dir = tempDir()
    try {
      const log = new FileAuditLog(dir.path, { now: () => T0 })
      log.record(ENTRY, 'v1', T0 + DAY - 2)
      log.record(ENTRY, 'v1', T0 + DAY - 1)
      log.record(ENTRY, 'v1', T0 + DAY)
      // A clock stepped back across midnight and forward again: no file per step.
      log.record(ENTRY, 'v1', T0 + DAY - 5)
      log.record(ENTRY, 'v1', T0 + DAY + 1)
      await log.close()
      expect(readdirSync(dir.path).sort()).toEqual([AUDIT_FILE, `${AUDIT_FILE}.1`])
      expect(readFileSync(join(dir.path, AUDIT_FILE), 'utf8').trim().split('\n')).toHaveLength(3)
      expect(
        readFileSync(join(dir.path, `${AUDIT_FILE}.1`), 'utf8')
          .trim()
          .split('\n'),
      ).toHaveLength(2)
      // A restart the next day rotates too: the day comes from the file's last line.
      const again = new FileAuditLog(dir.path, { now: () => T0 })
      again.record(ENTRY, 'v1', T0 + 2 * DAY)
      await again.close()
      expect(existsSync(join(dir.path, `${AUDIT_FILE}.2`))).toBe(true)
      expect(verifyAuditLog(dir.path).problem).toBeUndefined()
    } finally {
      dir.remove()
    }
  })

  it('deletes rotated files past retentionDays, records it, and the chain still verifies', async () => {
    const dir = tempDir()
    try {
      const writer = new FileAuditLog(dir.path, { now: () => T0 })
      // One file per day for five days.
      for (let d = 0; d < 5; d++) for (let i = 0; i < 3; i++) writer.record(ENTRY, 'v1', T0 + d * DAY + i * 1000)
      await writer.close()
      const kept = readFileSync(join(dir.path, `${AUDIT_FILE}.2`), 'utf8')
        .trim()
        .split('\n')
      let now = T0 + 3 * DAY + 2000
      const log = new FileAuditLog(dir.path, { retentionDays: 3, now: () => now })
      expect(await log.enforceRetention()).toEqual([])
      now = T0 + 4 * DAY + 2001
      // Days 0 and 1 ended more than three days before now; day 2 ended just inside them.
      expect(await log.enforceRetention()).toEqual([`${AUDIT_FILE}.1`, `${AUDIT_FILE}.2`])
      await log.close()
      expect(auditFiles(dir.path).map((f) => f.name)).toEqual([`${AUDIT_FILE}.3`, `${AUDIT_FILE}.4`, AUDIT_FILE])
      const record = readFileSync(join(dir.path, AUDIT_FILE), 'utf8').trim().split('\n').at(-1) ?? ''
      expect(JSON.parse(record)).toMatchObject({
        kind: 'retention',
        retentionDays: 3,
        deleted: [`${AUDIT_FILE}.1`, `${AUDIT_FILE}.2`],
        anchor: lineHash(kept.at(-1) ?? ''),
      })
      const r = verifyAuditLog(dir.path)
      expect(r.problem).toBeUndefined()
      expect(r.retention).toMatchObject({ file: AUDIT_FILE, deleted: [`${AUDIT_FILE}.1`, `${AUDIT_FILE}.2`] })

      // A file deleted in the middle is still reported; so is the oldest remaining one (no record names it).
      const copy = readFileSync(join(dir.path, `${AUDIT_FILE}.4`))
      rmSync(join(dir.path, `${AUDIT_FILE}.4`))
      expect(verifyAuditLog(dir.path).problem).toMatchObject({ kind: 'removed', file: AUDIT_FILE, line: 1 })
      writeFileSync(join(dir.path, `${AUDIT_FILE}.4`), copy)
      rmSync(join(dir.path, `${AUDIT_FILE}.3`))
      expect(verifyAuditLog(dir.path).problem).toMatchObject({ kind: 'missing_start', file: `${AUDIT_FILE}.4` })
    } finally {
      dir.remove()
    }
  })

  it('deletes at open what expired while the gateway was stopped, never the current file, and again later', async () => {
    const dir = tempDir()
    try {
      await writeLog(dir.path, 12)
      const before = auditFiles(dir.path).map((f) => f.name)
      expect(before.length).toBeGreaterThan(2)
      let now = T0 + 200 * DAY
      const log = new FileAuditLog(dir.path, { now: () => now })
      // The one started by the open, still running.
      expect(await log.enforceRetention()).toEqual(before.slice(0, -1))
      // Its record began a new day: the current file was rotated first, and goes at the next check.
      const rotated = `${AUDIT_FILE}.${before.length}`
      expect(auditFiles(dir.path).map((f) => f.name)).toEqual([rotated, AUDIT_FILE])
      now += 181 * DAY
      expect(await log.enforceRetention()).toEqual([rotated])
      await log.close()
      // What is left: the first record (rotated away by the second, on a later day) and the second.
      expect(auditFiles(dir.path).map((f) => f.name)).toEqual([`${AUDIT_FILE}.${before.length + 1}`, AUDIT_FILE])
      const r = verifyAuditLog(dir.path)
      expect(r.problem).toBeUndefined()
      expect(r.retention?.deleted).toEqual([rotated])
    } finally {
      dir.remove()
    }
  })
})
