/**
 * Camera behind Frigate NVR. Each tick advances one tracked object through Frigate's lifecycle
 * (`new` → `update`… → `end`) on `frigate/events`, with the per-camera object count and raw JPEG snapshots.
 * JSON is written the way Frigate's Python `json.dumps` writes it (`", "` / `": "` separators).
 */
import { checkDeviceCount, listCanary } from '../canary.ts'
import { binaryMessage, jsonMessage, round, textMessage } from '../format.ts'
import type { Json } from '../format.ts'
import { deriveSeed, Rng } from '../random.ts'
import type { ClientIdentity, SimDevice, SimMessage, SimulatorProfile } from '../types.ts'
import { fakeJpeg } from './jpeg.ts'

const CAMERA_NAMES = ['canary_front_door', 'canary_driveway', 'canary_back_yard', 'canary_garage', 'canary_porch']
const PERSON_NAMES = ['Canary Bob', 'Canary Carol', 'Canary Dave', 'Canary Frank', 'Canary Heidi', 'Canary Ivan']
const PLATE_BASE = parseInt('RY1', 36)
const ZONES = ['driveway', 'front_yard', 'walkway', 'street', 'porch', 'yard']
/** Frigate's default detect resolution. */
const FRAME = { width: 1280, height: 720 }

type Label = 'person' | 'car' | 'dog'
type Box = [number, number, number, number]

interface LabelSpec {
  readonly width: readonly [number, number]
  readonly height: readonly [number, number]
  /** The attribute model that fires on this label (face recognition / LPR). */
  readonly attribute: 'face' | 'license_plate' | null
}

const LABELS: Record<Label, LabelSpec> = {
  person: { width: [80, 140], height: [190, 320], attribute: 'face' },
  car: { width: [260, 420], height: [150, 240], attribute: 'license_plate' },
  dog: { width: [90, 160], height: [70, 120], attribute: null },
}

/** One tracked object, mutated frame by frame like Frigate's TrackedObject. */
interface Tracked {
  readonly id: string
  readonly label: Label
  readonly startTime: number
  frameTime: number
  endTime: number | null
  box: Box
  score: number
  topScore: number
  subLabel: [string, number] | null
  plate: string | null
  plateScore: number | null
  attributeScore: number | null
  currentZones: string[]
  enteredZones: string[]
  positionChanges: number
  stationary: boolean
  motionlessCount: number
  snapshot: { frameTime: number; box: Box; score: number }
  updatesLeft: number
  previous: Json
}

class FrigateCamera implements SimDevice {
  readonly id: string
  readonly canaries: readonly string[]
  readonly #rng: Rng
  readonly #person: string
  readonly #plate: string
  readonly #zones: readonly [string, string]
  #current: Tracked | undefined
  #events = 0
  readonly #audioRng: Rng
  #speech = false

  constructor(index: number, seed: number) {
    this.#rng = new Rng(deriveSeed(seed, 'frigate', index))
    this.#audioRng = new Rng(deriveSeed(seed, 'frigate-audio', index))
    this.id = listCanary(CAMERA_NAMES, index, (hex) => `canary_cam_${hex.toLowerCase()}`)
    this.#person = listCanary(PERSON_NAMES, index, (hex) => `Canary Person ${hex}`)
    this.#plate = `CAN4${(PLATE_BASE + index).toString(36).toUpperCase()}`
    this.canaries = [this.id, this.#person, this.#plate]
    const first = this.#rng.pick(ZONES)
    this.#zones = [first, this.#rng.pick(ZONES.filter((z) => z !== first))]
  }

  start(): SimMessage[] {
    return [textMessage('frigate/available', 'online', 0, true)]
  }

  tick(nowMs: number): SimMessage[] {
    const frameTime = round(nowMs / 1000 + this.#rng.float(0, 0.05), 6)
    const current = this.#current
    const messages =
      current === undefined
        ? this.#begin(frameTime)
        : current.updatesLeft > 0
          ? this.#update(current, frameTime)
          : this.#end(current, frameTime)
    return [...messages, ...this.#audio()]
  }

  /**
   * Audio detection (Frigate 0.14+, cameras with audio): loudness every tick, and `speech` ON while a person is
   * tracked (OFF when it ends). Drawn from a stream of its own, so the event stream is the same with or without it.
   */
  #audio(): SimMessage[] {
    const tracked = this.#current
    const talking = tracked !== undefined && tracked.label === 'person'
    const dbfs = talking ? this.#audioRng.float(-45, -25) : this.#audioRng.float(-80, -60)
    const messages = [
      textMessage(`frigate/${this.id}/audio/dBFS`, dbfs.toFixed(1), 0, false),
      textMessage(`frigate/${this.id}/audio/rms`, (32768 * 10 ** (dbfs / 20)).toFixed(1), 0, false),
    ]
    if (talking !== this.#speech) {
      this.#speech = talking
      messages.push(textMessage(`frigate/${this.id}/audio/speech`, talking ? 'ON' : 'OFF', 0, false))
    }
    return messages
  }

  /** Frigate emits `new` once the object stops being a false positive; `before` is that false-positive state. */
  #begin(frameTime: number): SimMessage[] {
    const tracked = this.#track(frameTime)
    this.#current = tracked
    const before = this.#objectJson(tracked, true)
    const after = this.#objectJson(tracked, false)
    tracked.previous = after
    return [
      this.#eventMessage('new', before, after),
      textMessage(`frigate/${this.id}/${tracked.label}`, '1', 0, false),
      textMessage(`frigate/${this.id}/${tracked.label}/active`, '1', 0, false),
      this.#snapshotMessage(tracked),
    ]
  }

  #update(tracked: Tracked, frameTime: number): SimMessage[] {
    const improved = this.#observe(tracked, frameTime)
    tracked.updatesLeft--
    const after = this.#objectJson(tracked, false)
    const messages = [this.#eventMessage('update', tracked.previous, after)]
    tracked.previous = after
    // Frigate re-sends the snapshot when a better frame appears, but never for a stationary object.
    if (improved && !tracked.stationary) messages.push(this.#snapshotMessage(tracked))
    return messages
  }

  #end(tracked: Tracked, frameTime: number): SimMessage[] {
    tracked.frameTime = frameTime
    tracked.endTime = frameTime
    const after = this.#objectJson(tracked, false)
    this.#current = undefined
    return [
      this.#eventMessage('end', tracked.previous, after),
      textMessage(`frigate/${this.id}/${tracked.label}`, '0', 0, false),
      textMessage(`frigate/${this.id}/${tracked.label}/active`, '0', 0, false),
    ]
  }

  /** The first event of a camera is a recognised person and the second a car with a plate, so canaries show early. */
  #nextLabel(): Label {
    const n = this.#events++
    if (n === 0) return 'person'
    if (n === 1) return 'car'
    return this.#rng.pick<Label>(['person', 'person', 'car', 'dog'])
  }

  #track(frameTime: number): Tracked {
    const label = this.#nextLabel()
    const spec = LABELS[label]
    const w = this.#rng.int(spec.width[0], spec.width[1])
    const h = this.#rng.int(spec.height[0], spec.height[1])
    const x = this.#rng.int(0, FRAME.width - w - 1)
    const y = this.#rng.int(Math.floor(FRAME.height / 3), FRAME.height - h - 1)
    const box: Box = [x, y, x + w, y + h]
    const score = round(this.#rng.float(0.7, 0.85), 6)
    const zone = this.#zoneAt(box)
    return {
      id: `${frameTime.toFixed(6)}-${this.#rng.alnum(6)}`,
      label,
      startTime: frameTime,
      frameTime,
      endTime: null,
      box,
      score,
      topScore: score,
      subLabel: null,
      plate: null,
      plateScore: null,
      attributeScore: null,
      currentZones: [zone],
      enteredZones: [zone],
      positionChanges: 1,
      stationary: false,
      motionlessCount: 0,
      snapshot: { frameTime, box, score },
      updatesLeft: this.#rng.int(2, 5),
      previous: null,
    }
  }

  /** Moves the object, rescores it and runs face recognition / LPR; returns true if the best frame improved. */
  #observe(tracked: Tracked, frameTime: number): boolean {
    tracked.frameTime = frameTime
    tracked.stationary = tracked.updatesLeft === 1 && this.#rng.chance(0.3)
    tracked.motionlessCount = tracked.stationary ? tracked.motionlessCount + this.#rng.int(10, 40) : 0
    if (!tracked.stationary) {
      tracked.box = moveBox(tracked.box, this.#rng.int(-60, 60), this.#rng.int(-20, 20))
      tracked.positionChanges++
    }
    const zone = this.#zoneAt(tracked.box)
    tracked.currentZones = [zone]
    if (!tracked.enteredZones.includes(zone)) tracked.enteredZones.push(zone)
    tracked.score = round(Math.min(0.99, tracked.score + this.#rng.float(-0.05, 0.1)), 6)
    this.#recognise(tracked)
    if (tracked.score <= tracked.topScore) return false
    tracked.topScore = tracked.score
    tracked.snapshot = { frameTime, box: tracked.box, score: tracked.score }
    return true
  }

  #recognise(tracked: Tracked): void {
    const attribute = LABELS[tracked.label].attribute
    if (attribute === null) return
    tracked.attributeScore = round(this.#rng.float(0.6, 0.95), 2)
    const firstOfItsKind = this.#events <= 2
    if (attribute === 'face' && tracked.subLabel === null && (firstOfItsKind || this.#rng.chance(0.6))) {
      tracked.subLabel = [this.#person, round(this.#rng.float(0.8, 0.95), 2)]
    }
    if (attribute === 'license_plate' && tracked.plate === null && (firstOfItsKind || this.#rng.chance(0.7))) {
      tracked.plate = this.#plate
      tracked.plateScore = round(this.#rng.float(0.85, 0.98), 6)
    }
  }

  #zoneAt(box: Box): string {
    return (box[0] + box[2]) / 2 < FRAME.width / 2 ? this.#zones[0] : this.#zones[1]
  }

  /** The `after`/`before` object with the keys of device-formats.md §2.1, in Frigate's order. */
  #objectJson(t: Tracked, falsePositive: boolean): Json {
    const [x1, y1, x2, y2] = t.box
    const attribute = LABELS[t.label].attribute
    const attributeBox: Box = [x1 + 10, y1 + 8, Math.min(x2, x1 + 60), Math.min(y2, y1 + 50)]
    const attributeSeen = attribute !== null && t.attributeScore !== null && !falsePositive
    return {
      id: t.id,
      camera: this.id,
      frame_time: t.frameTime,
      snapshot: {
        frame_time: t.snapshot.frameTime,
        box: t.snapshot.box,
        area: boxArea(t.snapshot.box),
        region: region(t.snapshot.box),
        score: t.snapshot.score,
        attributes: [],
      },
      label: t.label,
      sub_label: t.subLabel,
      top_score: t.topScore,
      false_positive: falsePositive,
      start_time: t.startTime,
      end_time: t.endTime,
      score: t.score,
      box: t.box,
      area: boxArea(t.box),
      ratio: round((x2 - x1) / (y2 - y1), 6),
      region: region(t.box),
      current_zones: t.endTime === null ? t.currentZones : [],
      entered_zones: t.enteredZones,
      thumbnail: null,
      has_snapshot: t.positionChanges > 1,
      has_clip: t.positionChanges > 1,
      active: t.endTime === null && !t.stationary,
      stationary: t.stationary,
      motionless_count: t.motionlessCount,
      position_changes: t.positionChanges,
      attributes: attributeSeen && attribute !== null ? { [attribute]: t.attributeScore } : {},
      current_attributes:
        attributeSeen && t.endTime === null ? [{ label: attribute, box: attributeBox, score: t.attributeScore }] : [],
      current_estimated_speed: 0,
      average_estimated_speed: 0,
      velocity_angle: 0,
      recognized_license_plate: t.plate,
      recognized_license_plate_score: t.plateScore,
    }
  }

  #eventMessage(type: 'new' | 'update' | 'end', before: Json, after: Json): SimMessage {
    return jsonMessage('frigate/events', { type, before, after }, 0, false, 'python')
  }

  /** Raw JPEG, retained, cropped to the object (width follows the box aspect ratio at height 270). */
  #snapshotMessage(t: Tracked): SimMessage {
    const [x1, y1, x2, y2] = t.snapshot.box
    const width = Math.max(64, Math.round(((x2 - x1) / (y2 - y1)) * 270))
    return binaryMessage(`frigate/${this.id}/${t.label}/snapshot`, fakeJpeg(this.#rng, width), 0, true)
  }
}

function boxArea([x1, y1, x2, y2]: Box): number {
  return (x2 - x1) * (y2 - y1)
}

function moveBox([x1, y1, x2, y2]: Box, dx: number, dy: number): Box {
  const clampedDx = Math.max(-x1, Math.min(FRAME.width - 1 - x2, dx))
  const clampedDy = Math.max(-y1, Math.min(FRAME.height - 1 - y2, dy))
  return [x1 + clampedDx, y1 + clampedDy, x2 + clampedDx, y2 + clampedDy]
}

/** Frigate's detection region: a square around the box, at least 320 px (the model input), inside the frame. */
function region([x1, y1, x2, y2]: Box): Box {
  const size = Math.min(FRAME.height, Math.max(320, Math.ceil((Math.max(x2 - x1, y2 - y1) * 1.2) / 4) * 4))
  const cx = Math.round((x1 + x2) / 2)
  const cy = Math.round((y1 + y2) / 2)
  const left = Math.max(0, Math.min(FRAME.width - size, cx - size / 2))
  const top = Math.max(0, Math.min(FRAME.height - size, cy - size / 2))
  return [Math.round(left), Math.round(top), Math.round(left) + size, Math.round(top) + size]
}

export const frigateProfile: SimulatorProfile = {
  name: 'frigate',
  category: 'camera',
  description: 'Frigate NVR camera: frigate/events lifecycle, object counts and raw JPEG snapshots',
  variants: 1,
  createDevices(count: number, seed: number): SimDevice[] {
    checkDeviceCount('frigate', count)
    return Array.from({ length: count }, (_, i) => new FrigateCamera(i, seed))
  },
}

/**
 * Frigate connects with paho as `frigate` (one client per NVR); one client per simulated camera needs a unique id,
 * so the camera name is appended. The will marks the NVR unavailable.
 */
export function frigateIdentity(device: SimDevice): ClientIdentity {
  return {
    clientId: `frigate_${device.id}`,
    clean: true,
    will: { topic: 'frigate/available', payload: Buffer.from('offline'), qos: 1, retain: true },
  }
}
