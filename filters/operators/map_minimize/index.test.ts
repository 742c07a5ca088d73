import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compileAllowlist, NOTHING } from '../../../gateway/src/policy/allow/index.ts'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import mapMinimize from './index.ts'

const FIXTURES = join(import.meta.dirname, '../../../test/fixtures/valetudo')
/** The allowlist the README prescribes: the operator sees only what it needs to measure. */
const ALLOW = [
  'pixelSize',
  'layers[].type',
  'layers[].metaData.area',
  'layers[].dimensions.pixelCount',
  'layers[].compressedPixels',
  'layers[].pixels',
]

const env = compileEnv({ category: 'robot_vacuum' })
const ctx = opContext({ category: 'robot_vacuum' })
const compile = (config: unknown = {}) => {
  const run = compileOperator(mapMinimize, config, env)
  return (doc: unknown) => run(doc, ctx)
}
const allow = compileAllowlist(ALLOW)
const pipeline = (doc: unknown) => {
  const projected = allow(doc)
  if (projected === NOTHING) throw new Error('allowlist kept nothing')
  return compile()(projected)
}

interface Layer {
  type: string
  metaData?: { area?: number; name?: string; segmentId?: string }
  dimensions?: { pixelCount?: number }
  compressedPixels?: number[]
  pixels?: number[]
}
interface ValetudoMap {
  __class: string
  metaData: { totalLayerArea?: number }
  pixelSize: number
  layers: Layer[]
}

const maps = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .map((f) => [f, JSON.parse(readFileSync(join(FIXTURES, f), 'utf8')) as { __class: string }] as const)
  .filter(([, doc]) => doc.__class === 'ValetudoMap') as unknown as [string, ValetudoMap][]

/** Every string value in a document (room names, ids, classes). */
function strings(value: unknown, out: Set<string>): Set<string> {
  if (typeof value === 'string') out.add(value)
  else if (Array.isArray(value)) for (const v of value) strings(v, out)
  else if (typeof value === 'object' && value !== null) for (const v of Object.values(value)) strings(v, out)
  return out
}

describe('map_minimize on the Valetudo fixtures', () => {
  it('has the fixtures', () => {
    expect(maps.length).toBeGreaterThanOrEqual(27)
  })

  it.each(maps)('%s → exactly {floor_m2}, plausible against totalLayerArea, no input string', (_name, map) => {
    const out = pipeline(structuredClone(map)) as Record<string, unknown>
    expect(Object.keys(out).sort()).toEqual(['floor_m2'])
    expect(typeof out.floor_m2).toBe('number')
    expect((out.floor_m2 as number) % 5).toBe(0)
    const total = map.metaData.totalLayerArea
    if (total !== undefined) {
      const walls = map.layers.filter((l) => l.type === 'wall').reduce((s, l) => s + (l.metaData?.area ?? 0), 0)
      // Floor and segments are disjoint and together with the walls make up the whole map.
      expect(Math.abs((out.floor_m2 as number) - (total - walls) / 10_000)).toBeLessThanOrEqual(2.5)
      expect(out.floor_m2 as number).toBeLessThanOrEqual(total / 10_000 + 2.5)
    }
    const text = JSON.stringify(out)
    const vocabulary = new Set(['floor', 'segment', 'wall'])
    for (const s of strings(map, new Set())) {
      if (s.length >= 3 && !/^\d+$/.test(s) && !vocabulary.has(s)) expect(text.includes(s), s).toBe(false)
    }
  })

  it('drops the German room names of the custom-named map', () => {
    const map =
      maps.find(([f]) => f === 'dreame_d9_1058_with_custom_named_segments.json')?.[1] ??
      maps.find(([f]) => f === 'dreame_z10_1056_paths.json')?.[1]
    expect(map).toBeDefined()
    const names = map!.layers.map((l) => l.metaData?.name).filter((n): n is string => typeof n === 'string')
    expect(names.length).toBeGreaterThan(0)
    const text = JSON.stringify(pipeline(structuredClone(map)))
    for (const n of names) expect(text).not.toContain(n)
    const all = maps
      .flatMap(([, m]) => m.layers.map((l) => l.metaData?.name))
      .filter((n): n is string => typeof n === 'string')
    expect(all).toContain('Schlafzimmer')
  })

  it('summing floor and segments stays within one step of the exact pixel union on every fixture', () => {
    for (const [name, map] of maps) {
      const union = new Set<number>()
      for (const l of map.layers)
        if (l.type === 'floor' || l.type === 'segment') runs(l.compressedPixels ?? [], (p) => union.add(p))
      const exactM2 = (union.size * map.pixelSize * map.pixelSize) / 10_000
      const out = pipeline(structuredClone(map)) as { floor_m2: number }
      expect(Math.abs(out.floor_m2 - exactM2), name).toBeLessThanOrEqual(5)
    }
  })

  it('gives the same area from metaData.area, pixelCount, compressedPixels and legacy pixels', () => {
    for (const [name, map] of maps) {
      const expected = pipeline(structuredClone(map))
      const withoutArea = structuredClone(map)
      for (const l of withoutArea.layers) delete l.metaData
      expect(pipeline(structuredClone(withoutArea)), name).toEqual(expected)
      for (const l of withoutArea.layers) delete l.dimensions
      expect(pipeline(structuredClone(withoutArea)), name).toEqual(expected)
      // Legacy: expand the runs into plain [x, y] pairs.
      for (const l of withoutArea.layers) {
        const pixels: number[] = []
        const cp = l.compressedPixels ?? []
        for (let i = 0; i < cp.length; i += 3)
          for (let k = 0; k < (cp[i + 2] as number); k++) pixels.push((cp[i] as number) + k, cp[i + 1] as number)
        l.pixels = pixels
        delete l.compressedPixels
      }
      expect(pipeline(withoutArea), name).toEqual(expected)
    }
  })

  it('processes the largest fixture, dreame_l10su_3031_giant.json, quickly', () => {
    const giant = maps.find(([f]) => f === 'dreame_l10su_3031_giant.json')?.[1]
    expect(giant).toBeDefined()
    const run = compile()
    const projected = allow(structuredClone(giant))
    const rounds = 50
    let t0 = performance.now()
    for (let i = 0; i < rounds; i++) run(projected)
    const opMs = (performance.now() - t0) / rounds
    t0 = performance.now()
    for (let i = 0; i < rounds; i++) pipeline(giant)
    const withAllowMs = (performance.now() - t0) / rounds
    console.log(
      `giant map (8.47 M cm², 338 947 px): map_minimize ${(opMs * 1000).toFixed(1)} µs; allowlist + map_minimize ${withAllowMs.toFixed(2)} ms`,
    )
    expect(run(projected)).toEqual({ floor_m2: 810 })
    expect(withAllowMs).toBeLessThan(50)
  })
})

function runs(cp: readonly number[], each: (pixel: number) => void): void {
  for (let i = 0; i < cp.length; i += 3) {
    const x = cp[i] as number
    const y = cp[i + 1] as number
    for (let k = 0; k < (cp[i + 2] as number); k++) each((y << 16) | (x + k))
  }
}

describe('map_minimize rules', () => {
  it('rounds to area_step_m2 (default 5 m²)', () => {
    const map = (cm2: number) => ({ pixelSize: 5, layers: [{ type: 'floor', metaData: { area: cm2 } }] })
    expect(compile()(map(123_456))).toEqual({ floor_m2: 10 })
    expect(compile()(map(124_999))).toEqual({ floor_m2: 10 })
    expect(compile()(map(125_001))).toEqual({ floor_m2: 15 })
    expect(compile({ area_step_m2: 1 })(map(123_456))).toEqual({ floor_m2: 12 })
    expect(compile({ area_step_m2: 0.1 })(map(30_000))).toEqual({ floor_m2: 3 })
    expect(compile({ area_step_m2: 0.1 })(map(31_000))).toEqual({ floor_m2: 3.1 })
  })

  it('refuses areas that add up past Number.MAX_VALUE instead of an Infinity area', () => {
    const huge = {
      pixelSize: 5,
      layers: [
        { type: 'floor', metaData: { area: 1.7e308 } },
        { type: 'segment', metaData: { area: 1.7e308 } },
      ],
    }
    expect(() => compile()(huge)).toThrow(/out of range/)
  })

  it('no segment count: one floor split into 1 or 9 rooms gives the same output', () => {
    const rooms = (n: number) => ({
      pixelSize: 5,
      layers: Array.from({ length: n }, () => ({ type: 'segment', metaData: { area: Math.floor(900_000 / n) } })),
    })
    expect(compile()(rooms(1))).toEqual(compile()(rooms(9)))
    expect(compile()(rooms(1))).toEqual({ floor_m2: 90 })
  })

  it('counts floor and segments, not walls or unknown layer types', () => {
    const doc = {
      pixelSize: 5,
      layers: [
        { type: 'floor', metaData: { area: 100_000 } },
        { type: 'segment', metaData: { area: 200_000 } },
        { type: 'segment', metaData: { area: 200_000 } },
        { type: 'wall', metaData: { area: 900_000 } },
        { type: 'carpet', metaData: { area: 900_000 } },
      ],
    }
    expect(compile()(doc)).toEqual({ floor_m2: 50 })
  })

  it('accepts an empty map', () => {
    expect(compile()({ layers: [] })).toEqual({ floor_m2: 0 })
  })

  it('rejects what is not a Valetudo map', () => {
    const run = compile()
    for (const bad of [
      null,
      'map',
      42,
      [],
      {},
      { layers: {} },
      { layers: [null] },
      { layers: [{ type: 1 }] },
      Buffer.from([0x78, 0x9c]),
    ]) {
      expect(() => run(bad), JSON.stringify(bad)).toThrow(/map_minimize/)
    }
    expect(() => run({ layers: [{ type: 'floor' }] })).toThrow(/no area/)
    expect(() => run({ layers: [{ type: 'floor', metaData: { area: -1 } }] })).toThrow(/not an area/)
    expect(() => run({ layers: [{ type: 'floor', metaData: { area: '5' } }] })).toThrow(/not an area/)
    expect(() => run({ layers: [{ type: 'floor', dimensions: { pixelCount: 4 } }] })).toThrow(/pixelSize/)
    expect(() => run({ pixelSize: 0, layers: [] })).toThrow(/pixelSize/)
    expect(() => run({ pixelSize: 5, layers: [{ type: 'floor', compressedPixels: [1, 2] }] })).toThrow(/triples/)
    expect(() => run({ pixelSize: 5, layers: [{ type: 'floor', compressedPixels: [1, 2, 'x'] }] })).toThrow(
      /run length/,
    )
    expect(() => run({ pixelSize: 5, layers: [{ type: 'floor', pixels: [1, 2, 3] }] })).toThrow(/pairs/)
  })

  it('refuses a bad step at compile time', () => {
    expect(() => compile({ area_step_m2: 0 })).toThrow(/area_step_m2/)
    expect(() => compile({ area_step_m2: 'x' })).toThrow(/area_step_m2/)
  })

  it('P13: output has only floor_m2, a number, no arrays, whatever the map', () => {
    const layer = fc.record(
      {
        type: fc.constantFrom('floor', 'segment', 'wall'),
        metaData: fc.record(
          { area: fc.nat({ max: 10_000_000 }), name: fc.string(), segmentId: fc.string(), material: fc.string() },
          { requiredKeys: [] },
        ),
        dimensions: fc.record({ pixelCount: fc.nat({ max: 400_000 }) }, { requiredKeys: [] }),
        compressedPixels: fc
          .array(fc.tuple(fc.nat(2000), fc.nat(2000), fc.nat(500)), { maxLength: 30 })
          .map((t) => t.flat()),
        pixels: fc.array(fc.tuple(fc.nat(2000), fc.nat(2000)), { maxLength: 30 }).map((t) => t.flat()),
        extra: fc.jsonValue(),
      },
      { requiredKeys: ['type', 'compressedPixels'] },
    )
    const map = fc.record({
      __class: fc.constant('ValetudoMap'),
      metaData: fc.record({ version: fc.constant(2), nonce: fc.uuid(), totalLayerArea: fc.nat() }),
      size: fc.record({ x: fc.nat(), y: fc.nat() }),
      pixelSize: fc.integer({ min: 1, max: 10 }),
      layers: fc.array(layer, { maxLength: 12 }),
      entities: fc.array(
        fc.record({
          type: fc.constantFrom('path', 'robot_position', 'obstacle'),
          points: fc.array(fc.nat()),
          metaData: fc.record({ image: fc.string() }),
        }),
        { maxLength: 4 },
      ),
    })
    const run = compile()
    fc.assert(
      fc.property(map, fc.boolean(), (doc, allowFirst) => {
        const input = allowFirst ? allow(structuredClone(doc)) : structuredClone(doc)
        const out = run(input) as Record<string, unknown>
        expect(Object.keys(out).sort()).toEqual(['floor_m2'])
        for (const v of Object.values(out)) {
          expect(Array.isArray(v)).toBe(false)
          expect(typeof v).toBe('number')
          expect(Number.isFinite(v)).toBe(true)
        }
      }),
      { seed: 42, numRuns: 300 },
    )
  })
})
