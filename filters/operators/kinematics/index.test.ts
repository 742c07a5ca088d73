import { Ajv } from 'ajv'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import kinematics from './index.ts'

const ctx = opContext()
const compile = (config: Record<string, unknown> = {}) => compileOperator(kinematics, config, compileEnv())
type Run = ReturnType<typeof compile>
const classOf = (run: Run, vel: unknown) => (run({ vel }, ctx) as Record<string, unknown>).motion

describe('kinematics', () => {
  it('drops heading, altitude and accuracy and replaces the speed with a class (OwnTracks defaults)', () => {
    const doc = {
      _type: 'location',
      lat: 52.5,
      lon: 13.4,
      tst: 1700000000,
      vel: 42,
      cog: 270,
      alt: 35,
      acc: 12,
      vac: 3,
      batt: 80,
    }
    expect(compile()(doc, ctx)).toEqual({
      _type: 'location',
      lat: 52.5,
      lon: 13.4,
      tst: 1700000000,
      motion: 'vehicle',
      batt: 80,
    })
  })

  it('classifies at the 1 and 7 km/h boundaries', () => {
    const run = compile()
    expect(classOf(run, 0)).toBe('stationary')
    expect(classOf(run, 0.999)).toBe('stationary')
    expect(classOf(run, 1)).toBe('walking')
    expect(classOf(run, 6.999)).toBe('walking')
    expect(classOf(run, 7)).toBe('vehicle')
    expect(classOf(run, 250)).toBe('vehicle')
  })

  it('converts m/s and knots', () => {
    const ms = compile({ speed_unit: 'ms' })
    expect(classOf(ms, 0.27)).toBe('stationary') // 0.972 km/h
    expect(classOf(ms, 0.28)).toBe('walking') // 1.008 km/h
    expect(classOf(ms, 1.94)).toBe('walking') // 6.984 km/h
    expect(classOf(ms, 1.95)).toBe('vehicle') // 7.02 km/h
    const knots = compile({ speed_unit: 'knots' })
    expect(classOf(knots, 0.53)).toBe('stationary') // 0.982 km/h
    expect(classOf(knots, 0.55)).toBe('walking') // 1.019 km/h
    expect(classOf(knots, 3.77)).toBe('walking') // 6.982 km/h
    expect(classOf(knots, 3.78)).toBe('vehicle') // 7.001 km/h
  })

  it('honours custom thresholds, paths and output', () => {
    const run = compile({
      speed: 'gps.speed',
      speed_unit: 'ms',
      drop: ['gps.track', 'gps.alt'],
      walking_kmh: 2,
      vehicle_kmh: 20,
      output: 'gps.class',
    })
    expect(run({ gps: { speed: 5, track: 10, alt: 3, lat: 1 } }, ctx)).toEqual({ gps: { class: 'walking', lat: 1 } })
    const inPlace = compile({ output: 'vel' })
    expect(inPlace({ vel: 3, cog: 1 }, ctx)).toEqual({ vel: 'walking' })
  })

  it('gives no class for a missing, negative or non-numeric speed, and removes the speed anyway', () => {
    const run = compile()
    expect(run({ cog: 1, batt: 5 }, ctx)).toEqual({ batt: 5 })
    expect(run({ vel: -1 }, ctx)).toEqual({})
    expect(run({ vel: '12' }, ctx)).toEqual({})
    expect(run({ vel: Number.NaN }, ctx)).toEqual({})
    expect(run({ vel: Number.POSITIVE_INFINITY }, ctx)).toEqual({})
    // A class the device sent itself never passes.
    expect(run({ motion: 'walking' }, ctx)).toEqual({})
    expect(() => run(12, ctx)).toThrow(/JSON object/)
  })

  it('validates its configuration', () => {
    const validate = new Ajv({ allErrors: true, strict: false }).compile(kinematics.configSchema)
    expect(validate({})).toBe(true)
    expect(validate({ speed_unit: 'mph' })).toBe(false)
    expect(validate({ walking_kmh: -1 })).toBe(false)
    expect(validate({ heading: 'cog' })).toBe(false)
    expect(() => compile({ walking_kmh: 8, vehicle_kmh: 7 })).toThrow(/walking_kmh/)
    expect(() => compile({ output: 'cog' })).toThrow(/drop/)
    expect(() => compile({ drop: ['a.__proto__'] })).toThrow(/not allowed/)
  })

  it('never outputs speed, heading, altitude or accuracy, whatever their values (property)', () => {
    const run = compile()
    fc.assert(
      fc.property(
        fc.record(
          {
            vel: fc.jsonValue(),
            cog: fc.jsonValue(),
            alt: fc.jsonValue(),
            acc: fc.jsonValue(),
            vac: fc.jsonValue(),
            motion: fc.jsonValue(),
          },
          { requiredKeys: [] },
        ),
        (doc) => {
          const out = run(structuredClone(doc), ctx) as Record<string, unknown>
          expect(Object.keys(out).filter((k) => k !== 'motion')).toEqual([])
          if ('motion' in out) expect(['stationary', 'walking', 'vehicle']).toContain(out.motion)
          if (typeof doc.vel === 'number' && doc.vel >= 0)
            expect(out.motion).toBe(doc.vel < 1 ? 'stationary' : doc.vel < 7 ? 'walking' : 'vehicle')
          else expect('motion' in out).toBe(false)
        },
      ),
      { seed: 42, numRuns: 1000 },
    )
  })
})
