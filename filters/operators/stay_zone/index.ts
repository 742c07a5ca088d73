import { compileAccessor, defineOperator, DeviceState, isPlainObject, SUPPRESS } from '#veil/sdk'
import { M_PER_DEG, RAD, readFix } from '../geo.ts'
import { type CompiledZone, type ZoneSettings, compileZone, deriveZone, insideZone } from '../privacy_zone/index.ts'

/** A place the device has dwelt at: a zone with privacy_zone's fuzzed geometry, and when it was last visited. */
interface LearnedZone {
  zone: CompiledZone
  visitedMs: number
}

/**
 * What is kept per device: the stay in progress (where it started, when, and a running centroid: sums, not a
 * trace) and the learned zones. Nothing else of the track is remembered.
 */
interface Stays {
  anchorLat: number
  anchorCos: number
  anchorLon: number
  startMs: number
  sumLat: number
  sumLon: number
  n: number
  zones: LearnedZone[]
}

/** The settings as the loader hands them over: checked against configSchema, every default filled in. */
interface Settings {
  readonly enabled: boolean
  readonly stay_radius_m: number
  readonly dwell_s: number
  readonly max_zones: number
  readonly min_radius_m: number
  readonly extra_radius_m: number
  readonly max_offset_m: number
  readonly lat: string
  readonly lon: string
}

/** Equirectangular distance in metres; exact enough at the few-hundred-metre scale of a stay. */
function distanceM(lat1: number, lon1: number, cos1: number, lat2: number, lon2: number): number {
  let dLon = Math.abs(lon2 - lon1)
  if (dLon > 180) dLon = 360 - dLon
  const x = dLon * M_PER_DEG * cos1
  const y = (lat2 - lat1) * M_PER_DEG
  return Math.sqrt(x * x + y * y)
}

/** Centroids are kept to 1e-4° (≈ 11 m): the zone's secret offset and extra radius dwarf it, and it is a cell. */
const snap = (v: number) => Math.round(v * 1e4) / 1e4

export default defineOperator({
  name: 'stay_zone',
  description: 'Learns the places a device dwells and suppresses its fixes there, like configured privacy zones',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      enabled: {
        type: 'boolean',
        default: true,
        description: 'false turns learning and suppression off ($stay_zones)',
      },
      stay_radius_m: {
        type: 'number',
        minimum: 10,
        maximum: 5000,
        default: 200,
        description: 'fixes within this of where a stay began belong to it',
      },
      dwell_s: {
        type: 'number',
        minimum: 60,
        maximum: 86_400,
        default: 1800,
        description: 'a stay this long becomes a learned zone',
      },
      max_zones: {
        type: 'integer',
        minimum: 1,
        maximum: 64,
        default: 8,
        description: 'learned zones per device; the least recently visited is forgotten',
      },
      min_radius_m: {
        type: 'number',
        minimum: 0,
        maximum: 100_000,
        default: 400,
        description: 'no forwarded fix is closer to a learned centre',
      },
      extra_radius_m: {
        type: 'number',
        minimum: 0,
        maximum: 100_000,
        default: 200,
        description: 'secret extra radius, as privacy_zone',
      },
      max_offset_m: {
        type: 'number',
        minimum: 0,
        maximum: 100_000,
        default: 150,
        description: 'secret centre offset, as privacy_zone',
      },
      lat: { type: 'string', minLength: 1, default: 'lat', description: 'path of the latitude' },
      lon: { type: 'string', minLength: 1, default: 'lon', description: 'path of the longitude' },
    },
  },
  compile(config, env) {
    const c = config as Settings
    const stayM = c.stay_radius_m
    const dwellMs = c.dwell_s * 1000
    const maxZones = c.max_zones
    const settings: ZoneSettings = {
      minRadiusM: c.min_radius_m,
      extraRadiusM: c.extra_radius_m,
      maxOffsetM: c.max_offset_m,
    }
    for (const [name, value] of Object.entries({ stayM, dwellMs, ...settings })) {
      if (!(value >= 0 && Number.isFinite(value))) throw new Error(`${name} must be a finite number ≥ 0, got ${value}`)
    }
    if (!(Number.isInteger(maxZones) && maxZones >= 1))
      throw new Error(`max_zones must be an integer ≥ 1, got ${maxZones}`)
    const lat = compileAccessor(c.lat)
    const lon = compileAccessor(c.lon)
    if (lat.path === lon.path) throw new Error(`lat and lon must be different paths, both are ${lat.path}`)
    if (c.enabled === false) return (doc) => doc
    // Memory only: learned zones are lost on restart and relearned after one dwell. Nothing is written to disk, so
    // erasure has nothing to remove and the data directory holds no map of where a device lives.
    const state = new DeviceState<Stays>()

    return (doc, ctx) => {
      if (!isPlainObject(doc)) throw new Error('stay_zone expects a JSON object')
      // Fail closed: a coordinate we cannot test is removed.
      const fix = readFix(doc, lat, lon)
      if (fix === undefined) return doc
      const { lat: y, lon: x } = fix
      const cosY = Math.cos(y * RAD)
      const now = ctx.nowMs
      const stays = state.get(ctx.deviceId)
      if (stays === undefined) {
        // The first fix of a device (or after eviction or a restart) may be at home: it starts a stay and leaves
        // nothing, like every fix that does not show the device moving.
        state.set(ctx.deviceId, {
          anchorLat: y,
          anchorCos: cosY,
          anchorLon: x,
          startMs: now,
          sumLat: y,
          sumLon: x,
          n: 1,
          zones: [],
        })
        return SUPPRESS
      }
      let inside = false
      for (const learned of stays.zones) {
        if (insideZone(learned.zone, y, x, cosY)) {
          learned.visitedMs = now
          inside = true
        }
      }
      if (distanceM(stays.anchorLat, stays.anchorLon, stays.anchorCos, y, x) <= stayM) {
        // Still where the stay began: a device that is not moving says nothing new, so nothing leaves.
        stays.sumLat += y
        stays.sumLon += x
        stays.n++
        if (Math.abs(now - stays.startMs) >= dwellMs && stays.n >= 2) learn(stays, ctx.deviceId, now)
        return SUPPRESS
      }
      // Moved: a new stay may begin here.
      stays.anchorLat = y
      stays.anchorCos = cosY
      stays.anchorLon = x
      stays.startMs = now
      stays.sumLat = y
      stays.sumLon = x
      stays.n = 1
      return inside ? SUPPRESS : doc
    }

    function learn(stays: Stays, deviceId: string, now: number): void {
      const centre = { lat: snap(stays.sumLat / stays.n), lon: snap(stays.sumLon / stays.n) }
      const cos = Math.cos(centre.lat * RAD)
      for (const learned of stays.zones) {
        // Already known (the centroid lies within the existing zone's core): a longer stay adds no zone.
        if (insideZone(learned.zone, centre.lat, centre.lon, cos)) {
          learned.visitedMs = now
          return
        }
      }
      // privacy_zone's geometry, keyed per device and place: stable across restarts for the same centroid.
      const zone = compileZone(deriveZone(env.keyring, env.domain, deviceId, centre, settings, 'stay_zone'))
      if (stays.zones.length >= maxZones) {
        let oldest = 0
        stays.zones.forEach((z, i) => {
          if (z.visitedMs < (stays.zones[oldest]?.visitedMs ?? Number.POSITIVE_INFINITY)) oldest = i
        })
        stays.zones.splice(oldest, 1)
      }
      stays.zones.push({ zone, visitedMs: now })
    }
  },
})
