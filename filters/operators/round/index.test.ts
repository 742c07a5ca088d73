import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SUPPRESS } from '#veil/sdk'
import { compileEnv, opContext } from '../testing.ts'
import { floorToStep, parseStep, roundToStep, shiftDecimal } from '../decimal.ts'
import round from './index.ts'

const env = compileEnv({ category: 'camera' })
const ctx = opContext({ category: 'camera' })
const run = (config: unknown, doc: unknown): unknown => round.compile(config, env)(doc, ctx)

/** Decimals printed by the shortest round-trip representation of a number. */
function printedDecimals(value: number): number {
  const text = String(value)
  if (text.includes('e')) return Number.POSITIVE_INFINITY
  const dot = text.indexOf('.')
  return dot === -1 ? 0 : text.length - dot - 1
}

describe('round', () => {
  it('rounds to the step without float noise', () => {
    expect(run({ paths: ['a'], step: 0.1 }, { a: 0.30000000000000004 })).toEqual({ a: 0.3 })
    expect(run({ paths: ['a'], step: 0.1 }, { a: 0.1 + 0.2 })).toEqual({ a: 0.3 })
    expect(run({ paths: ['a'], step: 0.1 }, { a: 0.25 })).toEqual({ a: 0.3 })
    expect(run({ paths: ['a'], step: 0.1 }, { a: -0.25 })).toEqual({ a: -0.3 })
    expect(run({ paths: ['a'], step: 0.01 }, { a: 1.005 })).toEqual({ a: 1.01 })
    expect(run({ paths: ['a'], step: 0.25 }, { a: 0.374 })).toEqual({ a: 0.25 })
    expect(run({ paths: ['a'], step: 5 }, { a: 72.5 })).toEqual({ a: 75 })
    expect(run({ paths: ['a'], step: 1e-7 }, { a: 1.23456789e-5 })).toEqual({ a: 0.0000123 })
    expect(run({ paths: ['a'], step: 0.1 }, { a: -0.01 })).toEqual({ a: 0 })
    expect(Object.is((run({ paths: ['a'], step: 0.1 }, { a: -0.01 }) as { a: number }).a, 0)).toBe(true)
  })

  it('rounds arrays element-wise and removes arrays with a non-number', () => {
    expect(run({ paths: ['ENERGY.Power'], step: 1 }, { ENERGY: { Power: [12.4, 13.6] } })).toEqual({
      ENERGY: { Power: [12, 14] },
    })
    expect(run({ paths: ['ENERGY.Power'], step: 1 }, { ENERGY: { Power: [12.4, '13'] } })).toEqual({ ENERGY: {} })
  })

  it('fails closed: non-numbers are removed, absent fields stay absent', () => {
    for (const bad of ['0.91', null, true, { v: 1 }, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(run({ paths: ['top_score'], step: 0.1 }, { top_score: bad, label: 'person' })).toEqual({ label: 'person' })
    }
    expect(run({ paths: ['top_score'], step: 0.1 }, { label: 'person' })).toEqual({ label: 'person' })
  })

  it('handles several paths, array paths and a scalar payload', () => {
    expect(run({ paths: ['a', 'b.c'], step: 0.1 }, { a: 1.04, b: { c: 2.06 } })).toEqual({ a: 1, b: { c: 2.1 } })
    expect(run({ paths: ['items[].v'], step: 1 }, { items: [{ v: 1.6 }, { v: 'x' }] })).toEqual({
      items: [{ v: 2 }, {}],
    })
    expect(run({ paths: ['$'], step: 10 }, 87)).toBe(90)
    expect(run({ paths: ['$'], step: 10 }, 'ON')).toBe(SUPPRESS)
  })

  it('refuses bad settings at load', () => {
    expect(() => round.compile({ paths: ['a'], step: 0 }, env)).toThrow(/step/)
    expect(() => round.compile({ paths: [], step: 1 }, env)).toThrow(/paths/)
    expect(() => round.compile({ paths: ['a.__proto__'], step: 1 }, env)).toThrow(/not allowed/)
    expect(() => round.compile({ paths: ['$', 'a'], step: 1 }, env)).toThrow(/\$/)
  })

  it('property: output is a multiple of the step, within step/2, and prints with no more decimals than the step', () => {
    const steps = [0.1, 0.01, 0.5, 0.25, 1, 5, 10, 0.001]
    fc.assert(
      fc.property(fc.constantFrom(...steps), fc.double({ min: -1e6, max: 1e6, noNaN: true }), (step, x) => {
        const parsed = parseStep(step)
        const out = roundToStep(x, parsed)
        expect(Math.abs(out - x)).toBeLessThanOrEqual(step / 2 + 1e-9 * Math.max(1, Math.abs(x)))
        expect(printedDecimals(out)).toBeLessThanOrEqual(parsed.decimals)
        const units = out / step
        expect(Math.abs(units - Math.round(units))).toBeLessThan(1e-6)
        const floored = floorToStep(x, parsed)
        expect(floored).toBeLessThanOrEqual(x + 1e-9 * Math.max(1, Math.abs(x)))
        expect(x - floored).toBeLessThan(step + 1e-9 * Math.max(1, Math.abs(x)))
        expect(printedDecimals(floored)).toBeLessThanOrEqual(parsed.decimals)
      }),
      { seed: 42, numRuns: 2000 },
    )
  })

  it('keeps numbers past 2^53 steps finite instead of NaN or Infinity (found by fuzzing)', () => {
    // 1e308 / 0.1 overflowed: round gave NaN (forwarded as null), a floor of Number.MAX_VALUE to 86400 Infinity.
    for (const step of [0.1, 10, 86_400, 0.001]) {
      const p = parseStep(step)
      for (const x of [1e308, -1e308, Number.MAX_VALUE, -Number.MAX_VALUE, 1.5e308, 2 ** 53 * step * 2]) {
        expect(roundToStep(x, p)).toBe(x)
        expect(floorToStep(x, p)).toBe(x)
      }
    }
    expect(run({ paths: ['bmi'], step: 0.1 }, { bmi: -1e308 })).toEqual({ bmi: -1e308 })
    // Below the resolution limit nothing changes: 2^53 steps of 10 still round.
    expect(roundToStep(9007199254740994, parseStep(10))).toBe(9007199254740990)
    expect(Number.isNaN(roundToStep(Number.NaN, parseStep(0.1)))).toBe(true)
  })

  it('property: the fast path agrees with the exact decimal shift, also on decimal halves and boundaries', () => {
    const reference = (x: number, step: number, mode: 'round' | 'floor'): number => {
      const p = parseStep(step)
      const units = shiftDecimal(x, p.decimals) / p.mantissa
      let k = mode === 'floor' ? Math.floor(units) : Math.sign(units) * Math.round(Math.abs(units))
      let out = shiftDecimal(k * p.mantissa, -p.decimals)
      // A floor never exceeds its input (the division may round up, or underflow to -0 for a denormal).
      if (mode === 'floor' && out > x) out = shiftDecimal(--k * p.mantissa, -p.decimals)
      return out === 0 ? 0 : out
    }
    // Short decimals such as 0.29, 1.005 or 2.675 sit exactly on boundaries in decimal, not in binary.
    const shortDecimal = fc
      .tuple(fc.integer({ min: -10_000_000, max: 10_000_000 }), fc.integer({ min: 0, max: 4 }))
      .map(([n, d]) => shiftDecimal(n, -d))
    fc.assert(
      fc.property(
        fc.constantFrom(0.1, 0.01, 0.001, 0.5, 0.25, 0.3, 1, 5, 10),
        fc.oneof(shortDecimal, fc.double({ min: -1e9, max: 1e9, noNaN: true })),
        (step, x) => {
          const p = parseStep(step)
          expect(roundToStep(x, p)).toBe(reference(x, step, 'round'))
          expect(floorToStep(x, p)).toBe(reference(x, step, 'floor'))
        },
      ),
      { seed: 42, numRuns: 5000 },
    )
    expect(floorToStep(0.29, parseStep(0.01))).toBe(0.29)
    expect(roundToStep(2.675, parseStep(0.01))).toBe(2.68)
  })
})
