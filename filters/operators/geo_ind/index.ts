import { createHmac } from 'node:crypto'
import { compileAccessor, defineOperator, DeviceState, isPlainObject } from '#veil/sdk'
import { M_PER_DEG, RAD, readFix } from '../geo.ts'

const TWO_PI = 2 * Math.PI

/** The settings as the loader hands them over: checked against configSchema, every default filled in. */
interface Settings {
  readonly radius_m: number
  readonly cell_m: number
  readonly epoch_s: number
  readonly lat: string
  readonly lon: string
}

/** A cell of the snapping grid: its row and column. The grid is fixed, so a cell names a place. */
export interface Cell {
  row: number
  col: number
}

/** What a device last used: its sticky cell and the noise drawn for it, so a static device costs no HMAC. */
interface Sticky {
  cell: Cell
  /** The device's keyed epoch phase in [0, 1), computed once per device. */
  phase: number
  epoch: number
  noisyLat: number
  noisyLon: number
}

/**
 * Planar Laplace radius: Gamma(2, 1/ε), i.e. the sum of two Exp(ε). Equivalent to Andrés et al.'s inverse CDF
 * with Lambert W₋₁, without needing W. `1 − u` keeps log away from 0 (u < 1 always).
 */
export function laplaceRadius(epsilon: number, u1: number, u2: number): number {
  return -(Math.log(1 - u1) + Math.log(1 - u2)) / epsilon
}

/**
 * The grid: rows of `cellM` metres of latitude; each row is cut into columns of about `cellM` metres at the row's
 * centre latitude, so a cell's width does not depend on where in the row a fix lies.
 */
export class Grid {
  readonly dLat: number
  constructor(readonly cellM: number) {
    this.dLat = cellM / M_PER_DEG
  }

  #dLon(row: number): number {
    const centre = Math.max(-90, Math.min(90, (row + 0.5) * this.dLat))
    return Math.min(360, this.dLat / Math.max(Math.cos(centre * RAD), 1e-6))
  }

  cellOf(lat: number, lon: number): Cell {
    const row = Math.floor(lat / this.dLat)
    return { row, col: Math.floor((lon + 180) / this.#dLon(row)) }
  }

  centreOf(cell: Cell): { lat: number; lon: number } {
    const lat = Math.max(-90, Math.min(90, (cell.row + 0.5) * this.dLat))
    const lon = Math.min(180, -180 + (cell.col + 0.5) * this.#dLon(cell.row))
    return { lat, lon }
  }

  /** Whether a fix lies in `cell` or within `marginM` of it (in metres, north–south and east–west). */
  nearCell(cell: Cell, lat: number, lon: number, marginM: number): boolean {
    const dLon = this.#dLon(cell.row)
    const south = cell.row * this.dLat
    const west = -180 + cell.col * dLon
    const mLat = marginM / M_PER_DEG
    const mLon = (mLat * dLon) / this.dLat
    return lat >= south - mLat && lat <= south + this.dLat + mLat && lon >= west - mLon && lon <= west + dLon + mLon
  }
}

export default defineOperator({
  name: 'geo_ind',
  description:
    'Geo-indistinguishability: planar Laplace noise (ε = 2/radius_m), one keyed draw per device, cell and epoch',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      radius_m: {
        type: 'number',
        exclusiveMinimum: 0,
        maximum: 100_000,
        default: 500,
        description: 'mean displacement; ε = 2 / radius_m',
      },
      cell_m: {
        type: 'number',
        minimum: 10,
        maximum: 10_000,
        default: 250,
        description: 'size of the cells a fix is snapped to before the noise; one draw per cell',
      },
      epoch_s: {
        type: 'number',
        minimum: 3600,
        maximum: 31_536_000,
        default: 2_592_000,
        description: 'how long a cell keeps its noisy point; a new draw per epoch',
      },
      lat: { type: 'string', minLength: 1, default: 'lat', description: 'path of the latitude' },
      lon: { type: 'string', minLength: 1, default: 'lon', description: 'path of the longitude' },
    },
  },
  compile(config, env) {
    const c = config as Settings
    const radiusM = c.radius_m
    const cellM = c.cell_m
    const epochS = c.epoch_s
    if (!(radiusM > 0 && Number.isFinite(radiusM)))
      throw new Error(`radius_m must be a positive number, got ${radiusM}`)
    if (!(cellM >= 10 && Number.isFinite(cellM))) throw new Error(`cell_m must be a number ≥ 10, got ${c.cell_m}`)
    if (!(epochS >= 3600 && Number.isFinite(epochS)))
      throw new Error(`epoch_s must be a number ≥ 3600, got ${c.epoch_s}`)
    const epsilon = 2 / radiusM
    const epochMs = epochS * 1000
    const lat = compileAccessor(c.lat)
    const lon = compileAccessor(c.lon)
    if (lat.path === lon.path) throw new Error(`lat and lon must be different paths, both are ${lat.path}`)
    const grid = new Grid(cellM)
    // A phone at home jitters by tens of metres; a device keeps its cell while it stays within half a cell of it,
    // so a static place near a cell edge still yields one draw, not one per side of the edge.
    const marginM = cellM / 2
    // The noise is a keyed function, not env.random: the same device in the same cell and epoch always gets the
    // same noisy point, across messages, restarts and streams of a domain, so repeated samples add nothing. The key
    // comes from the master key (HKDF), differs per domain and gateway, and is never stored.
    const key = env.keyring.secretBytes(`geo_ind/v2/${env.domain}`, 32)
    const sticky = new DeviceState<Sticky>()

    // Epochs start at a keyed phase per device, so not all devices' noise changes at the same moment.
    const phaseOf = (deviceId: string): number =>
      createHmac('sha256', key).update(`phase|${deviceId}`).digest().readUInt32BE(0) / 2 ** 32

    const draw = (deviceId: string, cell: Cell, phase: number, epoch: number): Sticky => {
      const bytes = createHmac('sha256', key).update(`noise|${deviceId}|${cell.row}|${cell.col}|${epoch}`).digest()
      // 53-bit uniforms in [0, 1) from the HMAC output: the radius law is exact, not 32-bit coarse.
      const uniform = (at: number) => (bytes.readUInt32BE(at) * 2 ** 21 + (bytes.readUInt32BE(at + 4) >>> 11)) / 2 ** 53
      const r = laplaceRadius(epsilon, uniform(0), uniform(8))
      const theta = TWO_PI * uniform(16)
      const centre = grid.centreOf(cell)
      let noisyLat = centre.lat + (r * Math.sin(theta)) / M_PER_DEG
      // Near the poles a metre of easting is many degrees; the floor on cos keeps the result finite.
      let noisyLon = centre.lon + (r * Math.cos(theta)) / (M_PER_DEG * Math.max(Math.cos(centre.lat * RAD), 1e-6))
      if (noisyLat > 90) noisyLat = 90
      else if (noisyLat < -90) noisyLat = -90
      if (noisyLon > 180 || noisyLon < -180) noisyLon = ((((noisyLon + 180) % 360) + 360) % 360) - 180
      return { cell, phase, epoch, noisyLat, noisyLon }
    }

    return (doc, ctx) => {
      if (!isPlainObject(doc)) throw new Error('geo_ind expects a JSON object')
      // Fail closed: a coordinate we cannot perturb is removed, never forwarded precise.
      const fix = readFix(doc, lat, lon)
      if (fix === undefined) return doc
      const last = sticky.get(ctx.deviceId)
      const phase = last?.phase ?? phaseOf(ctx.deviceId)
      const epoch = Math.floor(ctx.nowMs / epochMs + phase)
      let out: Sticky
      if (last !== undefined && grid.nearCell(last.cell, fix.lat, fix.lon, marginM)) {
        out = last.epoch === epoch ? last : draw(ctx.deviceId, last.cell, phase, epoch)
      } else {
        out = draw(ctx.deviceId, grid.cellOf(fix.lat, fix.lon), phase, epoch)
      }
      if (out !== last) sticky.set(ctx.deviceId, out)
      lat.set(doc, out.noisyLat)
      lon.set(doc, out.noisyLon)
      return doc
    }
  },
})
