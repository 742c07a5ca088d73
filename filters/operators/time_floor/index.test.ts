import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { REMOVE } from '../fields.ts'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import timeFloor, { createFloor } from './index.ts'

const env = compileEnv({ category: 'camera' })
const ctx = opContext({ category: 'camera' })
const run = (config: unknown, doc: unknown): unknown => compileOperator(timeFloor, config, env)(doc, ctx)

describe('time_floor', () => {
  it('floors epoch seconds at tst by default to 60 s', () => {
    expect(run({}, { tst: 1_700_000_059, lat: 1 })).toEqual({ tst: 1_700_000_040, lat: 1 })
  })

  it('floors Frigate float seconds, epoch ms and numeric strings, keeping their representation', () => {
    const f = createFloor(60, 'auto')
    expect(f(1_700_000_059.987)).toBe(1_700_000_040)
    expect(f(1_700_000_059_987)).toBe(1_700_000_040_000)
    expect(f('1700000059')).toBe('1700000040')
    expect(f('1700000059987')).toBe('1700000040000')
    expect(createFloor(3600, 'auto')(1_700_003_599)).toBe(1_700_002_800)
  })

  it('forces the unit with format', () => {
    expect(createFloor(60, 'epoch_ms')(59_999)).toBe(0)
    expect(createFloor(60, 'epoch_s')(1.2e12 + 59)).toBe(1.2e12)
    expect(createFloor(60, 'epoch_s')('2024-01-01T00:00:00Z')).toBe(REMOVE)
    expect(createFloor(60, 'iso')(1_700_000_000)).toBe(REMOVE)
  })

  it('floors ISO 8601 to UTC with Z, converting offsets, and keeps zone-less local time zone-less', () => {
    const f = createFloor(60, 'auto')
    expect(f('2024-03-10T14:23:45Z')).toBe('2024-03-10T14:23:00Z')
    expect(f('2024-03-10T14:23:45.123456+02:00')).toBe('2024-03-10T12:23:00Z')
    expect(f('2024-03-10T01:23:45-0530')).toBe('2024-03-10T06:53:00Z')
    expect(f('2024-03-10 14:23:45z')).toBe('2024-03-10T14:23:00Z')
    expect(f('2024-03-10T14:23:45')).toBe('2024-03-10T14:23:00')
    expect(createFloor(3600, 'iso')('2024-12-31T23:59:59+00:30')).toBe('2024-12-31T23:00:00Z')
    expect(createFloor(86_400, 'iso')('2024-03-10T14:23:45Z')).toBe('2024-03-10T00:00:00Z')
  })

  it('fails closed: unreadable values are removed', () => {
    const bad = [
      'yesterday',
      '2024-02-30T10:00:00Z',
      '2024-13-01T00:00:00Z',
      '2024-01-01T24:00:00Z',
      '2024-01-01',
      '1e9',
      '2024-01-01T10:00:00+25:00',
      -5,
      Number.NaN,
      1e17,
      null,
      true,
      { t: 1 },
      [1_700_000_000],
      '',
      '1969-12-31T23:00:00Z',
    ]
    for (const value of bad) expect(run({ paths: ['t'] }, { t: value, label: 'car' })).toEqual({ label: 'car' })
  })

  it('removes a forced epoch whose floor overflows, instead of Infinity (found by fuzzing)', () => {
    // frigate/reviews with start_time Number.MAX_VALUE: the floored value was Infinity, forwarded as null.
    expect(createFloor(60, 'epoch_s')(Number.MAX_VALUE)).toBe(REMOVE)
    expect(createFloor(60, 'epoch_s')(1e308)).toBe(1e308)
    for (const seconds of [1, 60, 3600, 31_536_000]) {
      for (const format of ['epoch_s', 'epoch_ms'] as const) {
        const out = createFloor(seconds, format)(Number.MAX_VALUE)
        expect(out === REMOVE || Number.isFinite(out)).toBe(true)
      }
    }
  })

  it('handles several paths, nested paths, arrays and absent fields', () => {
    const doc = {
      after: { start_time: 1_700_000_059.5, end_time: null },
      before: { frame_time: 1_700_000_001 },
      items: [{ ts: 61 }],
    }
    expect(
      run({ paths: ['after.start_time', 'after.end_time', 'before.frame_time', 'items[].ts', 'nothing'] }, doc),
    ).toEqual({
      after: { start_time: 1_700_000_040 },
      before: { frame_time: 1_699_999_980 },
      items: [{ ts: 60 }],
    })
  })

  it('property: epoch outputs are multiples of seconds, ≤ the input and within seconds of it', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1, 60, 300, 900, 3600, 86_400),
        fc.oneof(fc.double({ min: 0, max: 1e11 - 1, noNaN: true }), fc.integer({ min: 1e11, max: 1e14 - 1 })),
        (seconds, t) => {
          const out = createFloor(seconds, 'auto')(t) as number
          const unit = t < 1e11 ? 1 : 1000
          expect(typeof out).toBe('number')
          expect(out % (seconds * unit)).toBe(0)
          expect(out).toBeLessThanOrEqual(t)
          expect(t - out).toBeLessThan(seconds * unit)
        },
      ),
      { seed: 42, numRuns: 3000 },
    )
  })

  it('property: ISO outputs are multiples of seconds, ≤ the input instant and within seconds of it', () => {
    const offsets = ['Z', '+00:00', '+02:00', '-05:30', '+0545', '-12:00']
    fc.assert(
      fc.property(
        fc.constantFrom(1, 60, 900, 3600, 86_400),
        fc.integer({ min: Date.UTC(1971, 0, 1), max: Date.UTC(2100, 0, 1) }),
        fc.constantFrom(...offsets),
        (seconds, ms, zone) => {
          const offsetMin =
            zone === 'Z' ? 0 : (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(-2)))
          const wall = new Date(ms + offsetMin * 60_000).toISOString().slice(0, 23)
          const out = createFloor(seconds, 'auto')(`${wall}${zone}`)
          expect(typeof out).toBe('string')
          expect(out as string).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/)
          const outMs = Date.parse(out as string)
          expect(outMs % (seconds * 1000)).toBe(0)
          expect(outMs).toBeLessThanOrEqual(ms)
          expect(ms - outMs).toBeLessThan(seconds * 1000)
        },
      ),
      { seed: 42, numRuns: 3000 },
    )
  })
})
