import { Ajv } from 'ajv'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Keyring } from '../../../gateway/src/keys/keyring.ts'
import { SUPPRESS } from '#veil/sdk'
import { compileEnv, compileOperator, compileUnchecked, opContext, seededRandom } from '../testing.ts'
import privacyZone, { deriveZone } from './index.ts'
import type { ZoneConfig } from './index.ts'

const R = 6_371_008.8
const RAD = Math.PI / 180
const HOME: ZoneConfig = { lat: 52.52, lon: 13.405, name: 'home' }
const DEFAULTS = { minRadiusM: 400, extraRadiusM: 200, maxOffsetM: 150 }
const ctx = opContext()
const keyring = compileEnv().keyring

function haversine(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const a =
    Math.sin(((lat2 - lat1) * RAD) / 2) ** 2 +
    Math.cos(lat1 * RAD) * Math.cos(lat2 * RAD) * Math.sin(((lon2 - lon1) * RAD) / 2) ** 2
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(a)))
}

/** The point at `distance` metres and `bearing` radians from (lat, lon) on the sphere (independent of the operator). */
function move(lat: number, lon: number, bearing: number, distance: number): [number, number] {
  const d = distance / R
  const p1 = lat * RAD
  const p2 = Math.asin(Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(bearing))
  const l2 =
    lon * RAD + Math.atan2(Math.sin(bearing) * Math.sin(d) * Math.cos(p1), Math.cos(d) - Math.sin(p1) * Math.sin(p2))
  return [p2 / RAD, ((((l2 / RAD + 180) % 360) + 360) % 360) - 180]
}

type Run = ReturnType<typeof privacyZone.compile>
const compile = (config: Record<string, unknown>, env = compileEnv()): Run => compileOperator(privacyZone, config, env)
const forwards = (run: Run, lat: number, lon: number) => run({ lat, lon }, ctx) !== SUPPRESS

/** Kåsa's algebraic circle fit in a local metric plane around (lat0, lon0); returns the fitted centre in degrees. */
function fitCircle(
  points: readonly [number, number][],
  lat0: number,
  lon0: number,
): { lat: number; lon: number; radius: number } {
  const kx = R * RAD * Math.cos(lat0 * RAD)
  const ky = R * RAD
  // Normal equations of x² + y² + D·x + E·y + F = 0.
  const m = [
    [0, 0, 0],
    [0, 0, 0],
    [0, 0, 0],
  ]
  const v = [0, 0, 0]
  for (const [lat, lon] of points) {
    const x = (lon - lon0) * kx
    const y = (lat - lat0) * ky
    const row = [x, y, 1]
    const rhs = -(x * x + y * y)
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) (m[i] as number[])[j] = ((m[i] as number[])[j] ?? 0) + (row[i] ?? 0) * (row[j] ?? 0)
      v[i] = (v[i] ?? 0) + (row[i] ?? 0) * rhs
    }
  }
  const det = (a: number[][]) =>
    a[0]![0]! * (a[1]![1]! * a[2]![2]! - a[1]![2]! * a[2]![1]!) -
    a[0]![1]! * (a[1]![0]! * a[2]![2]! - a[1]![2]! * a[2]![0]!) +
    a[0]![2]! * (a[1]![0]! * a[2]![1]! - a[1]![1]! * a[2]![0]!)
  const d0 = det(m)
  const solve = (col: number) => det(m.map((row, i) => row.map((value, j) => (j === col ? v[i]! : value)))) / d0
  const [D, E, F] = [solve(0), solve(1), solve(2)]
  const cx = -D / 2
  const cy = -E / 2
  return { lat: lat0 + cy / ky, lon: lon0 + cx / kx, radius: Math.sqrt(cx * cx + cy * cy - F) }
}

/**
 * A5: trips that start 3 km away on a random bearing and walk straight to the true centre in 20 m steps (then leave
 * again on another bearing). The attacker sees the forwarded fixes only and keeps the last one before each gap and
 * the first one after it: the points where the zone's boundary cut the trip.
 */
function tripEndpoints(run: Run, zone: ZoneConfig, trips: number, seed: number): [number, number][] {
  const random = seededRandom(seed)
  const endpoints: [number, number][] = []
  for (let t = 0; t < trips; t++) {
    const inbound = 2 * Math.PI * random()
    let last: [number, number] | undefined
    for (let s = 3000; s >= 0; s -= 20) {
      const [lat, lon] = move(zone.lat, zone.lon, inbound, s)
      if (forwards(run, lat, lon)) last = [lat, lon]
      else break
    }
    if (last !== undefined) endpoints.push(last)
    const outbound = 2 * Math.PI * random()
    for (let s = 0; s <= 3000; s += 20) {
      const [lat, lon] = move(zone.lat, zone.lon, outbound, s)
      if (forwards(run, lat, lon)) {
        endpoints.push([lat, lon])
        break
      }
    }
  }
  return endpoints
}

describe('privacy_zone', () => {
  it('suppresses a fix inside the zone and forwards one far outside unchanged', () => {
    const run = compile({ zones: [HOME] })
    expect(run({ _type: 'location', lat: HOME.lat, lon: HOME.lon, batt: 9 }, ctx)).toBe(SUPPRESS)
    const doc = { _type: 'location', lat: 52.53, lon: 13.405, batt: 9 }
    const out = run(doc, ctx)
    expect(out).toBe(doc)
    expect(out).toEqual({ _type: 'location', lat: 52.53, lon: 13.405, batt: 9 })
  })

  it('emits {zone: label} inside the zone when configured (svc only)', () => {
    const run = compile({ zones: [HOME], emit: 'home' })
    expect(run({ lat: HOME.lat, lon: HOME.lon, batt: 9, tst: 1 }, ctx)).toEqual({ zone: 'home' })
    expect(run({ lat: 52.53, lon: 13.405 }, ctx)).toEqual({ lat: 52.53, lon: 13.405 })
    expect(() => compile({ zones: [HOME], emit: 'home' }, compileEnv({ domain: 'ana' }))).toThrow(/svc/)
    expect(() => compile({ zones: [HOME], emit: 'home' }, compileEnv({ domain: '3p' }))).toThrow(/svc/)
  })

  it('checks every zone and follows configured paths', () => {
    const work: ZoneConfig = { lat: 48.1372, lon: 11.5756 }
    const run = compile({ zones: [HOME, work], lat: 'p.y', lon: 'p.x' })
    expect(run({ p: { y: work.lat, x: work.lon } }, ctx)).toBe(SUPPRESS)
    expect(run({ p: { y: HOME.lat, x: HOME.lon } }, ctx)).toBe(SUPPRESS)
    expect(run({ p: { y: 50, x: 10 } }, ctx)).toEqual({ p: { y: 50, x: 10 } })
  })

  it('fails closed: coordinates it cannot check are removed', () => {
    const run = compile({ zones: [HOME] })
    expect(run({ lat: String(HOME.lat), lon: HOME.lon, batt: 1 }, ctx)).toEqual({ batt: 1 })
    expect(run({ lat: HOME.lat }, ctx)).toEqual({})
    expect(run({ lon: HOME.lon }, ctx)).toEqual({})
    expect(run({ lat: Number.NaN, lon: HOME.lon }, ctx)).toEqual({})
    expect(run({ batt: 1 }, ctx)).toEqual({ batt: 1 })
    expect(() => run([HOME.lat, HOME.lon], ctx)).toThrow(/JSON object/)
  })

  it('validates its configuration', () => {
    const validate = new Ajv({ allErrors: true, strict: false }).compile(privacyZone.configSchema)
    expect(validate({ zones: [HOME] })).toBe(true)
    expect(validate({ zones: [] })).toBe(false)
    expect(validate({})).toBe(false)
    expect(validate({ zones: [{ lat: 91, lon: 0 }] })).toBe(false)
    expect(validate({ zones: [{ lat: 0, lon: 0, radius: 5 }] })).toBe(false)
    expect(validate({ zones: [HOME], min_radius_m: -1 })).toBe(false)
    expect(() => compileUnchecked(privacyZone, { zones: [] })).toThrow(/at least one/)
    expect(() => compileUnchecked(privacyZone, { zones: [{ lat: 95, lon: 0, name: 'x' }] })).toThrow(/zones\/0 \(x\)/)
    expect(() => compileUnchecked(privacyZone, { zones: [HOME], max_offset_m: Number.NaN })).toThrow(/maxOffsetM/)
  })

  describe('secrets', () => {
    it('are derived from the master key only: stable across restarts, never from env.random', () => {
      const noRandom = compileEnv({
        random: () => {
          throw new Error('env.random used')
        },
      })
      const a = deriveZone(noRandom.keyring, 'svc', 0, HOME, DEFAULTS)
      const restarted = new Keyring(Buffer.alloc(32, 1), new Map())
      expect(deriveZone(restarted, 'svc', 0, HOME, DEFAULTS)).toEqual(a)
      expect(() => compile({ zones: [HOME] }, noRandom)).not.toThrow()
      const other = new Keyring(Buffer.alloc(32, 2), new Map())
      expect(deriveZone(other, 'svc', 0, HOME, DEFAULTS)).not.toEqual(a)
      expect(deriveZone(keyring, 'ana', 0, HOME, DEFAULTS)).not.toEqual(a)
    })

    it('stay within their bounds and the radius always covers min_radius_m + |offset|', () => {
      let offsets = 0
      for (let i = 0; i < 2000; i++) {
        const zone = { lat: -60 + (i % 120), lon: -179 + ((i * 7) % 358) }
        const z = deriveZone(keyring, 'svc', i % 3, zone, DEFAULTS)
        expect(z.offsetM).toBeLessThanOrEqual(150.001)
        expect(haversine(zone.lat, zone.lon, z.centreLat, z.centreLon)).toBeCloseTo(z.offsetM, 6)
        expect(z.extraM).toBeGreaterThanOrEqual(0)
        expect(z.extraM).toBeLessThan(200)
        expect(z.radiusM).toBeGreaterThanOrEqual(400 + z.offsetM + z.extraM)
        offsets += z.offsetM
      }
      // Uniform in the disc: E|offset| = 2/3 · 150 = 100 m.
      expect(offsets / 2000).toBeGreaterThan(95)
      expect(offsets / 2000).toBeLessThan(105)
    })
  })

  it('P7: no forwarded fix lies within min_radius_m of a true zone centre (fast-check, 0 violations)', () => {
    const zoneArb = fc.record({
      lat: fc.double({ min: -85, max: 85, noNaN: true }),
      lon: fc.double({ min: -180, max: 180, noNaN: true }),
    })
    fc.assert(
      fc.property(
        fc.array(zoneArb, { minLength: 1, maxLength: 3 }),
        fc.nat({ max: 2 }),
        fc.double({ min: 0, max: 2 * Math.PI, noNaN: true }),
        fc.double({ min: 0, max: 1500, noNaN: true }),
        fc.boolean(),
        (zones, pick, bearing, distance, emitting) => {
          const run = compile({ zones, ...(emitting ? { emit: 'home' } : {}) })
          const zone = zones[pick % zones.length] as ZoneConfig
          const [lat, lon] = move(zone.lat, zone.lon, bearing, distance)
          const out = run({ lat, lon }, ctx)
          const leaked = out !== SUPPRESS && typeof out === 'object' && out !== null && 'lat' in out
          if (leaked) for (const z of zones) expect(haversine(z.lat, z.lon, lat, lon)).toBeGreaterThanOrEqual(400)
          // Utility: beyond min + 2·max_offset + extra = 900 m of every zone a fix always passes.
          if (zones.every((z) => haversine(z.lat, z.lon, lat, lon) > 900)) expect(leaked).toBe(true)
        },
      ),
      { seed: 42, numRuns: 3000 },
    )
  })

  it('P7: a 10 m grid around the zone has 0 violations, and the hidden disc is centred on the fuzzed centre', () => {
    const run = compile({ zones: [HOME] })
    const z = deriveZone(keyring, 'svc', 0, HOME, DEFAULTS)
    let violations = 0
    let nearestForwarded = Number.POSITIVE_INFINITY
    for (let dy = -1000; dy <= 1000; dy += 10) {
      for (let dx = -1000; dx <= 1000; dx += 10) {
        const lat = HOME.lat + dy / (R * RAD)
        const lon = HOME.lon + dx / (R * RAD * Math.cos(HOME.lat * RAD))
        const inside = haversine(z.centreLat, z.centreLon, lat, lon) < z.radiusM
        expect(forwards(run, lat, lon)).toBe(!inside)
        if (!inside) {
          const d = haversine(HOME.lat, HOME.lon, lat, lon)
          nearestForwarded = Math.min(nearestForwarded, d)
          if (d < 400) violations++
        }
      }
    }
    expect(violations).toBe(0)
    expect(nearestForwarded).toBeGreaterThanOrEqual(400)
    expect(nearestForwarded).toBeLessThan(z.radiusM - z.offsetM + 15)
  })

  describe('A5: fitting a circle to the trip endpoints of ≥ 20 trips', () => {
    it('recovers a fixed zone (no offset, no extra radius) to within 30 m', () => {
      const run = compile({ zones: [HOME], max_offset_m: 0, extra_radius_m: 0 })
      const fit = fitCircle(tripEndpoints(run, HOME, 30, 7), HOME.lat, HOME.lon)
      expect(haversine(HOME.lat, HOME.lon, fit.lat, fit.lon)).toBeLessThan(30)
      expect(Math.abs(fit.radius - 400)).toBeLessThan(30)
    })

    it('recovers only the fuzzed centre of a fuzzed zone: its error vs the true centre is ≥ 0.8 × |offset|', () => {
      // Walk the candidate homes until the secret offset is ≥ 50 m (≈ 89% of zones are); deterministic per key.
      let zone = HOME
      let z = deriveZone(keyring, 'svc', 0, zone, DEFAULTS)
      for (let k = 1; z.offsetM < 50; k++) {
        zone = { lat: HOME.lat + k * 0.01, lon: HOME.lon }
        z = deriveZone(keyring, 'svc', 0, zone, DEFAULTS)
      }
      const run = compile({ zones: [zone] })
      const endpoints = tripEndpoints(run, zone, 30, 7)
      expect(endpoints.length).toBeGreaterThanOrEqual(40)
      const fit = fitCircle(endpoints, zone.lat, zone.lon)
      const errorTrue = haversine(zone.lat, zone.lon, fit.lat, fit.lon)
      const errorFuzzed = haversine(z.centreLat, z.centreLon, fit.lat, fit.lon)
      expect(errorFuzzed).toBeLessThan(20)
      expect(errorTrue).toBeGreaterThanOrEqual(0.8 * z.offsetM)
      // Nor does the fitted radius give the true minimum away: it is the secret radius, not 400 m.
      expect(Math.abs(fit.radius - z.radiusM)).toBeLessThan(20)
    })

    it('the mean of the endpoints lands about halfway: trips that aim at the true centre pull it by ≈ |offset| / 2', () => {
      // Rays from the true centre T meet the circle about O densest on T's side: E[endpoint] ≈ O + (T − O)/2.
      let zone = HOME
      let z = deriveZone(keyring, 'svc', 0, zone, DEFAULTS)
      for (let k = 1; z.offsetM < 50; k++) {
        zone = { lat: HOME.lat + k * 0.01, lon: HOME.lon }
        z = deriveZone(keyring, 'svc', 0, zone, DEFAULTS)
      }
      const endpoints = tripEndpoints(compile({ zones: [zone] }), zone, 2000, 8)
      const meanLat = endpoints.reduce((s, p) => s + p[0], 0) / endpoints.length
      const meanLon = endpoints.reduce((s, p) => s + p[1], 0) / endpoints.length
      const errorTrue = haversine(zone.lat, zone.lon, meanLat, meanLon)
      expect(errorTrue).toBeGreaterThanOrEqual(0.3 * z.offsetM)
      expect(errorTrue).toBeLessThanOrEqual(0.7 * z.offsetM)
    })
  })
})
