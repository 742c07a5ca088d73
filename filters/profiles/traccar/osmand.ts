/**
 * Traccar's OsmAnd protocol in its classic form: an HTTP query string (`id=...&lat=...&lon=...&timestamp=...&
 * speed=...`), relayed to MQTT as a text payload. It is rewritten into the protocol's JSON form (the
 * background-geolocation body), so one schema and one policy serve both: `{device_id, location: {timestamp (ISO),
 * coords: {latitude, longitude, speed (m/s), heading, altitude, accuracy}, battery: {level 0..1, is_charging},
 * extras: {<every other parameter, as text>}}}`.
 *
 * Units follow Traccar's OsmAnd decoder: `speed` is in knots (converted to m/s), `timestamp` is epoch seconds, epoch
 * milliseconds or a date-time (`2014-06-04 09:10:11`, ISO 8601; no zone means UTC); a report without one gets the
 * arrival time, as Traccar gives it the server time. `batt` is a percentage. Cell towers and Wi-Fi access points
 * (`cell=`, `wifi=`) stay in `extras`, where no shipped allowlist reaches.
 */
import { defineCodec } from '#veil/sdk'

const MS_PER_KNOT = 1852 / 3600
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/
const DIGITS = /^\d+$/
/** Parameters the JSON form has a place for; every other one goes to extras. */
const MAPPED = new Set([
  'id',
  'deviceid',
  'lat',
  'lon',
  'location',
  'timestamp',
  'speed',
  'bearing',
  'heading',
  'altitude',
  'accuracy',
  'batt',
  'charge',
])

export type OsmandResult = { readonly value: Record<string, unknown> } | { readonly problem: string }

/** Parses the query form; a repeated mapped parameter, a non-number where a number belongs or a bad date is a problem. */
export function parseOsmandQuery(text: string, nowMs: number): OsmandResult {
  const question = text.indexOf('?')
  const query = (question >= 0 ? text.slice(question + 1) : text).trim()
  let params: URLSearchParams
  try {
    params = new URLSearchParams(query)
  } catch {
    return { problem: 'not a query string' }
  }
  const single = new Map<string, string>()
  const extras: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>
  for (const [key, value] of params) {
    if (key === '') continue
    if (MAPPED.has(key)) {
      if (single.has(key)) return { problem: `${key} given twice` }
      single.set(key, value)
      continue
    }
    const existing = extras[key]
    extras[key] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value]
  }
  const id = single.get('id') ?? single.get('deviceid')
  if (id === undefined || id === '') return { problem: 'no id or deviceid' }
  let lat = single.get('lat')
  let lon = single.get('lon')
  const location = single.get('location')
  if (location !== undefined) [lat, lon] = location.split(',')
  const coords: Record<string, number> = Object.create(null) as Record<string, number>
  for (const [name, text] of [
    ['latitude', lat],
    ['longitude', lon],
  ] as const) {
    if (text === undefined || !NUMBER.test(text)) return { problem: `${name} missing or not a number` }
    coords[name] = Number(text)
  }
  const numbers: [string, string, number][] = [
    ['speed', 'speed', MS_PER_KNOT],
    ['heading', 'bearing', 1],
    ['heading', 'heading', 1],
    ['altitude', 'altitude', 1],
    ['accuracy', 'accuracy', 1],
  ]
  for (const [field, param, factor] of numbers) {
    const text = single.get(param)
    if (text === undefined) continue
    if (!NUMBER.test(text)) return { problem: `${param} is not a number` }
    coords[field] = Number(text) * factor
  }
  const timestamp = parseTimestamp(single.get('timestamp'), nowMs)
  if (timestamp === undefined) return { problem: 'timestamp is not epoch seconds, milliseconds or a date-time' }
  const out: Record<string, unknown> = { timestamp, coords }
  const batt = single.get('batt')
  const charge = single.get('charge')
  if (batt !== undefined || charge !== undefined) {
    const battery: Record<string, unknown> = {}
    if (batt !== undefined) {
      if (!NUMBER.test(batt)) return { problem: 'batt is not a number' }
      battery.level = Number(batt) / 100
    }
    if (charge !== undefined) battery.is_charging = charge === 'true' || charge === '1'
    out.battery = battery
  }
  out.extras = extras
  return { value: { location: out, device_id: id } }
}

function parseTimestamp(text: string | undefined, nowMs: number): string | undefined {
  if (text === undefined || text === '') return new Date(nowMs).toISOString()
  let ms: number
  if (DIGITS.test(text)) {
    const n = Number(text)
    // Traccar: a value that fits in 32 bits is seconds, a larger one milliseconds.
    ms = n <= 2_147_483_647 ? n * 1000 : n
  } else {
    const zoned = /([zZ]|[+-]\d\d:?\d\d)$/.test(text) ? text : `${text}Z`
    ms = Date.parse(zoned.replace(' ', 'T'))
  }
  return Number.isFinite(ms) && ms >= 0 && ms < 8.64e15 ? new Date(ms).toISOString() : undefined
}

/** A JSON body is read as `json` (same depth check); anything else as the query form. */
export const osmandCodec = defineCodec<undefined>({
  name: 'osmand',
  decode(msg, helpers) {
    const text = helpers.utf8Text(msg.payload).trim()
    if (text.startsWith('{')) return helpers.parseJson(text, msg)
    const parsed = parseOsmandQuery(text, msg.nowMs)
    if ('problem' in parsed) return 'undecodable'
    msg.doc = parsed.value
    return undefined
  },
})
