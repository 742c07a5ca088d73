import { Ajv } from 'ajv'
import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Keyring } from '../../../gateway/src/keys/keyring.ts'
import { compileEnv, compileOperator, opContext, schemaDefaults, seededRandom } from '../testing.ts'
import geoInd, { Grid } from './index.ts'

type Fix = { lat: number; lon: number; [key: string]: unknown }
const T0 = Date.UTC(2025, 0, 1)
const HOME = { lat: 48.8566, lon: 2.3522 }
const R = 6_371_008.8
const EPOCH_MS = 30 * 86_400_000
const MINUTE = 60_000

function haversine(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = Math.PI / 180
  const a =
    Math.sin(((lat2 - lat1) * rad) / 2) ** 2 +
    Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(((lon2 - lon1) * rad) / 2) ** 2
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(a)))
}

// The tests of the radius law and of the cache run on fresh random noise (epoch_s 0); the keyed mode has its own below.
const keyrings = new Map<number, Keyring>()
/** A keyring with master key `key` bytes, so tests can compare gateways. */
const keyringOf = (key: number) => {
  let k = keyrings.get(key)
  if (k === undefined) keyrings.set(key, (k = new Keyring(Buffer.alloc(32, key), new Map())))
  return k
}
const compile = (config: Record<string, unknown> = {}, key = 42) =>
  compileOperator(
    geoInd,
    config,
    compileEnv({
      keyring: keyringOf(key),
      random: () => {
        throw new Error('env.random used')
      },
    }),
  )
const report = (run: ReturnType<typeof compile>, lat: number, lon: number, nowMs = T0, deviceId = 'dev-1'): Fix =>
  run({ lat, lon }, opContext({ nowMs, deviceId })) as Fix

/**
 * Radii of n draws, each for another device, cell and epoch (the draw is keyed by all three), measured from the
 * centre of the cell the true fix was snapped to.
 */
function radii(n: number, config: Record<string, unknown> = {}, key = 42): number[] {
  const run = compile(config, key)
  const grid = new Grid(typeof config.cell_m === 'number' ? config.cell_m : 250)
  const where = seededRandom(key)
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const lat = HOME.lat + (where() - 0.5) * 0.5
    const lon = HOME.lon + (where() - 0.5) * 0.5
    const fix = report(run, lat, lon, T0 + (i % 7) * EPOCH_MS, `dev-${i}`)
    const centre = grid.centreOf(grid.cellOf(lat, lon))
    out.push(haversine(centre.lat, centre.lon, fix.lat, fix.lon))
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
    const out = compile({ lat: 'p.y', lon: 'p.x' })({ p: { y: HOME.lat, x: HOME.lon } }, opContext()) as {
      p: { y: number; x: number }
    }
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
    expect(validate({ radius_m: 200, cell_m: 100, epoch_s: 86_400, lat: 'a', lon: 'b' })).toBe(true)
    expect(validate({ radius_m: 0 })).toBe(false)
    expect(validate({ cell_m: 5 })).toBe(false)
    expect(validate({ epoch_s: 60 })).toBe(false)
    // The noisy-fix cache is gone: keyed noise makes it redundant, and a policy that still names it fails at load.
    expect(validate({ cache_s: 1800 })).toBe(false)
    expect(validate({ epsilon: 0.1 })).toBe(false)
    expect(() => compile({ radius_m: -5 })).toThrow(/radius_m/)
    expect(() => compile({ lat: 'x', lon: 'x' })).toThrow(/different/)
  })

  it('draws its noise from the master key, never from Math.random or env.random', () => {
    vi.spyOn(Math, 'random').mockImplementation(() => {
      throw new Error('Math.random used')
    })
    const a = radii(50, {}, 7)
    expect(radii(50, {}, 7)).toEqual(a)
    expect(radii(50, {}, 8)).not.toEqual(a)
  })

  it('always outputs finite coordinates in range, at the poles and the antimeridian too', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -90, max: 90, noNaN: true }),
        fc.double({ min: -180, max: 180, noNaN: true }),
        fc.integer(),
        (lat, lon, seed) => {
          const out = report(compile({ radius_m: 2000 }, seed & 255), lat, lon, T0, `d${seed}`)
          expect(Number.isFinite(out.lat) && Number.isFinite(out.lon)).toBe(true)
          expect(Math.abs(out.lat)).toBeLessThanOrEqual(90)
          expect(Math.abs(out.lon)).toBeLessThanOrEqual(180)
        },
      ),
      { seed: 42, numRuns: 1000 },
    )
    const east = report(compile({}, 3), 0, 179.9999)
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
      expect(
        ksD(
          sample.map((r) => r * 2),
          gamma2Cdf,
        ),
      ).toBeGreaterThan(ksCritical(n))
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
      const run = compile({})
      const bins = new Array<number>(12).fill(0)
      const east: number[] = []
      const north: number[] = []
      const mPerDeg = (Math.PI / 180) * R
      // Noise is centred on the cell centre: start there so the offsets below are the noise itself.
      const centre = new Grid(250).centreOf(new Grid(250).cellOf(HOME.lat, HOME.lon))
      for (let i = 0; i < n; i++) {
        const fix = report(run, centre.lat, centre.lon, T0, `dev-${i}`)
        const dx = (fix.lon - centre.lon) * mPerDeg * Math.cos((centre.lat * Math.PI) / 180)
        const dy = (fix.lat - centre.lat) * mPerDeg
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
        // 10 m cells, so snapping moves the two points by at most 7 m each; one device per draw.
        // One device, one epoch (an hour) per draw.
        const run = compile({ radius_m: radiusM, cell_m: 10, epoch_s: 3600 }, 11)
        const count = (lat: number) => {
          const bands = new Map<number, number>()
          for (let i = 0; i < 100_000; i++) {
            const fix = report(run, lat, HOME.lon, T0 + i * 3_600_000, `p${lat}`)
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
          if (na < 1000 || nb < 1000) continue
          checked++
          worst = Math.max(worst, Math.abs(Math.log(na / nb)) - 3 * Math.sqrt(1 / na + 1 / nb))
        }
        return [worst, checked]
      }
      const [worst, checked] = worstExcess(500)
      expect(checked).toBeGreaterThan(10)
      expect(worst).toBeLessThanOrEqual(epsilon * (d + 15))
      // The check has power: noise for radius_m 250 (twice the ε) breaks the ε of radius_m 500.
      expect(worstExcess(250)[0]).toBeGreaterThan(epsilon * d)
    })
  })

  describe('keyed noise (issue 13.1): one draw per device, cell and epoch', () => {
    const start = T0
    it('gives every report of a static, jittering place one noisy point for the whole epoch', () => {
      const run = compile()
      const jitter = seededRandom(8)
      const outputs = new Set<string>()
      // One report a minute for 30 days, ±25 m of GPS jitter.
      for (let i = 0; i < 30 * 1440; i++) {
        const fix = report(
          run,
          HOME.lat + (jitter() - 0.5) * 0.00045,
          HOME.lon + (jitter() - 0.5) * 0.0007,
          start + i * MINUTE,
        )
        outputs.add(`${fix.lat},${fix.lon}`)
      }
      // At most 2: the device's epoch boundary (a keyed phase) falls somewhere in these 30 days.
      expect(outputs.size).toBeLessThanOrEqual(2)
    })

    it('draws anew in the next epoch, in another cell, for another device and under another master key; restarts change nothing', () => {
      const run = compile({ epoch_s: 86_400 })
      const a = report(run, HOME.lat, HOME.lon, T0)
      expect(report(compile({ epoch_s: 86_400 }), HOME.lat, HOME.lon, T0)).toEqual(a)
      const days = new Set<string>()
      for (let d = 0; d < 10; d++) days.add(JSON.stringify(report(run, HOME.lat, HOME.lon, T0 + d * 86_400_000)))
      expect(days.size).toBe(10)
      expect(report(run, HOME.lat + 0.01, HOME.lon, T0)).not.toEqual(a)
      expect(report(run, HOME.lat, HOME.lon, T0, 'dev-2')).not.toEqual(a)
      expect(report(compile({ epoch_s: 86_400 }, 43), HOME.lat, HOME.lon, T0)).not.toEqual(a)
    })

    it('yields one draw per static place and epoch near cell edges too (hysteresis), measured over 300 homes', () => {
      const restart = { ...schemaDefaults(geoInd), epoch_s: 31_536_000 }
      const restartEnv = compileEnv({
        keyring: keyringOf(42),
        random: () => {
          throw new Error('env.random used')
        },
      })
      const count = (hysteresis: boolean) => {
        const draws: number[] = []
        for (let h = 0; h < 300; h++) {
          const jitter = seededRandom(100 + h)
          const homeLat = 45 + h * 0.01071
          const homeLon = 5 + h * 0.01313
          const seen = new Set<string>()
          // The longest epoch, so that an epoch boundary (3 % of homes within 300 h at 30 days) does not count.
          let run = compile({ epoch_s: 31_536_000 })
          for (let i = 0; i < 300; i++) {
            // Without hysteresis: a fresh operator per fix, so no memory of the previous cell (a gateway restart);
            // compiled from checked settings, as 90 000 settings checks would slow the test down for nothing.
            if (!hysteresis) run = geoInd.compile(restart, restartEnv)
            // ±50 m: a phone indoors.
            const fix = report(
              run,
              homeLat + (jitter() - 0.5) * 0.0009,
              homeLon + (jitter() - 0.5) * 0.0013,
              start + i * 600_000,
              `home-${h}`,
            )
            seen.add(`${fix.lat},${fix.lon}`)
          }
          draws.push(seen.size)
        }
        return draws
      }
      const withH = count(true)
      const without = count(false)
      // Measured (250 m cells, ±50 m jitter, 300 homes, 300 reports over 50 h): with hysteresis 1.00 draws per home
      // (max 1); restarting before every fix 1.6 (max 4), as a 250 m cell has a 50 m edge band on each side.
      expect(mean(withH)).toBeLessThanOrEqual(1.02)
      expect(Math.max(...withH)).toBeLessThanOrEqual(2)
      expect(mean(without)).toBeGreaterThan(1.2)
    })

    it('A3: the mean of a week of reports from a static home stays one draw away; fresh noise per hour converges', () => {
      const errorOfMean = (epochS: number): number[] => {
        const run = compile({ epoch_s: epochS }, 2024)
        const errors: number[] = []
        for (let h = 0; h < 20; h++) {
          const lat = 40 + h * 0.37
          const lon = -3 + h * 0.53
          let sumLat = 0
          let sumLon = 0
          const n = 7 * 48 // every 30 min for 7 days
          for (let i = 0; i < n; i++) {
            const fix = report(run, lat, lon, start + i * 1_800_000, `home-${h}`)
            sumLat += fix.lat
            sumLon += fix.lon
          }
          // Measured from the cell centre, which is what unlimited averaging converges to (≤ 177 m from home).
          const centre = new Grid(250).centreOf(new Grid(250).cellOf(lat, lon))
          errors.push(haversine(centre.lat, centre.lon, sumLat / n, sumLon / n))
        }
        return errors
      }
      // The old behaviour (a fresh draw per 30-min window) amounts to one epoch per hour here: 168 draws a week.
      const open = errorOfMean(3600)
      const keyed = errorOfMean(30 * 86_400)
      expect(quantile(open, 0.5)).toBeLessThan(100)
      expect(quantile(keyed, 0.5)).toBeGreaterThanOrEqual(200)
      expect(mean(keyed)).toBeGreaterThanOrEqual(300)
    })
  })
})
