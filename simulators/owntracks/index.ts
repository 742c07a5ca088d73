/**
 * Phone running the OwnTracks app (Android flavour): `_type:"location"` on `owntracks/<user>/<device>` (QoS 1,
 * retained, the app's defaults) and `_type:"transition"` on `.../event` when it leaves or enters the "Home" region.
 * The phone rests at home on Wi-Fi for a few ticks, then walks or drives a loop and comes back; positions follow
 * real time, so `vel` agrees with the distance between consecutive fixes.
 */
import { bssidCanary, checkDeviceCount, hexCanary, listCanary, ssidCanary } from '../canary.ts'
import { epochSeconds, jsonMessage, round } from '../format.ts'
import type { Json } from '../format.ts'
import { bearing, CITIES as ALL_CITIES, distanceM, offset, positionAlong, type LatLon } from '../geo.ts'
import { deriveSeed, Rng } from '../random.ts'
import type { ClientIdentity, SimDevice, SimMessage, SimulatorProfile } from '../types.ts'

const USER_NAMES = ['canaryalice', 'canarypeggy', 'canarytrent', 'canaryvictor', 'canarywalter', 'canarysybil']
const SSID_BASE = 0x3c20
const PROFILE_CODE = 0x05
/** The first three of geo.ts's cities, so a seed keeps the home it had before geo.ts added a fourth. */
const CITIES = ALL_CITIES.slice(0, 3)

interface Trip {
  readonly mode: 'walk' | 'drive'
  readonly speedKmh: number
  /** Closed loop starting and ending at home. */
  readonly points: readonly LatLon[]
  /** Cumulative distance in metres at each point. */
  readonly distances: readonly number[]
  travelled: number
}

interface Fix {
  readonly position: LatLon
  readonly course: number
}

class OwnTracksPhone implements SimDevice {
  readonly id: string
  readonly canaries: readonly string[]
  readonly #rng: Rng
  readonly #user: string
  readonly #device: string
  readonly #tid: string
  readonly #ssid: string
  readonly #bssid: string
  readonly #home: LatLon
  readonly #rid: string
  readonly #topic: string
  readonly #regionCreatedS: number
  #trip: Trip | undefined
  #homeTicksLeft: number
  #lastMs: number | undefined
  #battery: number

  constructor(index: number, seed: number) {
    this.#rng = new Rng(deriveSeed(seed, 'owntracks', index))
    this.#user = listCanary(USER_NAMES, index, (hex) => `canarytracker${hex.toLowerCase()}`)
    this.#device = `canaryphone${hexCanary(0, index, 4).toLowerCase()}`
    this.id = `${this.#user}/${this.#device}`
    this.#topic = `owntracks/${this.id}`
    // The app's default tracker id is the last two characters of the device id.
    this.#tid = this.#device.slice(-2)
    this.#ssid = ssidCanary(SSID_BASE, index)
    this.#bssid = bssidCanary(PROFILE_CODE, index, false)
    this.canaries = [this.#user, this.#device, this.#ssid, this.#bssid]
    const city = this.#rng.pick(CITIES)
    this.#home = { lat: city.lat + this.#rng.float(-0.03, 0.03), lon: city.lon + this.#rng.float(-0.05, 0.05) }
    this.#rid = this.#rng.bytes(3).toString('hex')
    this.#regionCreatedS = 1_700_000_000 + this.#rng.int(0, 10_000_000)
    this.#homeTicksLeft = this.#rng.int(3, 6)
    this.#battery = this.#rng.int(55, 100)
  }

  start(): SimMessage[] {
    return []
  }

  tick(nowMs: number): SimMessage[] {
    const elapsedMs = Math.max(0, nowMs - (this.#lastMs ?? nowMs))
    this.#lastMs = Math.max(nowMs, this.#lastMs ?? nowMs)
    const trip = this.#trip
    if (trip === undefined) return this.#atHome(nowMs)
    trip.travelled += (trip.speedKmh / 3.6) * (elapsedMs / 1000)
    const total = trip.distances[trip.distances.length - 1] ?? 0
    if (trip.travelled >= total) return this.#arrive(nowMs)
    this.#battery = Math.max(5, this.#battery - (this.#rng.chance(0.3) ? 1 : 0))
    return [this.#location(nowMs, positionAlong(trip), trip, 't')]
  }

  #atHome(nowMs: number): SimMessage[] {
    this.#homeTicksLeft--
    if (this.#homeTicksLeft > 0) {
      this.#battery = Math.min(100, this.#battery + (this.#rng.chance(0.5) ? 1 : 0))
      return [this.#location(nowMs, { position: this.#jitter(this.#home, 15), course: 0 }, undefined, 'p')]
    }
    const trip = this.#planTrip()
    this.#trip = trip
    const fix = { position: this.#home, course: bearing(this.#home, trip.points[1] ?? this.#home) }
    return [this.#transition(nowMs, 'leave', fix.position), this.#location(nowMs, fix, trip, 'c')]
  }

  #arrive(nowMs: number): SimMessage[] {
    this.#trip = undefined
    this.#homeTicksLeft = this.#rng.int(3, 8)
    const position = this.#jitter(this.#home, 10)
    return [this.#transition(nowMs, 'enter', position), this.#location(nowMs, { position, course: 0 }, undefined, 'c')]
  }

  /** A loop through 2-4 random points: a walk of up to ~1.5 km radius or a drive of up to ~8 km. */
  #planTrip(): Trip {
    const mode = this.#rng.chance(0.5) ? 'walk' : 'drive'
    const maxRadius = mode === 'walk' ? 1_500 : 8_000
    const stops = Array.from({ length: this.#rng.int(2, 4) }, () =>
      offset(this.#home, this.#rng.float(200, maxRadius), this.#rng.float(0, 2 * Math.PI)),
    )
    const points = [this.#home, ...stops, this.#home]
    const distances = [0]
    for (let i = 1; i < points.length; i++) {
      const a = points[i - 1] as LatLon
      const b = points[i] as LatLon
      distances.push((distances[i - 1] ?? 0) + distanceM(a, b))
    }
    const speedKmh = mode === 'walk' ? this.#rng.float(4, 6) : this.#rng.float(30, 55)
    return { mode, speedKmh, points, distances, travelled: 0 }
  }

  #jitter(p: LatLon, meters: number): LatLon {
    return offset(p, this.#rng.float(0, meters), this.#rng.float(0, 2 * Math.PI))
  }

  /** Keys in the order Android's Jackson serialiser writes them (alphabetical, `_type` first). */
  #location(nowMs: number, fix: Fix, trip: Trip | undefined, trigger: 'p' | 't' | 'c'): SimMessage {
    const atHome = trip === undefined
    const tst = epochSeconds(nowMs)
    const payload: Json = {
      _type: 'location',
      BSSID: atHome ? this.#bssid : undefined,
      SSID: atHome ? this.#ssid : undefined,
      acc: atHome ? this.#rng.int(12, 40) : this.#rng.int(4, 15),
      alt: Math.round(this.#rng.gaussian(38, 3)),
      batt: this.#battery,
      bs: atHome && this.#battery >= 100 ? 3 : atHome ? 2 : 1,
      cog: atHome ? undefined : Math.round(fix.course),
      conn: atHome ? 'w' : 'm',
      created_at: tst + this.#rng.int(0, 2),
      inregions: atHome ? ['Home'] : undefined,
      inrids: atHome ? [this.#rid] : undefined,
      lat: round(fix.position.lat, 7),
      lon: round(fix.position.lon, 7),
      m: atHome ? 1 : 2,
      t: trigger,
      tid: this.#tid,
      topic: this.#topic,
      tst,
      vac: this.#rng.int(1, 4),
      vel: atHome ? 0 : Math.max(0, Math.round(this.#rng.gaussian(trip.speedKmh, trip.mode === 'walk' ? 0.5 : 4))),
    }
    return jsonMessage(this.#topic, payload, 1, true)
  }

  #transition(nowMs: number, event: 'enter' | 'leave', position: LatLon): SimMessage {
    const payload: Json = {
      _type: 'transition',
      acc: this.#rng.int(10, 30),
      desc: 'Home',
      event,
      lat: round(position.lat, 7),
      lon: round(position.lon, 7),
      rid: this.#rid,
      t: 'c',
      tid: this.#tid,
      tst: epochSeconds(nowMs),
      wtst: this.#regionCreatedS,
    }
    return jsonMessage(`${this.#topic}/event`, payload, 1, false)
  }
}

export const owntracksProfile: SimulatorProfile = {
  name: 'owntracks',
  category: 'gps_tracker',
  description: 'OwnTracks phone: location fixes around home (walks and drives) and Home region transitions',
  variants: 1,
  createDevices(count: number, seed: number): SimDevice[] {
    checkDeviceCount('owntracks', count)
    return Array.from({ length: count }, (_, i) => new OwnTracksPhone(i, seed))
  },
}

/** The Android app's client id is user + device id; its will is a `_type:"lwt"` message on the base topic. */
export function owntracksIdentity(device: SimDevice, nowMs: number): ClientIdentity {
  const topic = `owntracks/${device.id}`
  return {
    clientId: device.id.replace('/', ''),
    clean: true,
    will: {
      topic,
      payload: Buffer.from(JSON.stringify({ _type: 'lwt', tst: epochSeconds(nowMs) })),
      qos: 1,
      retain: false,
    },
  }
}
