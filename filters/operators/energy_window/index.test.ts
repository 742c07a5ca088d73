import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SUPPRESS } from '../../../gateway/src/policy/operator.ts'
import { compileEnv, opContext } from '../testing.ts'
import energyWindow, { type EnergyRecord } from './index.ts'

const H = 3_600_000
const T0 = Date.UTC(2025, 0, 1)
const env = compileEnv({ category: 'smart_plug' })

function meter(config: unknown = {}) {
  const fn = energyWindow.compile(config, env)
  return (doc: unknown, nowMs: number, deviceId = 'plug-1'): unknown => fn(doc, opContext({ category: 'smart_plug', deviceId, nowMs }))
}
const tasmota = (totalKwh: number | number[]): unknown => ({
  ENERGY: { Total: totalKwh, Today: 0.5, Power: 1830, Voltage: 231, Current: 7.9, Factor: 0.99, ApparentPower: 1840, ReactivePower: 40 },
})

describe('energy_window', () => {
  it('suppresses the baseline and every message inside a window, then emits one record for the window', () => {
    const m = meter()
    expect(m(tasmota(1.0), T0 + 60_000)).toBe(SUPPRESS)
    expect(m(tasmota(1.2), T0 + 20 * 60_000)).toBe(SUPPRESS)
    expect(m(tasmota(1.5), T0 + 59 * 60_000)).toBe(SUPPRESS)
    expect(m(tasmota(1.6), T0 + H + 5_000)).toEqual({ window_start: T0 / 1000, window_s: 3600, energy_wh: 600 })
    expect(m(tasmota(1.7), T0 + H + 10 * 60_000)).toBe(SUPPRESS)
    expect(m(tasmota(1.9), T0 + 2 * H)).toEqual({ window_start: T0 / 1000 + 3600, window_s: 3600, energy_wh: 300 })
  })

  it('replaces the document: no instantaneous field survives', () => {
    const m = meter()
    m(tasmota(1), T0)
    const out = m(tasmota(1.01), T0 + H)
    expect(Object.keys(out as object).sort()).toEqual(['energy_wh', 'window_s', 'window_start'])
    expect(JSON.stringify(out)).not.toMatch(/Power|Voltage|Current|Factor|Today|ENERGY/)
  })

  it('converts units to Wh and rounds to step_wh', () => {
    const kwh = meter({ unit: 'kWh' })
    kwh(tasmota(10), T0)
    expect((kwh(tasmota(10.1234), T0 + H) as EnergyRecord).energy_wh).toBe(120)
    const wh = meter({ unit: 'Wh', total: 'total_wh', step_wh: 1 })
    wh({ total_wh: 5000 }, T0)
    expect((wh({ total_wh: 5123.4 }, T0 + H) as EnergyRecord).energy_wh).toBe(123)
    const wmin = meter({ unit: 'Wmin', total: '$', step_wh: 5 })
    wmin(60_000, T0)
    expect((wmin(60_000 + 60 * 250, T0 + H) as EnergyRecord).energy_wh).toBe(250)
  })

  it('sums a multi-channel counter', () => {
    const m = meter()
    m(tasmota([1, 2]), T0)
    expect((m(tasmota([1.1, 2.2]), T0 + H) as EnergyRecord).energy_wh).toBe(300)
  })

  it('re-baselines and suppresses when the counter goes backwards', () => {
    const m = meter()
    m(tasmota(100), T0)
    m(tasmota(100.5), T0 + 10 * 60_000)
    expect(m(tasmota(0.1), T0 + 20 * 60_000)).toBe(SUPPRESS)
    expect(m(tasmota(0.2), T0 + 30 * 60_000)).toBe(SUPPRESS)
    expect(m(tasmota(0.4), T0 + H)).toEqual({ window_start: T0 / 1000, window_s: 3600, energy_wh: 300 })
    // A reset exactly at a window boundary releases nothing either: no negative or made-up energy.
    expect(m(tasmota(0), T0 + 2 * H)).toBe(SUPPRESS)
    expect(m(tasmota(0.05), T0 + 3 * H)).toEqual({ window_start: T0 / 1000 + 7200, window_s: 3600, energy_wh: 50 })
  })

  it('spans skipped windows with one record (the device was offline)', () => {
    const m = meter()
    m(tasmota(1), T0 + 30 * 60_000)
    expect(m(tasmota(3), T0 + 5 * H + 1)).toEqual({ window_start: T0 / 1000, window_s: 5 * 3600, energy_wh: 2000 })
  })

  it('keeps devices apart, ignores a stale message from an earlier window', () => {
    const m = meter()
    m(tasmota(1), T0, 'a')
    m(tasmota(50), T0, 'b')
    expect(m(tasmota(0.5), T0 - H, 'a')).toBe(SUPPRESS)
    expect((m(tasmota(1.2), T0 + H, 'a') as EnergyRecord).energy_wh).toBe(200)
    expect((m(tasmota(50.01), T0 + H, 'b') as EnergyRecord).energy_wh).toBe(10)
  })

  it('fails closed: a non-numeric counter throws (a counted drop)', () => {
    const m = meter()
    for (const bad of ['1.5', null, undefined, Number.NaN, -1, [1, 'x'], [], { a: 1 }]) {
      expect(() => m({ ENERGY: { Total: bad } }, T0)).toThrow(/ENERGY.Total/)
    }
    expect(() => m({ other: 1 }, T0)).toThrow()
  })

  it('fails closed on a counter that overflows once converted to Wh, instead of a NaN record (found probing hostile numbers)', () => {
    const m = meter()
    // 1e308 kWh is a finite number but Infinity Wh: Infinity - Infinity made energy_wh NaN, encoded as null.
    expect(() => m(tasmota(1e308), T0)).toThrow(/out of range/)
    expect(() => m(tasmota([1.7e308, 1.7e308]), T0)).toThrow(/out of range/)
    expect(() => meter({ unit: 'Wh' })({ ENERGY: { Total: [Number.MAX_VALUE, Number.MAX_VALUE] } }, T0)).toThrow(/out of range/)
    // Large but representable counters still work.
    expect(m(tasmota(1e300), T0)).toBe(SUPPRESS)
    expect(m(tasmota(2e300), T0 + H)).toEqual({ window_start: T0 / 1000, window_s: 3600, energy_wh: 1e303 })
  })

  it('refuses windows that are not aligned to the day, and accepts 900 s', () => {
    expect(() => energyWindow.compile({ window_s: 7000 }, env)).toThrow(/86400/)
    expect(() => energyWindow.compile({ step_wh: 0 }, env)).toThrow(/step_wh/)
    const m = meter({ window_s: 900 })
    m(tasmota(1), T0 + 1000)
    expect(m(tasmota(1.1), T0 + 900_000)).toEqual({ window_start: T0 / 1000, window_s: 900, energy_wh: 100 })
  })

  it('P8: aligned windows, one record per window, 10 Wh steps, no other keys, no pushes between windows, sums add up', () => {
    const sample = fc.record({ dtMs: fc.integer({ min: 1_000, max: 3 * H }), dWh: fc.double({ min: 0, max: 3000, noNaN: true }) })
    fc.assert(
      fc.property(
        fc.constantFrom(900, 3600),
        fc.integer({ min: 0, max: 10 * 86_400_000 }),
        fc.double({ min: 0, max: 1e6, noNaN: true }),
        fc.array(sample, { minLength: 1, maxLength: 120 }),
        (windowS, offsetMs, startKwh, samples) => {
          const m = meter({ window_s: windowS })
          let now = T0 + offsetMs
          let kwh = startKwh
          let previousWindow = Math.floor(now / 1000 / windowS)
          expect(m(tasmota(kwh), now)).toBe(SUPPRESS)
          const firstKwh = kwh
          let lastEmittedKwh = kwh
          let sum = 0
          let coveredUntil = -Infinity
          for (const { dtMs, dWh } of samples) {
            now += dtMs
            kwh += dWh / 1000
            const window = Math.floor(now / 1000 / windowS)
            const out = m(tasmota(kwh), now)
            if (window === previousWindow) {
              expect(out).toBe(SUPPRESS)
              continue
            }
            const record = out as EnergyRecord
            expect(Object.keys(record).sort()).toEqual(['energy_wh', 'window_s', 'window_start'])
            expect(record.window_start % windowS).toBe(0)
            expect(record.window_start).toBe(previousWindow * windowS)
            expect(record.window_s % windowS).toBe(0)
            expect(record.window_start + record.window_s).toBe(window * windowS)
            // Records never overlap: at most one per window.
            expect(record.window_start).toBeGreaterThanOrEqual(coveredUntil)
            coveredUntil = record.window_start + record.window_s
            expect(record.energy_wh % 10).toBe(0)
            expect(record.energy_wh).toBeGreaterThanOrEqual(0)
            sum += record.energy_wh
            lastEmittedKwh = kwh
            previousWindow = window
          }
          // The rounding remainder is carried, so the total is within half a step of the counter's delta.
          const delta = (lastEmittedKwh - firstKwh) * 1000
          expect(Math.abs(sum - delta)).toBeLessThanOrEqual(5 + 1e-6 * Math.max(1, lastEmittedKwh * 1000))
        },
      ),
      { seed: 42, numRuns: 500 },
    )
  })
})
