import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../../../test/helpers/gateway.ts'
import { until } from '../../../test/helpers/poll.ts'
import { AUDIT_FILE, FileAuditLog } from './audit.ts'
import { isoTime } from './audit.ts'

describe('FileAuditLog', () => {
  const linesOf = (dir: string): { reason: string; count?: number; time: string }[] =>
    readFileSync(join(dir, AUDIT_FILE), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { reason: string; count?: number; time: string })

  it('writes every line, in order, across event-loop turns and at close', async () => {
    const dir = tempDir()
    try {
      const audit = new FileAuditLog(dir.path)
      audit.record({ stage: 'classify', category: 'unclassified', reason: 'unknown_topic' }, 'v1', 1_000)
      audit.record({ stage: 'filter', category: 'smart_plug', reason: 'suppressed', domain: 'svc' }, 'v1', 2_000)
      // The first batch reaches the file at the end of the turn, without a close.
      await until(
        () =>
          existsSync(join(dir.path, AUDIT_FILE)) &&
          readFileSync(join(dir.path, AUDIT_FILE), 'utf8').split('\n').length > 2,
        { timeoutMs: 2000, what: 'the first batch in the audit file' },
      )
      expect(linesOf(dir.path).map((l) => l.reason)).toEqual(['unknown_topic', 'suppressed'])
      audit.record({ stage: 'forward', category: 'camera', reason: 'queue_full', domain: 'svc', count: 3 }, 'v1', 3_000)
      await audit.close()
      const lines = linesOf(dir.path)
      expect(lines.map((l) => l.reason)).toEqual(['unknown_topic', 'suppressed', 'queue_full'])
      expect(lines[2]?.count).toBe(3)
      expect(lines[0]?.time).toBe(new Date(1_000).toISOString())
    } finally {
      dir.remove()
    }
  })

  it('loses no line of a flood within one turn (batches past their size bound are written at once)', async () => {
    const dir = tempDir()
    try {
      const audit = new FileAuditLog(dir.path)
      const n = 5_000
      for (let i = 0; i < n; i++)
        audit.record({ stage: 'filter', category: 'gps_tracker', reason: 'suppressed', domain: 'ana' }, 'v', i)
      await audit.close()
      const lines = linesOf(dir.path)
      expect(lines).toHaveLength(n)
      expect(lines.at(-1)?.time).toBe(new Date(n - 1).toISOString())
    } finally {
      dir.remove()
    }
  })
})

describe('isoTime', () => {
  it('writes exactly what toISOString writes', () => {
    const edges = [
      0, 1, 999, 1000, 86_399_999, 86_400_000, 951_782_400_000, 1_770_000_000_123, 253_402_300_799_999,
      253_402_300_800_000, -1, -86_400_001, 1.5,
    ]
    for (const ms of edges) expect(isoTime(ms)).toBe(new Date(ms).toISOString())
    fc.assert(
      fc.property(
        fc.integer({ min: -8_640_000_000_000, max: 8_640_000_000_000_000 }),
        (ms) => isoTime(ms) === new Date(ms).toISOString(),
      ),
    )
    // Back and forth across days, as replayed and live clocks may go.
    for (const ms of [1_770_000_000_000, 1_700_000_000_000, 1_770_000_000_001, 1_770_086_400_000])
      expect(isoTime(ms)).toBe(new Date(ms).toISOString())
  })

  it('throws on a clock that is not a time, as toISOString does', () => {
    expect(() => isoTime(Number.NaN)).toThrow(RangeError)
  })
})
