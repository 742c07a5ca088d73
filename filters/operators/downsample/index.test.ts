import { Ajv } from 'ajv'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SUPPRESS } from '#veil/sdk'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import downsample from './index.ts'

const DAY = 86_400_000
const T0 = Date.UTC(2025, 0, 1)
const compile = (config: Record<string, unknown> = {}) => compileOperator(downsample, config, compileEnv())
type Run = ReturnType<typeof compile>
const at = (run: Run, nowMs: number, deviceId = 'dev-1') =>
  run({ lat: 1, lon: 2 }, opContext({ nowMs, deviceId })) !== SUPPRESS

describe('downsample', () => {
  it('forwards the document itself, unchanged', () => {
    const doc = { lat: 1, lon: 2 }
    expect(compile()(doc, opContext())).toBe(doc)
    expect(doc).toEqual({ lat: 1, lon: 2 })
  })

  it('forwards at most one message per min_interval_s (default 900 s)', () => {
    const run = compile()
    expect(at(run, T0)).toBe(true)
    expect(at(run, T0 + 1)).toBe(false)
    expect(at(run, T0 + 899_999)).toBe(false)
    expect(at(run, T0 + 900_000)).toBe(true)
    expect(at(run, T0 + 900_001)).toBe(false)
    // The interval runs from the last forwarded message, not the last received one.
    expect(at(run, T0 + 1_799_999)).toBe(false)
    expect(at(run, T0 + 1_800_000)).toBe(true)
  })

  it('keeps one budget per device', () => {
    const run = compile()
    expect(at(run, T0, 'a')).toBe(true)
    expect(at(run, T0, 'b')).toBe(true)
    expect(at(run, T0 + 1000, 'a')).toBe(false)
    expect(at(run, T0 + 1000, 'c')).toBe(true)
  })

  it('forwards at most max_per_day per UTC day and starts again at midnight UTC', () => {
    const run = compile({ min_interval_s: 60, max_per_day: 10 })
    const start = T0 + 23 * 3_600_000 // 23:00 UTC: 60 one-minute slots until midnight
    let today = 0
    for (let i = 0; i < 60; i++) if (at(run, start + i * 60_000)) today++
    expect(today).toBe(10)
    // 00:00:00.000 UTC is a new day.
    expect(at(run, T0 + DAY)).toBe(true)
    let tomorrow = 1
    for (let i = 1; i < 60; i++) if (at(run, T0 + DAY + i * 60_000)) tomorrow++
    expect(tomorrow).toBe(10)
  })

  it('with the defaults, a tracker reporting every 10 s gets exactly 96 fixes a day, 15 min apart', () => {
    const run = compile()
    const forwarded: number[] = []
    for (let t = T0; t < T0 + 3 * DAY; t += 10_000) if (at(run, t)) forwarded.push(t)
    expect(forwarded.length).toBe(3 * 96)
    for (let i = 1; i < forwarded.length; i++) expect((forwarded[i] ?? 0) - (forwarded[i - 1] ?? 0)).toBe(900_000)
  })

  it('never buys extra messages with a clock that runs backwards', () => {
    const run = compile({ min_interval_s: 900, max_per_day: 2 })
    expect(at(run, T0 + DAY)).toBe(true)
    expect(at(run, T0)).toBe(false)
    expect(at(run, T0 - DAY)).toBe(false)
    expect(at(run, T0 + DAY + 900_000)).toBe(true)
    expect(at(run, T0 + DAY + 1_800_000)).toBe(false)
    expect(() => run({}, opContext({ nowMs: Number.NaN }))).toThrow(/clock/)
  })

  it('validates its configuration', () => {
    const validate = new Ajv({ allErrors: true, strict: false }).compile(downsample.configSchema)
    expect(validate({})).toBe(true)
    expect(validate({ min_interval_s: 0, max_per_day: 1 })).toBe(true)
    expect(validate({ min_interval_s: -1 })).toBe(false)
    expect(validate({ max_per_day: 0 })).toBe(false)
    expect(validate({ max_per_day: 1.5 })).toBe(false)
    expect(validate({ interval: 5 })).toBe(false)
    expect(() => compile({ max_per_day: 0 })).toThrow(/max_per_day/)
  })

  it('both bounds hold for any message sequence, and only a bound ever suppresses (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3600 }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.tuple(fc.constantFrom('a', 'b'), fc.integer({ min: 0, max: 4 * 3600_000 })), {
          minLength: 1,
          maxLength: 300,
        }),
        (intervalS, maxPerDay, steps) => {
          const run = compile({ min_interval_s: intervalS, max_per_day: maxPerDay })
          const forwarded = new Map<string, number[]>()
          let now = T0
          for (const [device, gap] of steps) {
            now += gap
            const mine = forwarded.get(device) ?? []
            const last = mine[mine.length - 1]
            const sameDay = mine.filter((t) => Math.floor(t / DAY) === Math.floor(now / DAY)).length
            const allowed = (last === undefined || now - last >= intervalS * 1000) && sameDay < maxPerDay
            expect(at(run, now, device)).toBe(allowed)
            if (allowed) forwarded.set(device, [...mine, now])
          }
        },
      ),
      { seed: 42, numRuns: 500 },
    )
  })
})
