import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compileEnv, opContext } from '../testing.ts'
import bucket from './index.ts'

const env = compileEnv({ category: 'body_scale' })
const ctx = opContext({ category: 'body_scale' })
const compile = (config: unknown) => {
  const fn = bucket.compile(config, env)
  return (doc: unknown): unknown => fn(doc, ctx)
}
const WHO = { path: 'bmi', bounds: [18.5, 25, 30], labels: ['underweight', 'normal', 'overweight', 'obese'] }

describe('bucket', () => {
  it('maps BMI to the WHO classes, bounds belonging to the upper bin', () => {
    const who = compile(WHO)
    const cases: [number, string][] = [
      [12, 'underweight'],
      [18.49, 'underweight'],
      [18.5, 'normal'],
      [24.99, 'normal'],
      [25, 'overweight'],
      [29.9, 'overweight'],
      [30, 'obese'],
      [55, 'obese'],
    ]
    for (const [bmi, label] of cases) expect(who({ bmi })).toEqual({ bmi: label })
  })

  it('names bins by their interval when no labels are given', () => {
    const bins = compile({ path: 'bmi', bounds: [18.5, 25, 30] })
    expect([10, 20, 27, 31].map((bmi) => (bins({ bmi }) as { bmi: string }).bmi)).toEqual([
      '<18.5',
      '18.5-25',
      '25-30',
      '>=30',
    ])
  })

  it('floors to a width: age bands, height 10 cm, battery 10 %, decimal widths', () => {
    expect(compile({ path: 'age', width: 10 })({ age: 37 })).toEqual({ age: 30 })
    expect(compile({ path: 'height', width: 10 })({ height: 178.4 })).toEqual({ height: 170 })
    expect(compile({ path: 'batt', width: 10 })({ batt: 100 })).toEqual({ batt: 100 })
    expect(compile({ path: 'batt', width: 10 })({ batt: 9 })).toEqual({ batt: 0 })
    expect(compile({ path: 'w', width: 0.1 })({ w: 0.3 })).toEqual({ w: 0.3 })
    expect(compile({ path: 'w', width: 0.1 })({ w: 0.29999 })).toEqual({ w: 0.2 })
  })

  it('top- and bottom-codes with min and max', () => {
    const age = compile({ path: 'age', width: 10, min: 20, max: 80 })
    expect(age({ age: 97 })).toEqual({ age: 80 })
    expect(age({ age: 15 })).toEqual({ age: 20 })
    expect(age({ age: 44 })).toEqual({ age: 40 })
  })

  it('fails closed: non-numbers are removed', () => {
    for (const bad of ['22', null, [22], { v: 22 }, Number.NaN, true]) {
      expect(compile(WHO)({ bmi: bad, battery: 50 })).toEqual({ battery: 50 })
      expect(compile({ path: 'bmi', width: 10 })({ bmi: bad })).toEqual({})
    }
  })

  it('refuses bad settings at load', () => {
    expect(() => bucket.compile({ path: 'x', bounds: [30, 25] }, env)).toThrow(/ascending/)
    expect(() => bucket.compile({ path: 'x', bounds: [25, 25] }, env)).toThrow(/ascending/)
    expect(() => bucket.compile({ path: 'x', bounds: [25, 30], labels: ['a', 'b'] }, env)).toThrow(/3/)
    expect(() => bucket.compile({ path: 'x' }, env)).toThrow(/bounds|width/)
    expect(() => bucket.compile({ path: 'x', width: 10, min: 5, max: 1 }, env)).toThrow(/min/)
  })

  it('property: the output is always one of the labels, and the value lies in that bin', () => {
    const who = compile(WHO)
    fc.assert(
      fc.property(fc.double({ min: -100, max: 200, noNaN: true }), (bmi) => {
        const label = (who({ bmi }) as { bmi: string }).bmi
        const bin = WHO.labels.indexOf(label)
        expect(bin).toBeGreaterThanOrEqual(0)
        const lower = bin === 0 ? -Infinity : (WHO.bounds[bin - 1] as number)
        const upper = bin === WHO.bounds.length ? Infinity : (WHO.bounds[bin] as number)
        expect(bmi >= lower && bmi < upper).toBe(true)
      }),
      { seed: 42, numRuns: 2000 },
    )
  })

  it('property: width output is a multiple of the width, ≤ the value and within one width of it', () => {
    fc.assert(
      fc.property(fc.constantFrom(1, 5, 10, 0.5, 0.1), fc.double({ min: -1e5, max: 1e5, noNaN: true }), (width, v) => {
        const out = (compile({ path: 'v', width })({ v }) as { v: number }).v
        expect(out).toBeLessThanOrEqual(v)
        expect(v - out).toBeLessThan(width + 1e-9 * Math.max(1, Math.abs(v)))
        expect(Math.abs(out / width - Math.round(out / width))).toBeLessThan(1e-6)
      }),
      { seed: 42, numRuns: 2000 },
    )
  })
})
