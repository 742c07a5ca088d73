import { compileAccessor, defineOperator, isPlainObject } from '#veil/sdk'
import { readFix } from '../geo.ts'

const BASE32 = '0123456789bcdefghjkmnpqrstuvwxyz'

export interface GeohashCell {
  /** Bounds in degrees; the cell is [minLat, maxLat) × [minLon, maxLon) except at the +90 and +180 edges. */
  readonly minLat: number
  readonly maxLat: number
  readonly minLon: number
  readonly maxLon: number
  readonly lat: number
  readonly lon: number
}

/** Bits of longitude and latitude in a geohash of `precision` characters (longitude takes the first bit). */
function bitsOf(precision: number): { lonBits: number; latBits: number } {
  const total = 5 * precision
  return { lonBits: Math.ceil(total / 2), latBits: Math.floor(total / 2) }
}

// The cell index is computed directly (floor of the scaled coordinate) rather than by bisection: the same cells,
// one multiplication per axis instead of 5·p comparisons.
function cellIndex(value: number, min: number, span: number, bits: number): number {
  const cells = 2 ** bits
  const index = Math.floor(((value - min) / span) * cells)
  return index >= cells ? cells - 1 : Math.max(index, 0)
}

export function geohashEncode(lat: number, lon: number, precision: number): string {
  const { lonBits, latBits } = bitsOf(precision)
  return interleave(cellIndex(lon, -180, 360, lonBits), lonBits, cellIndex(lat, -90, 180, latBits), latBits, precision)
}

// Indices have at most 30 bits (p12), so 32-bit shifts are exact.
function interleave(lonIndex: number, lonBits: number, latIndex: number, latBits: number, precision: number): string {
  let out = ''
  let lonLeft = lonBits
  let latLeft = latBits
  let even = true
  for (let c = 0; c < precision; c++) {
    let value = 0
    for (let b = 0; b < 5; b++) {
      const bit = even ? (lonIndex >>> --lonLeft) & 1 : (latIndex >>> --latLeft) & 1
      value = (value << 1) | bit
      even = !even
    }
    out += BASE32[value]
  }
  return out
}

export function geohashDecode(hash: string): GeohashCell {
  let lonIndex = 0
  let latIndex = 0
  let lonBits = 0
  let latBits = 0
  let bit = 0
  for (const char of hash.toLowerCase()) {
    const value = BASE32.indexOf(char)
    if (value < 0) throw new Error(`geohash ${hash}: "${char}" is not a geohash character`)
    for (let b = 4; b >= 0; b--, bit++) {
      const v = (value >> b) & 1
      if (bit % 2 === 0) {
        lonIndex = lonIndex * 2 + v
        lonBits++
      } else {
        latIndex = latIndex * 2 + v
        latBits++
      }
    }
  }
  return cellOf(latIndex, latBits, lonIndex, lonBits)
}

function cellOf(latIndex: number, latBits: number, lonIndex: number, lonBits: number): GeohashCell {
  const latSize = 180 / 2 ** latBits
  const lonSize = 360 / 2 ** lonBits
  const minLat = -90 + latIndex * latSize
  const minLon = -180 + lonIndex * lonSize
  // The centre uses the same expression as the operator so that decode(encode(output)) returns the output bit for bit.
  const lat = -90 + (latIndex + 0.5) * latSize
  const lon = -180 + (lonIndex + 0.5) * lonSize
  return { minLat, maxLat: minLat + latSize, minLon, maxLon: minLon + lonSize, lat, lon }
}

/** The cell of a coordinate at `precision` characters. */
export function geohashCell(lat: number, lon: number, precision: number): GeohashCell {
  const { lonBits, latBits } = bitsOf(precision)
  return cellOf(cellIndex(lat, -90, 180, latBits), latBits, cellIndex(lon, -180, 360, lonBits), lonBits)
}

/** The settings as the loader hands them over: checked against configSchema, every default filled in. */
interface Settings {
  readonly precision: number
  readonly lat: string
  readonly lon: string
  readonly emit?: string
}

export default defineOperator({
  name: 'geohash_snap',
  description: 'Replaces a fix with the centre of its geohash cell (precision 6: 1.22 × 0.61 km at the equator)',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      precision: { type: 'integer', minimum: 1, maximum: 12, default: 6, description: 'geohash characters' },
      lat: { type: 'string', minLength: 1, default: 'lat', description: 'path of the latitude' },
      lon: { type: 'string', minLength: 1, default: 'lon', description: 'path of the longitude' },
      emit: { type: 'string', minLength: 1, description: 'path that also receives the geohash string' },
    },
  },
  compile(config) {
    const c = config as Settings
    const precision = c.precision
    if (!Number.isInteger(precision) || precision < 1 || precision > 12)
      throw new Error(`precision must be an integer from 1 to 12, got ${precision}`)
    const { lonBits, latBits } = bitsOf(precision)
    const latCells = 2 ** latBits
    const lonCells = 2 ** lonBits
    const latSize = 180 / latCells
    const lonSize = 360 / lonCells
    const lat = compileAccessor(c.lat)
    const lon = compileAccessor(c.lon)
    if (lat.path === lon.path) throw new Error(`lat and lon must be different paths, both are ${lat.path}`)
    const emit = c.emit === undefined ? undefined : compileAccessor(c.emit)
    if (emit !== undefined && (emit.path === lat.path || emit.path === lon.path))
      throw new Error(`emit (${emit.path}) must differ from lat and lon`)

    return (doc) => {
      if (!isPlainObject(doc)) throw new Error('geohash_snap expects a JSON object')
      // Fail closed: a coordinate we cannot snap is removed, never forwarded precise.
      const fix = readFix(doc, lat, lon)
      if (fix === undefined) {
        // No usable fix in this message; a geohash the device sent itself must not pass as ours.
        emit?.delete(doc)
        return doc
      }
      const { lat: y, lon: x } = fix
      const latIndex = Math.min(latCells - 1, Math.floor(((y + 90) / 180) * latCells))
      const lonIndex = Math.min(lonCells - 1, Math.floor(((x + 180) / 360) * lonCells))
      lat.set(doc, -90 + (latIndex + 0.5) * latSize)
      lon.set(doc, -180 + (lonIndex + 0.5) * lonSize)
      if (emit !== undefined && !emit.set(doc, interleave(lonIndex, lonBits, latIndex, latBits, precision)))
        emit.delete(doc)
      return doc
    }
  },
})
