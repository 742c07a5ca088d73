import { Ajv } from 'ajv'
import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { compileEnv, opContext, seededRandom } from '../testing.ts'
import geoInd from './index.ts'

type Fix = { lat: number; lon: number; [key: string]: unknown }
const T0 = Date.UTC(2025, 0, 1)
const HOME = { lat: 48.8566, lon: 2.3522 }
const R = 6_371_008.8

function haversine(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = Math.PI / 180
  const a = Math.sin(((lat2 - lat1) * rad) / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(((lon2 - lon1) * rad) / 2) ** 2
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(a)))
}

// The tests of the radius law and of the cache run on fresh random noise (epoch_s 0); the keyed mode has its own below.
const compile = (config: Record<string, unknown> = {}, seed = 42) => geoInd.compile({ epoch_s: 0, ...config }, compileEnv({ random: seededRandom(seed) }))
const report = (run: ReturnType<typeof compile>, lat: number, lon: number, nowMs = T0, deviceId = 'dev-1'): Fix =>
  run({ lat, lon }, opContext({ nowMs, deviceId })) as Fix

/** Radii of n independent draws at HOME (cache off). */
function radii(n: number, config: Record<string, unknown> = {}, seed = 42): number[] {
  const run = compile({ ...config, cache_s: 0 }, seed)
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const fix = report(run, HOME.lat, HOME.lon, T0 + i * 1000)
    out.push(haversine(HOME.lat, HOME.lon, fix.lat, fix.lon))
  }
  return out
}

const epsilon = 2 / 500
/** CDF of Gamma(2, 1/ε), the radius of the planar Laplace distribution. */
const gamma2Cdf = (r: number) => 1 - Math.exp(-epsilon * r) * (1 + epsilon * r)

/** Kolmogorov–Smirnov D statistic of a sample against a continuous CDF. */
function ksD(sample: readonly number[], cdf: (x: number) => number): number {
  const sorted = [...sample].sort((a, b) => a - b)
  const n = sorted.length
  let d = 0
  sorted.forEach((x, i) => {
    const f = cdf(x)
    d = Math.max(d, Math.abs(f - i / n), Math.abs((i + 1) / n - f))
  })
  return d
}
/** Asymptotic critical value of D at α = 0.01. */
const ksCritical = (n: number) => 1.6276 / Math.sqrt(n)
const quantile = (sample: readonly number[], q: number) => {
  const sorted = [...sample].sort((a, b) => a - b)
  return sorted[Math.floor(q * (sorted.length - 1))] ?? Number.NaN
}
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length

afterEach(() => vi.restoreAllMocks())

describe('geo_ind', () => {
  it('moves the fix and keeps the other fields', () => {
    const out = compile()({ _type: 'location', lat: HOME.lat, lon: HOME.lon, batt: 50 }, opContext()) as Fix
    expect(out._type).toBe('location')
    expect(out.batt).toBe(50)
    expect(out.lat).not.toBe(HOME.lat)
    expect(out.lon).not.toBe(HOME.lon)
  })

  it('follows configured paths', () => {
    const out = compile({ lat: 'p.y', lon: 'p.x' })({ p: { y: HOME.lat, x: HOME.lon } }, opContext()) as { p: { y: number; x: number } }
    expect(haversine(HOME.lat, HOME.lon, out.p.y, out.p.x)).toBeGreaterThan(0)
    expect(haversine(HOME.lat, HOME.lon, out.p.y, out.p.x)).toBeLessThan(10_000)
  })

  it('fails closed: coordinates it cannot perturb are removed', () => {
    const run = compile()
    expect(run({ lat: '48.8', lon: 2.3, x: 1 }, opContext())).toEqual({ x: 1 })
    expect(run({ lat: Number.POSITIVE_INFINITY, lon: 2.3 }, opContext())).toEqual({})
    expect(run({ lat: 48.8 }, opContext())).toEqual({})
    expect(run({ lon: 2.3 }, opContext())).toEqual({})
    expect(run({ lat: 48.8, lon: -181 }, opContext())).toEqual({})
    expect(run({ batt: 1 }, opContext())).toEqual({ batt: 1 })
    expect(() => run(null, opContext())).toThrow(/JSON object/)
  })

  it('validates its configuration', () => {
    const validate = new Ajv({ allErrors: true, strict: false }).compile(geoInd.configSchema)
    expect(validate({})).toBe(true)
    expect(validate({ radius_m: 200, cache_s: 600, lat: 'a', lon: 'b' })).toBe(true)
    expect(validate({ radius_m: 0 })).toBe(false)
    expect(validate({ cache_s: -1 })).toBe(false)
    expect(validate({ epsilon: 0.1 })).toBe(false)
    expect(() => compile({ radius_m: -5 })).toThrow(/radius_m/)
    expect(() => compile({ lat: 'x', lon: 'x' })).toThrow(/different/)
  })

  it('draws all its noise from env.random, never Math.random', () => {
    vi.spyOn(Math, 'random').mockImplementation(() => {
      throw new Error('Math.random used')
    })
    const a = radii(50, {}, 7)
    expect(radii(50, {}, 7)).toEqual(a)
    expect(radii(50, {}, 8)).not.toEqual(a)
  })

  it('always outputs finite coordinates in range, at the poles and the antimeridian too', () => {
    fc.assert(
      fc.property(fc.double({ min: -90, max: 90, noNaN: true }), fc.double({ min: -180, max: 180, noNaN: true }), fc.integer(), (lat, lon, seed) => {
        const out = report(compile({ cache_s: 0, radius_m: 2000 }, seed), lat, lon)
        expect(Number.isFinite(out.lat) && Number.isFinite(out.lon)).toBe(true)
        expect(Math.abs(out.lat)).toBeLessThanOrEqual(90)
        expect(Math.abs(out.lon)).toBeLessThanOrEqual(180)
      }),
      { seed: 42, numRuns: 1000 },
    )
    const east = report(compile({ cache_s: 0 }, 3), 0, 179.9999)
    expect(haversine(0, 179.9999, east.lat, east.lon)).toBeLessThan(10_000)
  })

  describe('P5: the radius follows Gamma(2, 1/ε) with ε = 2 / radius_m', () => {
    const n = 5000
    const sample = radii(n)

    it('passes a Kolmogorov–Smirnov test at α = 0.01', () => {
      expect(ksD(sample, gamma2Cdf)).toBeLessThan(ksCritical(n))
    })

    it('and the same test rejects a wrong distribution (Gamma(1), radius × 2, radius_m 700)', () => {
      const random = seededRandom(99)
      const exponential = Array.from({ length: n }, () => -Math.log(1 - random()) / epsilon)
      expect(ksD(exponential, gamma2Cdf)).toBeGreaterThan(ksCritical(n))
      expect(ksD(sample.map((r) => r * 2), gamma2Cdf)).toBeGreaterThan(ksCritical(n))
      expect(ksD(radii(n, { radius_m: 700 }), gamma2Cdf)).toBeGreaterThan(ksCritical(n))
    })

    it('has mean ≈ 500 m, median ≈ 420 m and 90th percentile ≈ 972 m', () => {
      // Standard errors at n = 5000: mean 5 m, median ≈ 5 m, p90 ≈ 11 m; the bounds are about 3 of them.
      expect(mean(sample)).toBeGreaterThan(485)
      expect(mean(sample)).toBeLessThan(515)
      expect(quantile(sample, 0.5)).toBeGreaterThan(405)
      expect(quantile(sample, 0.5)).toBeLessThan(435)
      expect(quantile(sample, 0.9)).toBeGreaterThan(940)
      expect(quantile(sample, 0.9)).toBeLessThan(1005)
    })

    it('scales with radius_m', () => {
      const small = radii(2000, { radius_m: 200 })
      expect(mean(small)).toBeGreaterThan(190)
      expect(mean(small)).toBeLessThan(210)
      expect(ksD(small, (r) => 1 - Math.exp((-2 / 200) * r) * (1 + (2 / 200) * r))).toBeLessThan(ksCritical(2000))
    })

    it('has a uniform direction (χ² over 12 sectors, α = 0.01) and no bias', () => {
      const run = compile({ cache_s: 0 })
      const bins = new Array<number>(12).fill(0)
      const east: number[] = []
      const north: number[] = []
      const mPerDeg = (Math.PI / 180) * R
      for (let i = 0; i < n; i++) {
        const fix = report(run, HOME.lat, HOME.lon)
        const dx = (fix.lon - HOME.lon) * mPerDeg * Math.cos((HOME.lat * Math.PI) / 180)
        const dy = (fix.lat - HOME.lat) * mPerDeg
        east.push(dx)
        north.push(dy)
        const sector = Math.floor(((Math.atan2(dy, dx) + Math.PI) / (2 * Math.PI)) * 12) % 12
        bins[sector] = (bins[sector] ?? 0) + 1
      }
      const expected = n / 12
      const chi2 = bins.reduce((sum, b) => sum + (b - expected) ** 2 / expected, 0)
      expect(chi2).toBeLessThan(24.725)
      // Each axis has standard deviation √3·250 ≈ 433 m, so the mean of 5000 has σ ≈ 6 m: 25 m is 4σ.
      expect(Math.abs(mean(east))).toBeLessThan(25)
      expect(Math.abs(mean(north))).toBeLessThan(25)
    })

    it('is empirically ε-geo-indistinguishable on a 1-D projection (density ratio ≤ e^(ε·d) with tolerance)', () => {
      // Two true points 100 m apart north–south; compare how often each lands in 50 m bands of northing.
      // Returns the largest |log ratio| beyond its 3σ counting tolerance, and how many bands were compared.
      const d = 100
      const mPerDeg = (Math.PI / 180) * R
      const worstExcess = (radiusM: number): [number, number] => {
        const run = compile({ cache_s: 0, radius_m: radiusM }, 11)
        const count = (lat: number) => {
          const bands = new Map<number, number>()
          for (let i = 0; i < 200_000; i++) {
            const fix = report(run, lat, HOME.lon)
            const band = Math.floor(((fix.lat - HOME.lat) * mPerDeg) / 50)
            bands.set(band, (bands.get(band) ?? 0) + 1)
          }
          return bands
        }
        const a = count(HOME.lat)
        const b = count(HOME.lat + d / mPerDeg)
        let worst = Number.NEGATIVE_INFINITY
        let checked = 0
        for (const [band, na] of a) {
          const nb = b.get(band) ?? 0
          if (na < 2000 || nb < 2000) continue
          checked++
          worst = Math.max(worst, Math.abs(Math.log(na / nb)) - 3 * Math.sqrt(1 / na + 1 / nb))
        }
        return [worst, checked]
      }
      const [worst, checked] = worstExcess(500)
      expect(checked).toBeGreaterThan(10)
      expect(worst).toBeLessThanOrEqual(epsilon * d)
      // The check has power: noise for radius_m 250 (twice the ε) breaks the ε of radius_m 500.
      expect(worstExcess(250)[0]).toBeGreaterThan(epsilon * d)
    })
  })

  describe('P6: the cache re-serves one noisy fix per device and window', () => {
    it('returns one distinct output within the window while the device stays within radius_m', () => {
      const run = compile()
      const outputs = new Set<string>()
      const jitter = seededRandom(5)
      for (let i = 0; i < 100; i++) {
        const lat = HOME.lat + (jitter() - 0.5) * 0.002
        const lon = HOME.lon + (jitter() - 0.5) * 0.002
        const fix = report(run, lat, lon, T0 + i * 17_000)
        outputs.add(`${fix.lat},${fix.lon}`)
      }
      expect(outputs.size).toBe(1)
    })

    it('draws fresh noise after cache_s, after moving more than radius_m, for another device, and never with cache_s 0', () => {
      const run = compile()
      const first = report(run, HOME.lat, HOME.lon, T0)
      expect(report(run, HOME.lat, HOME.lon, T0 + 1_799_000)).toEqual(first)
      expect(report(run, HOME.lat, HOME.lon, T0 + 1_800_000)).not.toEqual(first)
      const run2 = compile()
      const a = report(run2, HOME.lat, HOME.lon, T0)
      expect(report(run2, HOME.lat + 0.006, HOME.lon, T0 + 1000)).not.toEqual(a)
      const run3 = compile()
      const b = report(run3, HOME.lat, HOME.lon, T0, 'dev-1')
      expect(report(run3, HOME.lat, HOME.lon, T0, 'dev-2')).not.toEqual(b)
      const run4 = compile({ cache_s: 0 })
      const seen = new Set<string>()
      for (let i = 0; i < 50; i++) {
        const f = report(run4, HOME.lat, HOME.lon, T0)
        seen.add(`${f.lat},${f.lon}`)
      }
      expect(seen.size).toBe(50)
    })
  })

  it('A3: averaging n = 100 reports of a static home converges without the cache and stays far with it', () => {
    const homes = 20
    const errorOfMean = (cacheS: number): number[] => {
      const run = compile({ cache_s: cacheS }, 2024)
      const errors: number[] = []
      for (let h = 0; h < homes; h++) {
        const lat = 40 + h * 0.37
        const lon = -3 + h * 0.53
        let sumLat = 0
        let sumLon = 0
        for (let i = 0; i < 100; i++) {
          // One report every 15 s: all 100 fall in one 30-minute window.
          const fix = report(run, lat, lon, T0 + i * 15_000, `home-${h}`)
          sumLat += fix.lat
          sumLon += fix.lon
        }
        errors.push(haversine(lat, lon, sumLat / 100, sumLon / 100))
      }
      return errors
    }
    const open = errorOfMean(0)
    const cached = errorOfMean(1800)
    // Without the cache the error falls as 1/√n (≈ 45 m expected); with it, each home keeps one Gamma(2) draw.
    expect(quantile(open, 0.5)).toBeLessThan(100)
    expect(Math.max(...open)).toBeLessThan(150)
    expect(quantile(cached, 0.5)).toBeGreaterThanOrEqual(200)
    expect(mean(cached)).toBeGreaterThanOrEqual(300)
  })

  describe('keyed noise (issue 13.1): one draw per device, cell and epoch', () => {
    const keyed = (config: Record<string, unknown> = {}) =>
      geoInd.compile({ cache_s: 0, ...config }, compileEnv({ random: () => { throw new Error('env.random used') } }))
    const DAY = 86_400_000

    it('keeps the Gamma(2, 1/ε) radius law and a uniform direction across devices, cells and epochs (KS, α = 0.01)', () => {
      const run = keyed()
      const rs: number[] = []
      const sectors = new Array<number>(12).fill(0)
      for (let i = 0; i < 3000; i++) {
        // Vary one of device, place (2 km apart: another cell) and epoch at a time.
        const kind = i % 3
        const lat = HOME.lat + (kind === 1 ? i * 0.02 : 0)
        const now = T0 + (kind === 2 ? i * 31 * DAY : 0)
        const fix = report(run, lat, HOME.lon, now, kind === 0 ? `dev-${i}` : 'dev-x')
        rs.push(haversine(lat, HOME.lon, fix.lat, fix.lon))
        const angle = Math.atan2((fix.lat - lat) , (fix.lon - HOME.lon) * Math.cos(lat * Math.PI / 180))
        sectors[Math.floor(((angle + Math.PI) / (2 * Math.PI)) * 12) % 12]! += 1
      }
      expect(ksD(rs, gamma2Cdf)).toBeLessThan(ksCritical(rs.length))
      const expected = rs.length / 12
      const chi2 = sectors.reduce((a, o) => a + (o - expected) ** 2 / expected, 0)
      expect(chi2).toBeLessThan(24.725) // χ²(11) at α = 0.01
    })

    it('gives one noise vector to every report of a static place within an epoch, however long it sits there', () => {
      const run = keyed()
      const jitter = seededRandom(8)
      const noise = new Set<string>()
      let sumLat = 0
      let sumLon = 0
      const n = 30 * 48 // one report every 30 min for a 30-day epoch
      for (let i = 0; i < n; i++) {
        const lat = HOME.lat + (jitter() - 0.5) * 0.0004 // ±22 m of GPS jitter
        const lon = HOME.lon + (jitter() - 0.5) * 0.0006
        const fix = report(run, lat, lon, T0 + i * 1_800_000)
        noise.add(`${(fix.lat - lat).toFixed(9)},${(fix.lon - lon).toFixed(9)}`)
        sumLat += fix.lat
        sumLon += fix.lon
      }
      expect(noise.size).toBe(1)
      // The mean stays one full draw away instead of converging (the random mode's mean is within a few metres).
      const single = report(keyed(), HOME.lat, HOME.lon, T0)
      expect(haversine(sumLat / n, sumLon / n, single.lat, single.lon)).toBeLessThan(30)
    })

    it('yields few draws per static place and epoch near cell edges (hysteresis), measured over 200 homes', () => {
      const count = (cellM: number, hysteresis: boolean) => {
        const draws: number[] = []
        for (let h = 0; h < 200; h++) {
          const jitter = seededRandom(100 + h)
          const homeLat = 45 + h * 0.0107
          const homeLon = 5 + h * 0.0131
          const seen = new Set<string>()
          // Without hysteresis: a fresh operator per fix, so no memory of the previous cell.
          let run = keyed({ cell_m: cellM })
          for (let i = 0; i < 200; i++) {
            if (!hysteresis) run = keyed({ cell_m: cellM })
            const lat = homeLat + (jitter() - 0.5) * 0.0009 // ±50 m: a phone indoors
            const lon = homeLon + (jitter() - 0.5) * 0.0013
            const fix = report(run, lat, lon, T0 + i * 600_000)
            seen.add(`${(fix.lat - lat).toFixed(7)},${(fix.lon - lon).toFixed(7)}`)
          }
          draws.push(seen.size)
        }
        return draws
      }
      const withH = count(250, true)
      const without = count(250, false)
      // Measured: with hysteresis every home keeps 1 draw (a few at most 2); without, ~40 % of homes get 2-4.
      expect(mean(withH)).toBeLessThan(1.1)
      expect(Math.max(...withH)).toBeLessThanOrEqual(2)
      expect(mean(without)).toBeGreaterThan(1.2)
    })

    it('draws anew in the next epoch and for another device, and never uses env.random', () => {
      const run = keyed({ epoch_s: 86_400 })
      const a = report(run, HOME.lat, HOME.lon, T0)
      expect(report(run, HOME.lat, HOME.lon, T0 + DAY - 1)).toEqual(a)
      expect(report(run, HOME.lat, HOME.lon, T0 + DAY)).not.toEqual(a)
      expect(report(run, HOME.lat, HOME.lon, T0, 'dev-2')).not.toEqual(a)
    })
  })
})
