/**
 * Double Take (face recognition for Frigate), one camera per device. A tick is one Frigate person event Double Take
 * processed (about two in three ticks; the others are quiet): the person count on `double-take/cameras/<camera>/person`
 * (retained, reset to 0 on the next tick, as Double Take does 30 s later), one `double-take/matches/<name>` per
 * recognised face, `double-take/matches/unknown` for unknown faces, and the whole result on
 * `double-take/cameras/<camera>`. Cameras with odd indexes have `detect.match.base64` on: every face result carries a
 * base64 JPEG crop. On connect Double Take clears `double-take/errors` (empty payload) and says `online`; now and
 * then a detector is unreachable and the error (with the detector's address) goes to `double-take/errors`.
 */
import { checkDeviceCount, hexCanary, ipCanary, listCanary } from '../canary.ts'
import { jsonMessage, round, textMessage } from '../format.ts'
import type { Json } from '../format.ts'
import { fakeJpeg } from '../frigate/jpeg.ts'
import { deriveSeed, Rng } from '../random.ts'
import type { ClientIdentity, SimDevice, SimMessage, SimulatorProfile } from '../types.ts'

const CAMERA_NAMES = ['canary-side-gate', 'canary-patio', 'canary-carport', 'canary-hallway']
const PERSON_NAMES = ['canaryoscar', 'canarypenny', 'canaryquentin', 'canaryursula', 'canaryxaver']
const IP_OCTET = 208
const DETECTORS = ['compreface', 'deepstack', 'codeproject']
const ZONES = ['porch', 'garden', 'street']
const PREFIX = 'double-take'

interface Face {
  name: string
  confidence: number
  match: boolean
  box: { top: number; left: number; width: number; height: number }
  type: 'latest' | 'snapshot' | 'mqtt'
  duration: number
  detector: string
  filename: string
  base64: string | null
}

class DoubleTakeCamera implements SimDevice {
  readonly id: string
  readonly canaries: readonly string[]
  readonly #rng: Rng
  readonly #person: string
  readonly #detectorIp: string
  readonly #base64: boolean
  #ticks = 0
  #personShown = false

  constructor(index: number, seed: number) {
    this.#rng = new Rng(deriveSeed(seed, 'doubletake', index))
    this.id = listCanary(CAMERA_NAMES, index, (hex) => `canary-dtcam-${hex.toLowerCase()}`)
    this.#person = listCanary(PERSON_NAMES, index, (hex) => `canaryperson${hex.toLowerCase()}`)
    this.#detectorIp = ipCanary(IP_OCTET, index)
    this.canaries = [this.id, this.#person, this.#detectorIp]
    this.#base64 = index % 2 === 1
  }

  start(): SimMessage[] {
    return [textMessage(`${PREFIX}/errors`, '', 0, false), textMessage(`${PREFIX}/available`, 'online', 0, true)]
  }

  tick(nowMs: number): SimMessage[] {
    const n = this.#ticks++
    const out: SimMessage[] = []
    if (this.#personShown) {
      out.push(textMessage(`${PREFIX}/cameras/${this.id}/person`, '0', 0, true))
      this.#personShown = false
    }
    // The first ticks show each kind of message once, so a short run already carries every canary.
    if (n === 2 || (n > 2 && this.#rng.chance(0.04))) out.push(this.#error())
    if (n !== 0 && n !== 1 && !this.#rng.chance(0.65)) return out
    const faces = this.#faces(n === 0)
    const matches = faces.filter((f) => f.match)
    const misses = faces.filter((f) => !f.match && f.name !== 'unknown')
    const unknowns = faces.filter((f) => f.name === 'unknown')
    const base: Record<string, Json> = {
      id: `${(nowMs / 1000 - this.#rng.float(2, 6)).toFixed(6)}-${this.#rng.alnum(6)}`,
      duration: round(this.#rng.float(0.8, 5), 2),
      timestamp: new Date(nowMs).toISOString(),
      attempts: this.#rng.int(1, 6),
      camera: this.id,
      zones: this.#rng.chance(0.5) ? [this.#rng.pick(ZONES)] : [],
    }
    const counts = { person: faces.length, match: matches.length, miss: misses.length, unknown: unknowns.length }
    out.push(textMessage(`${PREFIX}/cameras/${this.id}/person`, String(counts.person), 0, true))
    this.#personShown = true
    if (unknowns.length > 0)
      out.push(
        jsonMessage(
          `${PREFIX}/matches/unknown`,
          { ...base, unknown: unknowns[0] as unknown as Json, unknowns: unknowns as unknown as Json },
          0,
          false,
        ),
      )
    for (const match of matches)
      out.push(jsonMessage(`${PREFIX}/matches/${match.name}`, { ...base, match: match as unknown as Json }, 0, false))
    if (faces.length > 0) {
      const camera: Json = {
        ...base,
        matches: matches as unknown as Json,
        misses: misses as unknown as Json,
        unknowns: unknowns as unknown as Json,
        personCount: counts.person,
        counts,
      }
      out.push(jsonMessage(`${PREFIX}/cameras/${this.id}`, camera, 0, false))
    }
    return out
  }

  /** One or two faces: the camera's regular (a match, or a miss below the threshold) and sometimes a stranger. */
  #faces(first: boolean): Face[] {
    const confidence = round(first ? this.#rng.float(75, 99) : this.#rng.float(40, 99), 2)
    const faces = [this.#face(this.#person, confidence, confidence >= 60)]
    if (this.#rng.chance(0.3)) faces.push(this.#face('unknown', round(this.#rng.float(10, 50), 2), false))
    return faces
  }

  #face(name: string, confidence: number, match: boolean): Face {
    const height = this.#rng.int(120, 400)
    return {
      name,
      confidence,
      match,
      box: { top: this.#rng.int(100, 500), left: this.#rng.int(100, 1500), width: Math.round(height * 0.8), height },
      type: this.#rng.pick(['latest', 'snapshot', 'mqtt'] as const),
      duration: round(this.#rng.float(0.1, 1.2), 2),
      detector: this.#rng.pick(DETECTORS),
      filename: `${this.#rng.uuid()}.jpg`,
      base64: this.#base64 ? fakeJpeg(this.#rng, Math.round(height * 0.8), height).toString('base64') : null,
    }
  }

  /** What Double Take's console.error publishes: an Error serialised with its own property names. */
  #error(): SimMessage {
    const port = this.#rng.pick([8000, 5000, 32168])
    const detector = this.#rng.pick(DETECTORS)
    const message = `${detector} process error: connect ECONNREFUSED ${this.#detectorIp}:${port}`
    const error: Json = {
      stack: `Error: ${message}\n    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)`,
      message,
    }
    return jsonMessage(`${PREFIX}/errors`, error, 0, false)
  }
}

export const doubletakeProfile: SimulatorProfile = {
  name: 'doubletake',
  category: 'camera',
  description:
    'Double Take face recognition: matches per person (name in the topic), per-camera results and counts, errors',
  variants: 2,
  createDevices(count: number, seed: number): SimDevice[] {
    checkDeviceCount('doubletake', count)
    return Array.from({ length: count }, (_, i) => new DoubleTakeCamera(i, seed))
  },
}

/** `double-take-<8 hex>` (random per start in Double Take; here derived from the camera); Double Take sets no will. */
export function doubletakeIdentity(device: SimDevice): ClientIdentity {
  let hash = 0
  for (const c of device.id) hash = (Math.imul(hash, 31) + c.charCodeAt(0)) >>> 0
  return { clientId: `double-take-${hexCanary(0, hash, 8).toLowerCase()}`, clean: true }
}
