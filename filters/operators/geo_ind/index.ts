import { createHmac } from 'node:crypto'
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
  /** The noise cell the device was last placed in (kept with hysteresis), for keyed noise. */
  cellI: number
  cellJ: number
}

interface Config {
  radius_m?: number
  cache_s?: number
  epoch_s?: number
  cell_m?: number
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

/** Uniform in [0, 1) from 32 bits of a keyed digest. */
const unit = (digest: Buffer, offset: number) => digest.readUInt32BE(offset) / 2 ** 32

/**
 * Index of the noise cell a fix lies in, in fractional cells: rows of cell_m metres of latitude, columns of cell_m
 * metres of longitude measured at the row's centre (so cells stay about square away from the equator).
 */
function cellCoords(lat: number, lon: number, cellM: number): [number, number] {
  const fi = (lat * M_PER_DEG) / cellM
  const rowLat = ((Math.floor(fi) + 0.5) * cellM) / M_PER_DEG
  const fj = (lon * M_PER_DEG * Math.max(Math.cos(rowLat * RAD), 1e-6)) / cellM
  return [fi, fj]
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
      epoch_s: { type: 'number', minimum: 0, maximum: 31_622_400, default: 2_592_000, description: 'noise epoch: within one, a device in one cell always gets the same noise; 0 draws fresh noise from env.random (no protection against averaging)' },
      cell_m: { type: 'number', minimum: 10, maximum: 100_000, default: 250, description: 'size of the cells that share one keyed draw' },
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
    const epochMs = (c.epoch_s ?? 2_592_000) * 1000
    const cellM = c.cell_m ?? 250
    if (!(epochMs >= 0 && Number.isFinite(epochMs))) throw new Error(`epoch_s must be zero or positive, got ${c.epoch_s}`)
    if (!(cellM >= 10 && Number.isFinite(cellM))) throw new Error(`cell_m must be a number ≥ 10, got ${c.cell_m}`)
    const random = env.random
    // Keyed noise: one secret per domain and stream, from the master key. Never stored, never output.
    const noiseKey = env.keyring.secretBytes(`geo_ind/${env.domain}/${env.streamKey}`, 32)
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
      const prior = cache.get(ctx.deviceId)
      let cellI = 0
      let cellJ = 0
      let r: number
      let theta: number
      if (epochMs > 0) {
        // The same device in the same cell in the same epoch always gets the same noise vector, so repeated
        // reports of one place carry one sample per epoch, not one per cache window (issue 13.1). The cell is kept
        // with half a cell of hysteresis: a phone at home whose fixes jitter across a cell edge stays in one cell
        // and so on one draw.
        const [fi, fj] = cellCoords(y, x, cellM)
        cellI = Math.floor(fi)
        cellJ = Math.floor(fj)
        if (prior !== undefined && fi >= prior.cellI - 0.5 && fi < prior.cellI + 1.5 && fj >= prior.cellJ - 0.5 && fj < prior.cellJ + 1.5) {
          cellI = prior.cellI
          cellJ = prior.cellJ
        }
        const epoch = Math.floor(ctx.nowMs / epochMs)
        const digest = createHmac('sha256', noiseKey).update(`${ctx.deviceId}\u0000${cellI}\u0000${cellJ}\u0000${epoch}`).digest()
        // Two Exp(ε) from two uniforms, as laplaceRadius does, and a uniform angle.
        r = -(Math.log(1 - unit(digest, 0)) + Math.log(1 - unit(digest, 4))) / epsilon
        theta = TWO_PI * unit(digest, 8)
      } else {
        r = laplaceRadius(epsilon, random)
        theta = TWO_PI * random()
      }
      let noisyLat = y + (r * Math.sin(theta)) / M_PER_DEG
      // Near the poles a metre of easting is many degrees; the floor on cos keeps the result finite.
      let noisyLon = x + (r * Math.cos(theta)) / (M_PER_DEG * Math.max(Math.cos(y * RAD), 1e-6))
      if (noisyLat > 90) noisyLat = 90
      else if (noisyLat < -90) noisyLat = -90
      if (noisyLon > 180 || noisyLon < -180) noisyLon = ((((noisyLon + 180) % 360) + 360) % 360) - 180
      if (cacheMs > 0 || epochMs > 0) cache.set(ctx.deviceId, { trueLat: y, trueLon: x, noisyLat, noisyLon, atMs: ctx.nowMs, cellI, cellJ })
      lat.set(doc, noisyLat)
      lon.set(doc, noisyLon)
      return doc
    }
  },
})
