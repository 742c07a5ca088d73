/**
 * Phones reporting to Traccar with the OsmAnd protocol, relayed from HTTP to MQTT on `traccar/osmand`. The device
 * id is an IMEI-like number in the payload. Even-indexed devices run the background-geolocation SDK and send the
 * JSON form (`{"location":{timestamp, coords{latitude, longitude, speed m/s, ...}, battery, ...},"device_id"}`);
 * odd-indexed ones send the classic query-string form (`id=...&timestamp=<epoch s>&lat=&lon=&speed=<knots>&...`)
 * with the strongest neighbouring Wi-Fi access point and the serving cell. A tick is one report; the phone rests
 * at home and now and then walks or drives a loop.
 */
import { bssidCanary, checkDeviceCount } from '../canary.ts'
import { jsonMessage, round, textMessage } from '../format.ts'
import type { Json } from '../format.ts'
import { Roamer } from '../geo.ts'
import { deriveSeed, Rng } from '../random.ts'
import type { ClientIdentity, SimDevice, SimMessage, SimulatorProfile } from '../types.ts'

export const TRACCAR_TOPIC = 'traccar/osmand'
const IMEI_PREFIX = '359870'
const PROFILE_CODE = 0x09
const KNOTS_PER_MS = 1.943_844_5

class TraccarPhone implements SimDevice {
  readonly id: string
  readonly canaries: readonly string[]
  readonly #rng: Rng
  readonly #roamer: Roamer
  readonly #query: boolean
  readonly #accessPoint: string
  #battery: number
  #odometer = 0
  #last: { lat: number; lon: number } | undefined

  constructor(index: number, seed: number) {
    this.#rng = new Rng(deriveSeed(seed, 'traccar', index))
    this.id = `${IMEI_PREFIX}${String(index).padStart(9, '0')}`
    this.#query = index % 2 === 1
    this.#accessPoint = bssidCanary(PROFILE_CODE, index, true).replaceAll(':', '-')
    this.canaries = this.#query ? [this.id, this.#accessPoint] : [this.id]
    this.#roamer = new Roamer(this.#rng, { speedsKmh: [5, 40], radiusM: 6_000, homeTicks: [3, 6] })
    this.#battery = this.#rng.float(0.4, 1)
  }

  start(): SimMessage[] {
    return []
  }

  tick(nowMs: number): SimMessage[] {
    const fix = this.#roamer.advance(nowMs)
    const lat = round(fix.position.lat, 7)
    const lon = round(fix.position.lon, 7)
    if (this.#last !== undefined)
      this.#odometer += Math.hypot(
        (lat - this.#last.lat) * 111_320,
        (lon - this.#last.lon) * 111_320 * Math.cos((lat * Math.PI) / 180),
      )
    this.#last = { lat, lon }
    this.#battery = fix.moving ? Math.max(0.05, this.#battery - 0.004) : Math.min(1, this.#battery + 0.01)
    const altitude = round(this.#rng.gaussian(40, 3), 1)
    const accuracy = fix.moving ? this.#rng.int(3, 15) : this.#rng.int(10, 40)
    if (this.#query) {
      const fields = [
        `id=${this.id}`,
        `timestamp=${Math.floor(nowMs / 1000)}`,
        `lat=${lat}`,
        `lon=${lon}`,
        `speed=${round(fix.speedMs * KNOTS_PER_MS, 1)}`,
        `bearing=${round(fix.course, 1)}`,
        `altitude=${altitude}`,
        `accuracy=${accuracy}`,
        `batt=${Math.round(this.#battery * 100)}`,
      ]
      // The app adds the access point it sees best while at home, and always the serving cell (MCC,MNC,LAC,CID).
      if (!fix.moving) fields.push(`wifi=${this.#accessPoint},${this.#rng.int(-80, -45)}`)
      fields.push(`cell=262,01,${this.#rng.int(1000, 9999)},${this.#rng.int(10000, 99999)}`)
      return [textMessage(TRACCAR_TOPIC, fields.join('&'), 1, false)]
    }
    const timestamp = new Date(nowMs).toISOString()
    const body: Json = {
      location: {
        timestamp,
        coords: {
          latitude: lat,
          longitude: lon,
          accuracy,
          speed: fix.moving ? round(fix.speedMs, 2) : -1,
          heading: fix.moving ? round(fix.course, 1) : -1,
          altitude,
        },
        is_moving: fix.moving,
        odometer: round(this.#odometer, 1),
        event: fix.moving ? undefined : 'motionchange',
        battery: { level: round(this.#battery, 2), is_charging: !fix.moving },
        activity: { type: !fix.moving ? 'still' : fix.speedMs > 5 ? 'in_vehicle' : 'on_foot' },
        uuid: this.#rng.uuid().toUpperCase(),
        extras: {},
        // The SDK's echo of the query it would have sent: it names the device again.
        _: `&id=${this.id}&lat=${lat}&lon=${lon}&timestamp=${timestamp}&`,
      },
      device_id: this.id,
    }
    return [jsonMessage(TRACCAR_TOPIC, body, 1, false)]
  }
}

export const traccarProfile: SimulatorProfile = {
  name: 'traccar',
  category: 'gps_tracker',
  description:
    'Traccar OsmAnd reports relayed to MQTT: JSON bodies (speed m/s) and query strings (speed in knots, Wi-Fi AP, cell)',
  variants: 2,
  createDevices(count: number, seed: number): SimDevice[] {
    checkDeviceCount('traccar', count)
    return Array.from({ length: count }, (_, i) => new TraccarPhone(i, seed))
  },
}

/** One HTTP-to-MQTT relay client per phone. */
export function traccarIdentity(device: SimDevice): ClientIdentity {
  return { clientId: `osmand-relay-${device.id.slice(-4)}`, clean: true }
}
