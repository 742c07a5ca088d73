import { defineOperator } from '../../../gateway/src/policy/operator.ts'
import { DeviceState } from '../../../gateway/src/policy/state.ts'
import { compileAccessor, isPlainObject } from '../../../gateway/src/profiles/path.ts'
import { M_PER_DEG, RAD, readFix } from '../geo.ts'

const TWO_PI = 2 * Math.PI

interface Cached {
  trueLat: number
  trueLon: number
  noisyLat: number
  noisyLon: number
  atMs: number
}

interface Config {
  radius_m?: number
  cache_s?: number
  lat?: string
  lon?: string
}

/**
 * Planar Laplace radius: Gamma(2, 1/ε), i.e. the sum of two Exp(ε). Equivalent to Andrés et al.'s inverse CDF
 * with Lambert W₋₁, without needing W. `1 − u` keeps log away from 0.
 */
export function laplaceRadius(epsilon: number, random: () => number): number {
  return -(Math.log(1 - random()) + Math.log(1 - random())) / epsilon
}

/** Equirectangular distance; exact enough at the few-km scale the cache compares. */
function distanceM(lat1: number, lon1: number, lat2: number, lon2: number): number {
  let dLon = Math.abs(lon2 - lon1)
  if (dLon > 180) dLon = 360 - dLon
  const x = dLon * M_PER_DEG * Math.cos(((lat1 + lat2) / 2) * RAD)
  const y = (lat2 - lat1) * M_PER_DEG
  return Math.sqrt(x * x + y * y)
}

export default defineOperator({
  name: 'geo_ind',
  description: 'Geo-indistinguishability: planar Laplace noise (ε = 2/radius_m) with a per-device cache against averaging',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      radius_m: { type: 'number', exclusiveMinimum: 0, maximum: 100_000, default: 500, description: 'mean displacement; ε = 2 / radius_m' },
      cache_s: { type: 'number', minimum: 0, maximum: 604_800, default: 1800, description: 'how long a noisy fix is re-served; 0 disables the cache' },
      lat: { type: 'string', minLength: 1, default: 'lat', description: 'path of the latitude' },
      lon: { type: 'string', minLength: 1, default: 'lon', description: 'path of the longitude' },
    },
  },
  compile(config, env) {
    const c = (config ?? {}) as Config
    const radiusM = c.radius_m ?? 500
    const cacheMs = (c.cache_s ?? 1800) * 1000
    if (!(radiusM > 0 && Number.isFinite(radiusM))) throw new Error(`radius_m must be a positive number, got ${radiusM}`)
    if (!(cacheMs >= 0 && Number.isFinite(cacheMs))) throw new Error(`cache_s must be zero or positive, got ${c.cache_s}`)
    const epsilon = 2 / radiusM
    const lat = compileAccessor(c.lat ?? 'lat')
    const lon = compileAccessor(c.lon ?? 'lon')
    if (lat.path === lon.path) throw new Error(`lat and lon must be different paths, both are ${lat.path}`)
    const random = env.random
    const cache = new DeviceState<Cached>()

    return (doc, ctx) => {
      if (!isPlainObject(doc)) throw new Error('geo_ind expects a JSON object')
      // Fail closed: a coordinate we cannot perturb is removed, never forwarded precise.
      const fix = readFix(doc, lat, lon)
      if (fix === undefined) return doc
      const { lat: y, lon: x } = fix
      if (cacheMs > 0) {
        const hit = cache.get(ctx.deviceId)
        // Re-serving the same noisy fix while the device stays put means n reports carry one sample, not n
        // (privacy.md A3). A clock that runs backwards still counts as inside the window: fewer fresh samples.
        if (hit !== undefined && Math.abs(ctx.nowMs - hit.atMs) < cacheMs && distanceM(y, x, hit.trueLat, hit.trueLon) <= radiusM) {
          lat.set(doc, hit.noisyLat)
          lon.set(doc, hit.noisyLon)
          return doc
        }
      }
      const r = laplaceRadius(epsilon, random)
      const theta = TWO_PI * random()
      let noisyLat = y + (r * Math.sin(theta)) / M_PER_DEG
      // Near the poles a metre of easting is many degrees; the floor on cos keeps the result finite.
      let noisyLon = x + (r * Math.cos(theta)) / (M_PER_DEG * Math.max(Math.cos(y * RAD), 1e-6))
      if (noisyLat > 90) noisyLat = 90
      else if (noisyLat < -90) noisyLat = -90
      if (noisyLon > 180 || noisyLon < -180) noisyLon = ((((noisyLon + 180) % 360) + 360) % 360) - 180
      if (cacheMs > 0) cache.set(ctx.deviceId, { trueLat: y, trueLon: x, noisyLat, noisyLon, atMs: ctx.nowMs })
      lat.set(doc, noisyLat)
      lon.set(doc, noisyLon)
      return doc
    }
  },
})
