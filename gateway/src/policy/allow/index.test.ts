import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compileAllowlist, NOTHING } from './index.ts'

describe('allow', () => {
  it('keeps only the listed leaves', () => {
    const project = compileAllowlist(['ENERGY.Total', 'ENERGY.Today', 'Time'])
    const out = project({ Time: 't', ENERGY: { Total: 1, Today: 2, Power: 40, Voltage: 230 }, Wifi: { SSId: 'home' } })
    expect(out).toEqual({ Time: 't', ENERGY: { Total: 1, Today: 2 } })
  })

  it('fails closed: an empty list keeps nothing', () => {
    expect(compileAllowlist([])({ a: 1 })).toBe(NOTHING)
  })

  it('keeps nothing when a listed path ends at an object (list its leaves instead)', () => {
    expect(compileAllowlist(['Wifi'])({ Wifi: { SSId: 'home', BSSId: 'aa:bb' } })).toBe(NOTHING)
  })

  it('keeps arrays of scalars as copies and projects arrays of objects element-wise', () => {
    const project = compileAllowlist(['zones', 'layers[].type'])
    const zones = ['a', 'b']
    const out = project({
      zones,
      layers: [
        { type: 'floor', pixels: [1, 2] },
        { type: 'wall', name: 'x' },
      ],
    }) as Record<string, unknown>
    expect(out).toEqual({ zones: ['a', 'b'], layers: [{ type: 'floor' }, { type: 'wall' }] })
    expect(out.zones).not.toBe(zones)
    expect(project({ zones: [{ name: 'kitchen' }] })).toBe(NOTHING)
  })

  it('keeps a scalar payload only with $', () => {
    expect(compileAllowlist(['$'])('ON')).toBe('ON')
    expect(compileAllowlist(['$'])(85)).toBe(85)
    expect(compileAllowlist(['$'])({ a: 1 })).toBe(NOTHING)
    expect(compileAllowlist(['a'])('ON')).toBe(NOTHING)
  })

  it('follows keys with a colon (Shelly gen2 components such as switch:0) like any other key', () => {
    const project = compileAllowlist(['params.switch:0.aenergy.total'])
    const frame = {
      src: 'shellyplusplugs-e86beaeaa000',
      params: {
        ts: 1,
        'switch:0': { apower: 36.7, aenergy: { total: 499599.717, by_minute: [1, 2, 3] } },
        'switch:1': { aenergy: { total: 5 } },
      },
    }
    expect(project(frame)).toEqual({ params: { 'switch:0': { aenergy: { total: 499599.717 } } } })
    expect(project({ params: { switch: { 0: { aenergy: { total: 1 } } } } })).toBe(NOTHING)
  })

  it('never follows inherited properties and refuses prototype keys', () => {
    const project = compileAllowlist(['toString', 'a.b'])
    expect(project(JSON.parse('{"a":{"__proto__":{"b":1}}}'))).toBe(NOTHING)
    expect(() => compileAllowlist(['__proto__.polluted'])).toThrow(/not allowed/)
    expect(() => compileAllowlist(['a.constructor'])).toThrow(/not allowed/)
  })

  it('P3: a field added to any payload never appears in the output', () => {
    const project = compileAllowlist(['ENERGY.Total', 'after.label', 'list', 'items[].id'])
    const key = fc
      .string({ minLength: 1, maxLength: 12 })
      .filter((k) => !['ENERGY', 'Total', 'after', 'label', 'list', 'items', 'id'].includes(k))
    fc.assert(
      fc.property(fc.jsonValue(), key, fc.jsonValue(), (base, extraKey, extraValue) => {
        const canary = `CANARY-${extraKey}`
        const doc = {
          ...(typeof base === 'object' && base !== null && !Array.isArray(base) ? base : {}),
          [extraKey]: canary,
        }
        const nested = {
          ENERGY: { Total: 1, [extraKey]: canary },
          after: { label: 'x', [extraKey]: canary },
          items: [{ id: 1, [extraKey]: canary }],
          [extraKey]: extraValue,
        }
        for (const input of [doc, nested]) {
          const out = project(input)
          const text = out === NOTHING ? '' : JSON.stringify(out)
          expect(text.includes(canary)).toBe(false)
        }
      }),
      { numRuns: 300 },
    )
  })

  it('outputs only listed paths for any generated input (property)', () => {
    const paths = ['a.b', 'c', 'd[].e']
    const project = compileAllowlist(paths)
    const allowedPaths = new Set(['a', 'a.b', 'c', 'd', 'd.e'])
    const collect = (value: unknown, prefix: string, out: string[]): void => {
      if (Array.isArray(value)) for (const v of value) collect(v, prefix, out)
      else if (typeof value === 'object' && value !== null) {
        for (const [k, v] of Object.entries(value)) {
          const path = prefix === '' ? k : `${prefix}.${k}`
          out.push(path)
          collect(v, path, out)
        }
      }
    }
    fc.assert(
      fc.property(fc.object({ key: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'x'), maxDepth: 4 }), (doc) => {
        const out = project(doc)
        if (out === NOTHING) return
        const seen: string[] = []
        collect(out, '', seen)
        for (const path of seen) expect(allowedPaths.has(path)).toBe(true)
      }),
      { numRuns: 500 },
    )
  })
})
