import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isoTime } from './audit.ts'

describe('isoTime', () => {
  it('writes exactly what toISOString writes', () => {
    const edges = [0, 1, 999, 1000, 86_399_999, 86_400_000, 951_782_400_000, 1_770_000_000_123, 253_402_300_799_999, 253_402_300_800_000, -1, -86_400_001, 1.5]
    for (const ms of edges) expect(isoTime(ms)).toBe(new Date(ms).toISOString())
    fc.assert(fc.property(fc.integer({ min: -8_640_000_000_000, max: 8_640_000_000_000_000 }), (ms) => isoTime(ms) === new Date(ms).toISOString()))
    // Back and forth across days, as replayed and live clocks may go.
    for (const ms of [1_770_000_000_000, 1_700_000_000_000, 1_770_000_000_001, 1_770_086_400_000]) expect(isoTime(ms)).toBe(new Date(ms).toISOString())
  })

  it('throws on a clock that is not a time, as toISOString does', () => {
    expect(() => isoTime(Number.NaN)).toThrow(RangeError)
  })
})
