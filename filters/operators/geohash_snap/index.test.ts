import { Ajv } from 'ajv'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import geohashSnap, { geohashCell, geohashDecode, geohashEncode } from './index.ts'

const ctx = opContext()
const snapper = (config: Record<string, unknown> = {}) => compileOperator(geohashSnap, config, compileEnv())
type Fix = { lat: number; lon: number; [key: string]: unknown }
const snap = (run: ReturnType<typeof snapper>, lat: number, lon: number): Fix => run({ lat, lon }, ctx) as Fix

/** Independent oracle: the textbook bisection encoder. */
function referenceCell(
  lat: number,
  lon: number,
  precision: number,
): { hash: string; minLat: number; maxLat: number; minLon: number; maxLon: number } {
  const alphabet = '0123456789bcdefghjkmnpqrstuvwxyz'
  let [minLat, maxLat, minLon, maxLon] = [-90, 90, -180, 180]
  let hash = ''
  let bit = 0
  let value = 0
  for (let i = 0; i < precision * 5; i++) {
    if (i % 2 === 0) {
      const mid = (minLon + maxLon) / 2
      if (lon >= mid) {
        value = value * 2 + 1
        minLon = mid
      } else {
        value *= 2
        maxLon = mid
      }
    } else {
      const mid = (minLat + maxLat) / 2
      if (lat >= mid) {
        value = value * 2 + 1
        minLat = mid
      } else {
        value *= 2
        maxLat = mid
      }
    }
    if (++bit === 5) {
      hash += alphabet[value]
      bit = 0
      value = 0
    }
  }
  return { hash, minLat, maxLat, minLon, maxLon }
}

const R = 6_371_008.8
function haversine(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = Math.PI / 180
  const a =
    Math.sin(((lat2 - lat1) * rad) / 2) ** 2 +
    Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(((lon2 - lon1) * rad) / 2) ** 2
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(a)))
}

const latArb = fc.double({ min: -90, max: 90, noNaN: true })
const lonArb = fc.double({ min: -180, max: 180, noNaN: true })
// Bisection and direct indexing agree except on the last ulp of a cell edge, so the oracle tests stay off the edges.
const inside = fc.double({ min: 0.001, max: 0.999, noNaN: true })

describe('geohash_snap', () => {
  it('encodes and decodes the published examples', () => {
    expect(geohashEncode(57.64911, 10.40744, 11)).toBe('u4pruydqqvj')
    expect(geohashEncode(42.605, -5.603, 5)).toBe('ezs42')
    const cell = geohashDecode('ezs42')
    expect(cell.lat).toBeCloseTo(42.605, 2)
    expect(cell.lon).toBeCloseTo(-5.603, 2)
    expect(() => geohashDecode('ezs4a')).toThrow(/not a geohash character/)
  })

  it('has the documented cell sizes (p5 4.89 km, p6 1.22 × 0.61 km, p7 153 m, p8 38.2 × 19.1 m at the equator)', () => {
    const size = (p: number) => {
      const c = geohashCell(0.0001, 0.0001, p)
      return [haversine(c.minLat, c.minLon, c.minLat, c.maxLon), haversine(c.minLat, c.minLon, c.maxLat, c.minLon)]
    }
    // The published sizes use the WGS84 equatorial radius (6378 km) and we the mean radius: 0.2% apart.
    const near = (value: number | undefined, expected: number) =>
      expect(Math.abs((value ?? 0) / expected - 1)).toBeLessThan(0.003)
    near(size(5)[0], 4892)
    near(size(6)[0], 1223)
    near(size(6)[1], 611)
    near(size(7)[0], 153)
    near(size(8)[0], 38.2)
    near(size(8)[1], 19.1)
  })

  it('replaces lat/lon with the centre of the p6 cell by default and emits the hash on request', () => {
    const out = snapper({ emit: 'geohash' })({ _type: 'location', lat: 57.64911, lon: 10.40744, batt: 80 }, ctx) as Fix
    const cell = geohashDecode('u4pruy')
    expect(out).toEqual({ _type: 'location', lat: cell.lat, lon: cell.lon, batt: 80, geohash: 'u4pruy' })
  })

  it('follows configured paths', () => {
    const out = snapper({ lat: 'pos.la', lon: 'pos.lo', precision: 4 })({ pos: { la: 57.64911, lo: 10.40744 } }, ctx)
    const cell = geohashDecode('u4pr')
    expect(out).toEqual({ pos: { la: cell.lat, lo: cell.lon } })
  })

  it('fails closed: coordinates it cannot snap are removed, never passed through', () => {
    const run = snapper({ emit: 'gh' })
    expect(run({ lat: '57.6', lon: 10.4, gh: 'u4pruydqqvj' }, ctx)).toEqual({})
    expect(run({ lat: Number.NaN, lon: 10.4 }, ctx)).toEqual({})
    expect(run({ lat: 91, lon: 10.4, x: 1 }, ctx)).toEqual({ x: 1 })
    expect(run({ lat: 57.6, lon: 181 }, ctx)).toEqual({})
    expect(run({ lat: 57.6 }, ctx)).toEqual({})
    expect(run({ lon: 10.4 }, ctx)).toEqual({})
    expect(run({ batt: 5, gh: 'u4pruydqqvj' }, ctx)).toEqual({ batt: 5 })
    expect(() => run('57.6,10.4', ctx)).toThrow(/JSON object/)
  })

  it('handles the edges of the world', () => {
    const run = snapper({ precision: 1 })
    expect(snap(run, 90, 180)).toEqual({ lat: 67.5, lon: 157.5 })
    expect(snap(run, -90, -180)).toEqual({ lat: -67.5, lon: -157.5 })
    expect(snap(run, 0, 0)).toEqual({ lat: 22.5, lon: 22.5 })
  })

  it('validates its configuration', () => {
    const validate = new Ajv({ allErrors: true, strict: false }).compile(geohashSnap.configSchema)
    expect(validate({})).toBe(true)
    expect(validate({ precision: 12, lat: 'a', lon: 'b', emit: 'c' })).toBe(true)
    expect(validate({ precision: 0 })).toBe(false)
    expect(validate({ precision: 13 })).toBe(false)
    expect(validate({ precision: 6.5 })).toBe(false)
    expect(validate({ radius: 1 })).toBe(false)
    expect(() => snapper({ lat: 'a', lon: 'a' })).toThrow(/different/)
    expect(() => snapper({ emit: 'lat' })).toThrow(/emit/)
    expect(() => snapper({ lat: '__proto__.x' })).toThrow(/not allowed/)
  })

  it('P4: every output is the centre of the cell of its input, and a cell centre (snapping is idempotent)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), latArb, lonArb, (p, lat, lon) => {
        const run = snapper({ precision: p, emit: 'gh' })
        const out = run({ lat, lon }, ctx) as Fix & { gh: string }
        expect(out.gh).toBe(geohashEncode(lat, lon, p))
        const cell = geohashDecode(out.gh)
        expect([out.lat, out.lon]).toEqual([cell.lat, cell.lon])
        expect(out.lat).toBeGreaterThanOrEqual(cell.minLat)
        expect(out.lat).toBeLessThan(cell.maxLat)
        expect(out.lon).toBeGreaterThanOrEqual(cell.minLon)
        expect(out.lon).toBeLessThan(cell.maxLon)
        expect(snap(run, out.lat, out.lon)).toEqual({ lat: out.lat, lon: out.lon, gh: out.gh })
      }),
      { seed: 42, numRuns: 2000 },
    )
  })

  it('P4: agrees with the bisection encoder (hash and centre) inside every cell', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), latArb, lonArb, inside, inside, (p, lat0, lon0, fy, fx) => {
        const c0 = referenceCell(lat0, lon0, p)
        const lat = c0.minLat + fy * (c0.maxLat - c0.minLat)
        const lon = c0.minLon + fx * (c0.maxLon - c0.minLon)
        const ref = referenceCell(lat, lon, p)
        expect(geohashEncode(lat, lon, p)).toBe(ref.hash)
        const out = snap(snapper({ precision: p }), lat, lon)
        expect(out.lat).toBeCloseTo((ref.minLat + ref.maxLat) / 2, 9)
        expect(out.lon).toBeCloseTo((ref.minLon + ref.maxLon) / 2, 9)
      }),
      { seed: 42, numRuns: 2000 },
    )
  })

  it('P4: inputs in the same cell give identical output', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        latArb,
        lonArb,
        inside,
        inside,
        inside,
        inside,
        (p, lat, lon, a, b, c, d) => {
          const cell = referenceCell(lat, lon, p)
          const run = snapper({ precision: p })
          const h = cell.maxLat - cell.minLat
          const w = cell.maxLon - cell.minLon
          const first = snap(run, cell.minLat + a * h, cell.minLon + b * w)
          const second = snap(run, cell.minLat + c * h, cell.minLon + d * w)
          expect(second).toEqual(first)
        },
      ),
      { seed: 42, numRuns: 2000 },
    )
  })

  it('P4: the error is at most the half-diagonal of the cell, computed at the latitude of the input', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), latArb, lonArb, (p, lat, lon) => {
        const out = snap(snapper({ precision: p }), lat, lon)
        const cell = geohashCell(lat, lon, p)
        const error = haversine(lat, lon, out.lat, out.lon)
        // On the sphere the farthest point of a cell from its centre is a corner.
        const corners = [cell.minLat, cell.maxLat].flatMap((y) =>
          [cell.minLon, cell.maxLon].map((x) => haversine(out.lat, out.lon, y, x)),
        )
        expect(error).toBeLessThanOrEqual(Math.max(...corners) * (1 + 1e-9) + 1e-6)
        if (p >= 5) {
          // Planar half-diagonal with the width taken at the cell's edge nearest the equator (the widest).
          const mPerDeg = (Math.PI / 180) * R
          const widest = Math.cos(
            (Math.min(Math.abs(cell.minLat), Math.abs(cell.maxLat)) *
              (cell.minLat < 0 && cell.maxLat > 0 ? 0 : 1) *
              Math.PI) /
              180,
          )
          const bound = Math.hypot(
            ((cell.maxLat - cell.minLat) * mPerDeg) / 2,
            ((cell.maxLon - cell.minLon) * mPerDeg * widest) / 2,
          )
          expect(error).toBeLessThanOrEqual(bound * 1.001)
        }
      }),
      { seed: 42, numRuns: 3000 },
    )
  })

  it('P4: at p6 on the equator the worst error is ≈ 683 m and shrinks with cos(latitude)', () => {
    const run = snapper()
    let worst = 0
    let worst60 = 0
    for (let i = 0; i < 20_000; i++) {
      const u = i / 20_000
      const lat = 0.0055 * u
      const lon = 0.011 * ((i * 0.618034) % 1)
      const out = snap(run, lat, lon)
      worst = Math.max(worst, haversine(lat, lon, out.lat, out.lon))
      const out60 = snap(run, 60 + lat, lon)
      worst60 = Math.max(worst60, haversine(60 + lat, lon, out60.lat, out60.lon))
    }
    expect(worst).toBeGreaterThan(670)
    expect(worst).toBeLessThanOrEqual(683.5)
    // At 60° the cell is half as wide: half-diagonal ≈ hypot(305, 305) ≈ 432 m.
    expect(worst60).toBeGreaterThan(420)
    expect(worst60).toBeLessThanOrEqual(433)
  })
})
