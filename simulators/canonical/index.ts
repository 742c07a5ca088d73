/**
 * Devices built for Veil, on the canonical layout `devices/<category>/<deviceId>/<stream>` with the strict schemas of
 * `schemas/canonical/`. `createDevices(n)` gives n devices of each of the five categories, interleaved (plug, camera,
 * vacuum, scale, tracker, plug, ...), so position k is the same device whatever n is. The device id is the only
 * identifier such a device may send (its schemas allow no other free text but a camera's zones and sub_label), so
 * the canaries are the ids, the person a camera recognises and its zone names. One tick = one report per device.
 */
import { checkDeviceCount, hexCanary, listCanary } from '../canary.ts'
import { jsonMessage, round } from '../format.ts'
import type { Json } from '../format.ts'
import { Roamer } from '../geo.ts'
import { deriveSeed, Rng } from '../random.ts'
import type { Category, ClientIdentity, SimDevice, SimMessage, SimulatorProfile } from '../types.ts'

const CATEGORIES: readonly Category[] = ['smart_plug', 'camera', 'robot_vacuum', 'body_scale', 'gps_tracker']
const SHORT: Record<Category, string> = {
  smart_plug: 'plug',
  camera: 'cam',
  robot_vacuum: 'vac',
  body_scale: 'scale',
  gps_tracker: 'trk',
}
const PEOPLE = ['Canary Yvonne', 'Canary Zeno', 'Canary Wanda', 'Canary Tobias']

abstract class CanonicalDevice implements SimDevice {
  readonly id: string
  canaries: readonly string[]
  protected readonly rng: Rng
  protected lastMs: number | undefined

  constructor(
    readonly category: Category,
    index: number,
    seed: number,
  ) {
    this.rng = new Rng(deriveSeed(seed, 'canonical', category, index))
    this.id = `canary-${SHORT[category]}-${hexCanary(0, index, 4).toLowerCase()}`
    this.canaries = [this.id]
  }

  start(nowMs: number): SimMessage[] {
    this.lastMs = nowMs
    return []
  }

  abstract tick(nowMs: number): SimMessage[]

  protected message(stream: string, value: Json): SimMessage {
    return jsonMessage(`devices/${this.category}/${this.id}/${stream}`, value, 1, false)
  }

  protected elapsedH(nowMs: number): number {
    const hours = Math.max(0, nowMs - (this.lastMs ?? nowMs)) / 3_600_000
    this.lastMs = Math.max(nowMs, this.lastMs ?? nowMs)
    return hours
  }
}

class Plug extends CanonicalDevice {
  #kwh = this.rng.float(10, 900)
  #watts = 0
  #on = true

  tick(nowMs: number): SimMessage[] {
    this.#kwh += (this.#watts * this.elapsedH(nowMs)) / 1000
    if (this.rng.chance(0.03)) this.#on = !this.#on
    this.#watts = this.#on ? this.rng.float(0.5, 1500) : 0
    const voltage = round(this.rng.gaussian(230, 1.5), 1)
    return [
      this.message('energy', {
        ts: Math.floor(nowMs / 1000),
        total_kwh: round(this.#kwh, 3),
        power_w: round(this.#watts, 1),
        voltage_v: voltage,
        current_a: round(this.#watts / voltage, 3),
        relay: this.#on ? 'on' : 'off',
      }),
    ]
  }
}

class Camera extends CanonicalDevice {
  readonly #person: string
  readonly #zone: string
  #open: { label: string; score: number } | undefined
  #events = 0

  constructor(index: number, seed: number) {
    super('camera', index, seed)
    this.#person = listCanary(PEOPLE, index, (hex) => `Canary Visitor ${hex}`)
    this.#zone = `canary_zone_${hexCanary(0, index, 4).toLowerCase()}`
    this.canaries = [this.id, this.#person, this.#zone]
  }

  /** start, update, end of one detection over three ticks; the first detection is the recognised person. */
  tick(nowMs: number): SimMessage[] {
    const ts = Math.floor(nowMs / 1000)
    const open = this.#open
    if (open === undefined) {
      const label = this.#events++ === 0 || this.rng.chance(0.6) ? 'person' : this.rng.pick(['car', 'cat'])
      this.#open = { label, score: round(this.rng.float(0.6, 0.8), 2) }
      return [this.message('event', { ts, type: 'start', label, score: this.#open.score, zones: [this.#zone] })]
    }
    this.#open = undefined
    const score = round(Math.min(0.99, open.score + this.rng.float(0, 0.2)), 2)
    const subLabel = open.label === 'person' ? this.#person : null
    return [
      this.message('event', { ts, type: 'update', label: open.label, score, zones: [this.#zone], sub_label: subLabel }),
      this.message('event', { ts, type: 'end', label: open.label, score, zones: [], sub_label: subLabel }),
    ]
  }
}

class Vacuum extends CanonicalDevice {
  #battery = this.rng.int(60, 100)
  #state = 'docked'

  tick(nowMs: number): SimMessage[] {
    this.#state =
      this.#state === 'docked'
        ? this.rng.chance(0.2)
          ? 'cleaning'
          : 'docked'
        : this.#state === 'cleaning'
          ? this.#battery < 30 || this.rng.chance(0.25)
            ? 'returning'
            : 'cleaning'
          : 'docked'
    this.#battery =
      this.#state === 'cleaning'
        ? Math.max(5, this.#battery - this.rng.int(3, 8))
        : Math.min(100, this.#battery + this.rng.int(2, 10))
    const error = this.#state === 'cleaning' && this.rng.chance(0.05) ? 'Main brush jammed' : null
    return [
      this.message('status', {
        ts: Math.floor(nowMs / 1000),
        battery_pct: this.#battery,
        state: error === null ? this.#state : 'error',
        error,
      }),
    ]
  }
}

class Scale extends CanonicalDevice {
  readonly #baseKg = this.rng.float(50, 110)
  readonly #heightM = this.rng.float(1.55, 1.95)
  #battery = this.rng.int(40, 100)

  tick(nowMs: number): SimMessage[] {
    const weight = round(this.#baseKg + this.rng.gaussian(0, 0.4), 2)
    if (this.rng.chance(0.1)) this.#battery = Math.max(1, this.#battery - 1)
    return [
      this.message('measurement', {
        ts: Math.floor(nowMs / 1000),
        weight_kg: weight,
        impedance_ohm: this.rng.int(420, 560),
        bmi: round(weight / this.#heightM ** 2, 1),
        body_fat_pct: round(this.rng.float(12, 35), 1),
        battery_pct: this.#battery,
      }),
    ]
  }
}

class Tracker extends CanonicalDevice {
  readonly #roamer = new Roamer(this.rng, { speedsKmh: [5, 45], radiusM: 8_000, homeTicks: [3, 6] })
  #battery = this.rng.int(50, 100)

  tick(nowMs: number): SimMessage[] {
    const fix = this.#roamer.advance(nowMs)
    this.#battery = fix.moving ? Math.max(3, this.#battery - 1) : Math.min(100, this.#battery + 1)
    return [
      this.message('location', {
        ts: Math.floor(nowMs / 1000),
        lat: round(fix.position.lat, 6),
        lon: round(fix.position.lon, 6),
        acc_m: this.rng.int(3, 30),
        alt_m: round(this.rng.gaussian(40, 3), 1),
        speed_kmh: round(fix.speedMs * 3.6, 1),
        heading_deg: round(fix.course, 0),
        battery_pct: this.#battery,
      }),
    ]
  }
}

function create(category: Category, index: number, seed: number): CanonicalDevice {
  switch (category) {
    case 'smart_plug':
      return new Plug(category, index, seed)
    case 'camera':
      return new Camera(index, seed)
    case 'robot_vacuum':
      return new Vacuum(category, index, seed)
    case 'body_scale':
      return new Scale(category, index, seed)
    case 'gps_tracker':
      return new Tracker(category, index, seed)
  }
}

export const canonicalProfile: SimulatorProfile = {
  name: 'canonical',
  category: 'all',
  description:
    'Devices built for Veil (devices/<category>/<id>/<stream>): one plug, camera, vacuum, scale and tracker per --devices',
  variants: 1,
  createDevices(count: number, seed: number): SimDevice[] {
    checkDeviceCount('canonical', count)
    return Array.from({ length: count }, (_, i) => CATEGORIES.map((c) => create(c, i, seed))).flat()
  },
}

/** A device built for Veil connects under its own id and sets no will (the canonical layout has no status topic). */
export function canonicalIdentity(device: SimDevice): ClientIdentity {
  return { clientId: device.id, clean: true }
}
