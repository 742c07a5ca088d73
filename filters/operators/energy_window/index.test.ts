import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type Emission, isScheduled, SUPPRESS } from '#veil/sdk'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import { MAX_RELEASE_DELAY_MS, MIN_RELEASE_DELAY_MS } from '../schedule.ts'
import energyWindow, { type EnergyRecord } from './index.ts'

const H = 3_600_000
const T0 = Date.UTC(2025, 0, 1)
const env = compileEnv({ category: 'smart_plug' })

function meter(config: unknown = {}) {
  const fn = compileOperator(energyWindow, config, env)
  if (!isScheduled(fn)) throw new Error('energy_window must be scheduled')
  return {
    send: (doc: unknown, nowMs: number, deviceId = 'plug-1'): unknown =>
      fn(doc, opContext({ category: 'smart_plug', deviceId, nowMs })),
    tick: (nowMs: number, drain = false): readonly Emission[] => fn.tick(nowMs, drain),
    records: (nowMs: number, deviceId = 'plug-1'): EnergyRecord[] =>
      fn
        .tick(nowMs)
        .filter((e) => e.deviceId === deviceId)
        .map((e) => e.doc as EnergyRecord),
  }
}
const tasmota = (totalKwh: number | number[]): unknown => ({
  ENERGY: {
    Total: totalKwh,
    Today: 0.5,
    Power: 1830,
    Voltage: 231,
    Current: 7.9,
    Factor: 0.99,
    ApparentPower: 1840,
    ReactivePower: 40,
  },
})
/** Past every window end's release delay. */
const AFTER = MAX_RELEASE_DELAY_MS

describe('energy_window', () => {
  it('suppresses every message and releases each window on the gateway clock, 5-30 s after it ends', () => {
    const m = meter()
    expect(m.send(tasmota(1.0), T0 + 60_000)).toBe(SUPPRESS)
    expect(m.send(tasmota(1.2), T0 + 20 * 60_000)).toBe(SUPPRESS)
    expect(m.send(tasmota(1.5), T0 + 59 * 60_000)).toBe(SUPPRESS)
    expect(m.tick(T0 + H - 1)).toEqual([])
    expect(m.tick(T0 + H + MIN_RELEASE_DELAY_MS - 1)).toEqual([])
    expect(m.records(T0 + H + AFTER)).toEqual([{ window_start: T0 / 1000, window_s: 3600, energy_wh: 500 }])
    // Released once only.
    expect(m.tick(T0 + H + AFTER + 1000)).toEqual([])
    expect(m.send(tasmota(1.6), T0 + H + 10 * 60_000)).toBe(SUPPRESS)
    expect(m.records(T0 + 2 * H + AFTER)).toEqual([{ window_start: T0 / 1000 + 3600, window_s: 3600, energy_wh: 100 }])
  })

  it('a message after the window end but before its release counts in the new window', () => {
    const m = meter()
    m.send(tasmota(1.0), T0)
    m.send(tasmota(1.1), T0 + H - 1000)
    m.send(tasmota(1.4), T0 + H + 2000)
    expect(m.records(T0 + H + AFTER)).toEqual([{ window_start: T0 / 1000, window_s: 3600, energy_wh: 100 }])
    expect(m.records(T0 + 2 * H + AFTER)).toEqual([{ window_start: T0 / 1000 + 3600, window_s: 3600, energy_wh: 300 }])
  })

  it('replaces the document: no instantaneous field survives', () => {
    const m = meter()
    m.send(tasmota(1), T0)
    m.send(tasmota(1.01), T0 + 1000)
    const [out] = m.records(T0 + H + AFTER)
    expect(Object.keys(out as object).sort()).toEqual(['energy_wh', 'window_s', 'window_start'])
    expect(JSON.stringify(out)).not.toMatch(/Power|Voltage|Current|Factor|Today|ENERGY/)
  })

  it('converts units to Wh and rounds to step_wh', () => {
    const kwh = meter({ unit: 'kWh' })
    kwh.send(tasmota(10), T0)
    kwh.send(tasmota(10.1234), T0 + 1000)
    expect(kwh.records(T0 + H + AFTER)[0]?.energy_wh).toBe(120)
    const wh = meter({ unit: 'Wh', total: 'total_wh', step_wh: 1 })
    wh.send({ total_wh: 5000 }, T0)
    wh.send({ total_wh: 5123.4 }, T0 + 1000)
    expect(wh.records(T0 + H + AFTER)[0]?.energy_wh).toBe(123)
    const wmin = meter({ unit: 'Wmin', total: '$', step_wh: 5 })
    wmin.send(60_000, T0)
    wmin.send(60_000 + 60 * 250, T0 + 1000)
    expect(wmin.records(T0 + H + AFTER)[0]?.energy_wh).toBe(250)
  })

  it('sums a multi-channel counter', () => {
    const m = meter()
    m.send(tasmota([1, 2]), T0)
    m.send(tasmota([1.1, 2.2]), T0 + 1000)
    expect(m.records(T0 + H + AFTER)[0]?.energy_wh).toBe(300)
  })

  it('keeps the energy used before a counter reset and counts on from the new reading', () => {
    const m = meter()
    m.send(tasmota(100), T0)
    m.send(tasmota(100.5), T0 + 10 * 60_000)
    m.send(tasmota(0.1), T0 + 20 * 60_000)
    m.send(tasmota(0.3), T0 + 30 * 60_000)
    expect(m.records(T0 + H + AFTER)).toEqual([{ window_start: T0 / 1000, window_s: 3600, energy_wh: 700 }])
  })

  it('issue 13.2: an idle plug still gets one zero record per window, each of the configured length, until idle_s', () => {
    const m = meter({ idle_s: 6 * 3600 })
    m.send(tasmota(5), T0 + 10 * 60_000)
    const records: EnergyRecord[] = []
    for (let t = T0; t <= T0 + 12 * H; t += 1000) records.push(...m.records(t))
    expect(records.map((r) => r.window_s)).toEqual(Array(6).fill(3600))
    expect(records.map((r) => r.window_start)).toEqual([0, 1, 2, 3, 4, 5].map((k) => T0 / 1000 + k * 3600))
    expect(records.every((r) => r.energy_wh === 0)).toBe(true)
  })

  it('a device back after a gap: one record per window it spans, never one long window', () => {
    const m = meter()
    m.send(tasmota(1), T0 + 30 * 60_000)
    m.send(tasmota(3), T0 + 5 * H + 1)
    const records = m.records(T0 + 6 * H + AFTER)
    expect(records.map((r) => r.window_s)).toEqual(Array(6).fill(3600))
    expect(records.map((r) => r.energy_wh)).toEqual([0, 0, 0, 0, 0, 2000])
  })

  it('keeps devices apart, ignores a stale message from an earlier window', () => {
    const m = meter()
    m.send(tasmota(1), T0, 'a')
    m.send(tasmota(50), T0, 'b')
    m.send(tasmota(1.2), T0 + H + 1, 'a')
    expect(m.send(tasmota(0.5), T0 - H, 'a')).toBe(SUPPRESS)
    m.send(tasmota(50.01), T0 + 1, 'b')
    const out = m.tick(T0 + H + AFTER)
    expect(out.map((e) => [e.deviceId, (e.doc as EnergyRecord).energy_wh]).sort()).toEqual([
      ['a', 0],
      ['b', 10],
    ])
    expect(m.records(T0 + 2 * H + AFTER, 'a')[0]?.energy_wh).toBe(200)
  })

  it('drain closes the open window at once (the end of a replay)', () => {
    const m = meter()
    m.send(tasmota(1), T0)
    m.send(tasmota(1.05), T0 + 1000)
    const drained = m.tick(T0 + 2000, true)
    expect(drained.map((e) => e.doc)).toEqual([{ window_start: T0 / 1000, window_s: 3600, energy_wh: 50 }])
    expect(m.tick(T0 + 10 * H)).toEqual([])
  })

  it('fails closed: a non-numeric counter throws (a counted drop)', () => {
    const m = meter()
    for (const bad of ['1.5', null, undefined, Number.NaN, -1, [1, 'x'], [], { a: 1 }]) {
      expect(() => m.send({ ENERGY: { Total: bad } }, T0)).toThrow(/ENERGY.Total/)
    }
    expect(() => m.send({ other: 1 }, T0)).toThrow()
  })

  it('fails closed on a counter that overflows once converted to Wh, instead of a NaN record (found probing hostile numbers)', () => {
    const m = meter()
    expect(() => m.send(tasmota(1e308), T0)).toThrow(/out of range/)
    expect(() => m.send(tasmota([1.7e308, 1.7e308]), T0)).toThrow(/out of range/)
    expect(() => meter({ unit: 'Wh' }).send({ ENERGY: { Total: [Number.MAX_VALUE, Number.MAX_VALUE] } }, T0)).toThrow(
      /out of range/,
    )
    expect(m.send(tasmota(1e300), T0)).toBe(SUPPRESS)
    m.send(tasmota(2e300), T0 + 1)
    expect(m.records(T0 + H + AFTER)).toEqual([{ window_start: T0 / 1000, window_s: 3600, energy_wh: 1e303 }])
  })

  it('refuses windows that are not aligned to the day, and accepts 900 s', () => {
    expect(() => compileOperator(energyWindow, { window_s: 7000 }, env)).toThrow(/86400/)
    expect(() => compileOperator(energyWindow, { step_wh: 0 }, env)).toThrow(/step_wh/)
    const m = meter({ window_s: 900 })
    m.send(tasmota(1), T0 + 1000)
    m.send(tasmota(1.1), T0 + 2000)
    expect(m.records(T0 + 900_000 + AFTER)).toEqual([{ window_start: T0 / 1000, window_s: 900, energy_wh: 100 }])
  })

  it('P8: aligned windows of the configured length, one record per window, released 5-30 s after its end, sums add up', () => {
    const sample = fc.record({
      dtMs: fc.integer({ min: 1_000, max: 3 * H }),
      dWh: fc.double({ min: 0, max: 3000, noNaN: true }),
    })
    fc.assert(
      fc.property(
        fc.constantFrom(900, 3600),
        fc.integer({ min: 0, max: 10 * 86_400_000 }),
        fc.double({ min: 0, max: 1e6, noNaN: true }),
        fc.array(sample, { minLength: 1, maxLength: 60 }),
        (windowS, offsetMs, startKwh, samples) => {
          const m = meter({ window_s: windowS })
          let now = T0 + offsetMs
          let kwh = startKwh
          const released: { at: number; record: EnergyRecord }[] = []
          // The gateway ticks every second; here every 5 s between the samples, which bounds the release lag.
          const tickTo = (until: number, from: number): void => {
            for (let t = from; t <= until; t += 5000)
              for (const e of m.tick(t)) released.push({ at: t, record: e.doc as EnergyRecord })
          }
          expect(m.send(tasmota(kwh), now)).toBe(SUPPRESS)
          const firstKwh = kwh
          for (const { dtMs, dWh } of samples) {
            tickTo(now + dtMs, now + 1)
            now += dtMs
            kwh += dWh / 1000
            expect(m.send(tasmota(kwh), now)).toBe(SUPPRESS)
          }
          for (const e of m.tick(now, true)) released.push({ at: Number.NaN, record: e.doc as EnergyRecord })
          let expectedStart = Math.floor((T0 + offsetMs) / 1000 / windowS) * windowS
          let sum = 0
          for (const { at, record } of released) {
            expect(Object.keys(record).sort()).toEqual(['energy_wh', 'window_s', 'window_start'])
            expect(record.window_s).toBe(windowS)
            expect(record.window_start).toBe(expectedStart)
            expectedStart += windowS
            if (!Number.isNaN(at)) {
              const end = (record.window_start + windowS) * 1000
              expect(at).toBeGreaterThanOrEqual(end + MIN_RELEASE_DELAY_MS)
              expect(at).toBeLessThan(end + MAX_RELEASE_DELAY_MS + 5000)
            }
            expect(record.energy_wh % 10).toBe(0)
            expect(record.energy_wh).toBeGreaterThanOrEqual(0)
            sum += record.energy_wh
          }
          const delta = (kwh - firstKwh) * 1000
          expect(Math.abs(sum - delta)).toBeLessThanOrEqual(5 + 1e-6 * Math.max(1, kwh * 1000))
        },
      ),
      { seed: 42, numRuns: 200 },
    )
  })
})
