import { Ajv } from 'ajv'
import { describe, expect, it } from 'vitest'
import { SUPPRESS } from '#veil/sdk'
import { compileEnv, compileOperator, opContext, seededRandom } from '../testing.ts'
import stayZone from './index.ts'

const T0 = Date.UTC(2025, 0, 1)
const MINUTE = 60_000
const HOME = { lat: 48.8566, lon: 2.3522 }
const M_PER_DEG = 111_195

const compile = (config: Record<string, unknown> = {}) => compileOperator(stayZone, config, compileEnv())
type Run = ReturnType<typeof compile>
const send = (run: Run, lat: number, lon: number, nowMs: number, deviceId = 'dev-1') =>
  run({ lat, lon, batt: 50 }, opContext({ nowMs, deviceId }))
/** A point `north` and `east` metres from HOME. */
const at = (north: number, east: number) =>
  [HOME.lat + north / M_PER_DEG, HOME.lon + east / (M_PER_DEG * Math.cos((HOME.lat * Math.PI) / 180))] as const

/** Sits at HOME (±20 m jitter) for `minutes`, one fix a minute; returns how many fixes left. */
function dwell(run: Run, startMs: number, minutes: number, jitter = seededRandom(3)): number {
  let out = 0
  for (let i = 0; i < minutes; i++) {
    const [lat, lon] = at((jitter() - 0.5) * 40, (jitter() - 0.5) * 40)
    if (send(run, lat, lon, startMs + i * MINUTE) !== SUPPRESS) out++
  }
  return out
}

/** Drives away from HOME to the east at 500 m a minute; returns the distances (m) of the fixes that left. */
function leave(run: Run, startMs: number, minutes: number): number[] {
  const left: number[] = []
  for (let i = 1; i <= minutes; i++) {
    const [lat, lon] = at(0, i * 500)
    if (send(run, lat, lon, startMs + i * MINUTE) !== SUPPRESS) left.push(i * 500)
  }
  return left
}

describe('stay_zone', () => {
  it('validates its configuration', () => {
    const validate = new Ajv({ allErrors: true, strict: false }).compile(stayZone.configSchema)
    expect(validate({})).toBe(true)
    expect(validate({ enabled: false, stay_radius_m: 150, dwell_s: 3600, max_zones: 4 })).toBe(true)
    expect(validate({ dwell_s: 10 })).toBe(false)
    expect(validate({ max_zones: 0 })).toBe(false)
    expect(validate({ zones: [] })).toBe(false)
    expect(() => compile({ lat: 'x', lon: 'x' })).toThrow(/different/)
  })

  it('fails closed: coordinates it cannot test are removed', () => {
    const run = compile()
    expect(run({ lat: '48.8', lon: 2.3, x: 1 }, opContext())).toEqual({ x: 1 })
    expect(run({ lat: 48.8 }, opContext())).toEqual({})
    expect(() => run(null, opContext())).toThrow(/JSON object/)
  })

  it('withholds a device that sits still: its first fix and every fix within stay_radius_m of where the stay began', () => {
    const run = compile()
    expect(dwell(run, T0, 600)).toBe(0)
  })

  it('learns a dwelt place as a zone: leaving it, nothing within min_radius_m leaves, then the trip does', () => {
    const run = compile()
    dwell(run, T0, 45)
    const left = leave(run, T0 + 45 * MINUTE, 10)
    // The fuzzed zone reaches 400-750 m from home: the 500 m fix may or may not be inside; the 1 km one is outside.
    expect(left.every((d) => d >= 500)).toBe(true)
    expect(left).toContain(1000)
    expect(left.length).toBeGreaterThanOrEqual(9)
  })

  it('without a long enough stay there is no zone: the old behaviour forwards the departure right outside the stay', () => {
    const run = compile()
    dwell(run, T0, 20) // 20 min < dwell_s 30 min
    expect(leave(run, T0 + 20 * MINUTE, 3)).toEqual([500, 1000, 1500])
    const off = compile({ enabled: false })
    expect(dwell(off, T0, 45)).toBe(45)
  })

  it('suppresses the approach to a learned place on later days, for that device only', () => {
    const run = compile()
    dwell(run, T0, 60)
    leave(run, T0 + 60 * MINUTE, 20)
    // Come back from 10 km west, 500 m a minute.
    const back: number[] = []
    for (let i = 20; i >= 0; i--) {
      const [lat, lon] = at(0, -i * 500)
      if (send(run, lat, lon, T0 + 10 * 60 * MINUTE + (20 - i) * MINUTE) !== SUPPRESS) back.push(i * 500)
    }
    expect(back.length).toBeGreaterThan(10)
    expect(Math.min(...back)).toBeGreaterThanOrEqual(400)
    // Another device has learned nothing here: its first movement near home leaves.
    send(run, ...at(0, -800), T0, 'dev-2')
    expect(send(run, ...at(0, -300), T0 + MINUTE, 'dev-2')).not.toBe(SUPPRESS)
  })

  it('keeps at most max_zones learned places per device, forgetting the least recently visited', () => {
    const run = compile({ max_zones: 2 })
    const places = [0, 5000, 10_000]
    let t = T0
    for (const east of places) {
      for (let i = 0; i < 40; i++) send(run, ...at(0, east), (t += MINUTE))
      t += 60 * MINUTE
    }
    // Place 0 was evicted: arriving there, a fix 300 m away leaves again; place 10 km still suppresses.
    send(run, ...at(0, 2000), (t += MINUTE))
    expect(send(run, ...at(0, 300), (t += MINUTE))).not.toBe(SUPPRESS)
    send(run, ...at(0, 8000), (t += MINUTE))
    expect(send(run, ...at(0, 10_300), (t += MINUTE))).toBe(SUPPRESS)
  })
})
