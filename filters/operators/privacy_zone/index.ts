import { compileAccessor, defineOperator, type Domain, isPlainObject, type Keyring, SUPPRESS } from '#veil/sdk'
import { EARTH_RADIUS_M, M_PER_DEG, RAD, readFix } from '../geo.ts'

/** Absorbs floating-point rounding so that a fix on the edge can never be closer than min_radius_m. */
const SAFETY_M = 0.01

export interface ZoneConfig {
  lat: number
  lon: number
  name?: string
}

export interface ZoneSettings {
  minRadiusM: number
  extraRadiusM: number
  maxOffsetM: number
}

/** A zone's hidden geometry. Secret: for tests and diagnostics on the gateway, never output. */
export interface DerivedZone {
  /** The fuzzed centre that suppression is measured from. */
  readonly centreLat: number
  readonly centreLon: number
  /** Great-circle distance from the true centre to the fuzzed one. */
  readonly offsetM: number
  readonly extraM: number
  /** Fixes closer than this to the fuzzed centre are suppressed: min_radius_m + offsetM + extraM. */
  readonly radiusM: number
}

/**
 * Derives a zone's secret offset and extra radius from the master key (HKDF via keyring.secretBytes): stable across
 * restarts, so the boundary never re-randomises (each new boundary would be one more sample for a circle fit), and
 * different on every gateway. env.random is deliberately not used.
 */
export function deriveZone(
  keyring: Keyring,
  domain: Domain,
  index: number | string,
  zone: ZoneConfig,
  settings: ZoneSettings,
  scope = 'privacy_zone',
): DerivedZone {
  const bytes = keyring.secretBytes(`${scope}/${domain}/${index}/${zone.lat},${zone.lon}`, 16)
  const u1 = bytes.readUInt32BE(0) / 2 ** 32
  const u2 = bytes.readUInt32BE(4) / 2 ** 32
  const u3 = bytes.readUInt32BE(8) / 2 ** 32
  // √u makes the offset uniform over the disc rather than crowded at its centre.
  const distance = settings.maxOffsetM * Math.sqrt(u1)
  const bearing = 2 * Math.PI * u2
  const [centreLat, centreLon] = destination(zone.lat, zone.lon, bearing, distance)
  // The radius uses the offset as measured by the same metric as the runtime check, so the triangle inequality
  // gives d(fix, true centre) ≥ radius − offset ≥ min_radius_m exactly, not approximately.
  const offsetM = haversineM(zone.lat, zone.lon, centreLat, centreLon)
  const extraM = settings.extraRadiusM * u3
  return { centreLat, centreLon, offsetM, extraM, radiusM: settings.minRadiusM + offsetM + extraM + SAFETY_M }
}

function destination(lat: number, lon: number, bearing: number, distanceM: number): [number, number] {
  if (distanceM === 0) return [lat, lon]
  const delta = distanceM / EARTH_RADIUS_M
  const phi1 = lat * RAD
  const sinPhi2 = Math.sin(phi1) * Math.cos(delta) + Math.cos(phi1) * Math.sin(delta) * Math.cos(bearing)
  const phi2 = Math.asin(Math.max(-1, Math.min(1, sinPhi2)))
  const lambda =
    lon * RAD +
    Math.atan2(Math.sin(bearing) * Math.sin(delta) * Math.cos(phi1), Math.cos(delta) - Math.sin(phi1) * sinPhi2)
  const lon2 = ((((lambda / RAD + 180) % 360) + 360) % 360) - 180
  return [phi2 / RAD, lon2]
}

function haversineM(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const a =
    Math.sin(((lat2 - lat1) * RAD) / 2) ** 2 +
    Math.cos(lat1 * RAD) * Math.cos(lat2 * RAD) * Math.sin(((lon2 - lon1) * RAD) / 2) ** 2
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)))
}

export interface CompiledZone {
  lat: number
  cosLat: number
  lon: number
  radiusM: number
  /** The haversine term a at the radius: comparing a avoids sqrt and asin per message. */
  aMax: number
}

/** The runtime form of a derived zone: what `insideZone` compares against. */
export function compileZone(derived: DerivedZone): CompiledZone {
  const halfAngle = derived.radiusM / (2 * EARTH_RADIUS_M)
  return {
    lat: derived.centreLat,
    cosLat: Math.cos(derived.centreLat * RAD),
    lon: derived.centreLon,
    radiusM: derived.radiusM,
    aMax: halfAngle >= Math.PI / 2 ? 1 : Math.sin(halfAngle) ** 2,
  }
}

/** Whether a fix lies strictly inside a zone; `cosY` is cos of the fix's latitude. */
export function insideZone(zone: CompiledZone, y: number, x: number, cosY: number): boolean {
  // A latitude band test rejects most fixes before any trigonometry.
  if (Math.abs(y - zone.lat) * M_PER_DEG > zone.radiusM + 1) return false
  const a = Math.sin(((y - zone.lat) * RAD) / 2) ** 2 + zone.cosLat * cosY * Math.sin(((x - zone.lon) * RAD) / 2) ** 2
  return a < zone.aMax
}

/** The settings as the loader hands them over: checked against configSchema, every default filled in. */
interface Settings {
  readonly zones: readonly ZoneConfig[]
  readonly min_radius_m: number
  readonly extra_radius_m: number
  readonly max_offset_m: number
  readonly emit?: string
  readonly lat: string
  readonly lon: string
}

export default defineOperator({
  name: 'privacy_zone',
  description: 'Suppresses fixes inside secret, fuzzed zones around configured places (home, work)',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['zones'],
    properties: {
      zones: {
        type: 'array',
        minItems: 1,
        description: 'true centres of the places to hide; from the gateway configuration',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['lat', 'lon'],
          properties: {
            lat: { type: 'number', minimum: -90, maximum: 90 },
            lon: { type: 'number', minimum: -180, maximum: 180 },
            name: { type: 'string', description: 'for error messages only; never output' },
          },
        },
      },
      min_radius_m: {
        type: 'number',
        minimum: 0,
        maximum: 100_000,
        default: 400,
        description: 'no forwarded fix is closer to a true centre',
      },
      extra_radius_m: {
        type: 'number',
        minimum: 0,
        maximum: 100_000,
        default: 200,
        description: 'secret extra radius, U(0, extra_radius_m) per zone',
      },
      max_offset_m: {
        type: 'number',
        minimum: 0,
        maximum: 100_000,
        default: 150,
        description: 'secret centre offset, uniform in a disc of this radius',
      },
      emit: {
        type: 'string',
        minLength: 1,
        maxLength: 32,
        description: 'svc only: a fix inside becomes {zone: <emit>} instead of being suppressed',
      },
      lat: { type: 'string', minLength: 1, default: 'lat', description: 'path of the latitude' },
      lon: { type: 'string', minLength: 1, default: 'lon', description: 'path of the longitude' },
    },
  },
  compile(config, env) {
    const c = config as Settings
    const zones = c.zones
    if (zones.length === 0) throw new Error('privacy_zone needs at least one zone')
    const settings: ZoneSettings = {
      minRadiusM: c.min_radius_m,
      extraRadiusM: c.extra_radius_m,
      maxOffsetM: c.max_offset_m,
    }
    for (const [key, value] of Object.entries(settings)) {
      if (!(value >= 0 && Number.isFinite(value))) throw new Error(`${key} must be a finite number ≥ 0, got ${value}`)
    }
    if (c.emit !== undefined && env.domain !== 'svc') {
      // Presence at home is itself what the zone hides; only the owner's service may learn it.
      throw new Error(
        `emit reveals that the device is inside a zone and is allowed for the svc domain only, not ${env.domain}`,
      )
    }
    const compiled: CompiledZone[] = zones.map((zone, index) => {
      const label = zone.name === undefined ? `zones/${index}` : `zones/${index} (${zone.name})`
      if (!(zone.lat >= -90 && zone.lat <= 90) || !(zone.lon >= -180 && zone.lon <= 180))
        throw new Error(`${label}: lat/lon out of range`)
      return compileZone(deriveZone(env.keyring, env.domain, index, zone, settings))
    })
    const lat = compileAccessor(c.lat)
    const lon = compileAccessor(c.lon)
    if (lat.path === lon.path) throw new Error(`lat and lon must be different paths, both are ${lat.path}`)
    const emit = c.emit

    return (doc) => {
      if (!isPlainObject(doc)) throw new Error('privacy_zone expects a JSON object')
      // Fail closed: a coordinate we cannot test against the zones is removed.
      const fix = readFix(doc, lat, lon)
      if (fix === undefined) return doc
      const { lat: y, lon: x } = fix
      const cosY = Math.cos(y * RAD)
      for (const zone of compiled) {
        if (insideZone(zone, y, x, cosY)) return emit === undefined ? SUPPRESS : { zone: emit }
      }
      return doc
    }
  },
})
