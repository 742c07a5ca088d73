/**
 * Robot vacuum running Valetudo (Homie-style topics under `valetudo/<identifier>/`). The robot docks, charges,
 * cleans every room along a planned route and returns; while it moves, each tick publishes the retained, deflated
 * ValetudoMap on `MapData/map-data` (QoS 0) alongside status and battery properties (QoS 1, retained).
 */
import { deflateSync } from 'node:zlib'
import { checkDeviceCount, ipCanary, listCanary, ssidCanary } from '../canary.ts'
import { binaryMessage, jsonMessage, textMessage } from '../format.ts'
import { deriveSeed, Rng } from '../random.ts'
import type { ClientIdentity, SimDevice, SimMessage, SimulatorProfile } from '../types.ts'
import { buildMap, generateFloorPlan, heading, PIXEL_SIZE, planRoute, restrictions, roomAt } from './map.ts'
import type { FloorPlan, MapEntity, RoutePoint } from './map.ts'

const ADJECTIVES = ['Silly', 'Shiny', 'Frugal', 'Nimble', 'Sleepy', 'Brave', 'Dusty', 'Jolly']
const ANIMALS = ['Badger', 'Hornet', 'Otter', 'Lemur', 'Walrus', 'Gecko', 'Falcon', 'Marmot']
const ROOM_OWNERS = ['Anna', 'Ben', 'Clara', 'Emil', 'Greta', 'Lena', 'Noah', 'Paul']
const SSID_BASE = 0x5e10
const IP_OCTET = 203
/** Route points the robot covers per tick (Valetudo refreshes its MQTT state every 30 s). */
const POINTS_PER_TICK = 6

type Phase = 'docked' | 'cleaning' | 'returning'

class ValetudoRobot implements SimDevice {
  readonly id: string
  readonly canaries: readonly string[]
  readonly #rng: Rng
  readonly #index: number
  readonly #ssid: string
  readonly #ip: string
  readonly #plan: FloorPlan
  readonly #restrictions: readonly MapEntity[]
  readonly #nonce: string
  #phase: Phase = 'docked'
  #battery: number
  #dockedTicks = 0
  #route: RoutePoint[] = []
  #progress = 0

  constructor(index: number, seed: number) {
    this.#rng = new Rng(deriveSeed(seed, 'valetudo', index))
    this.#index = index
    this.id = systemId(index)
    const owner = listCanary(ROOM_OWNERS, index, (hex) => `Kind${hex}`)
    const personalRoom = `Canary${owner}s Zimmer`
    this.#ssid = ssidCanary(SSID_BASE, index)
    this.#ip = ipCanary(IP_OCTET, index)
    this.canaries = [this.id, personalRoom, this.#ssid, this.#ip]
    const names = shuffle(this.#rng, ['Schlafzimmer', 'Küche', 'Bad', 'Wohnzimmer', personalRoom])
    this.#plan = generateFloorPlan(this.#rng, names)
    this.#restrictions = restrictions(this.#rng, this.#plan)
    this.#nonce = this.#rng.uuid()
    this.#battery = this.#rng.int(60, 100)
  }

  start(): SimMessage[] {
    const base = `valetudo/${this.id}`
    const segments = Object.fromEntries(this.#plan.rooms.map((room) => [room.segmentId, room.name]))
    return [
      textMessage(`${base}/$state`, 'ready', 1, true),
      textMessage(`${base}/$name`, `Dreame L10S Ultra ${this.id}`, 1, true),
      textMessage(`${base}/WifiConfigurationCapability/ssid`, this.#ssid, 1, true),
      textMessage(
        `${base}/WifiConfigurationCapability/ips`,
        `${this.#ip},fe80::c811:a7ff:fe03:${this.#index.toString(16)}`,
        1,
        true,
      ),
      textMessage(`${base}/WifiConfigurationCapability/signal`, String(this.#rng.int(-70, -45)), 1, true),
      textMessage(`${base}/WifiConfigurationCapability/frequency`, '2.4ghz', 1, true),
      jsonMessage(`${base}/MapData/segments`, segments, 1, true),
      this.#mapMessage(),
      ...this.#statusMessages(),
    ]
  }

  tick(): SimMessage[] {
    const moved = this.#advance()
    const messages = this.#statusMessages()
    if (moved) messages.push(this.#mapMessage())
    return messages
  }

  /** One refresh period of the docked → cleaning → returning → docked cycle; returns true if the robot moved. */
  #advance(): boolean {
    if (this.#phase === 'docked') return this.#charge()
    if (this.#phase === 'returning') {
      this.#phase = 'docked'
      this.#dockedTicks = 0
      this.#progress = this.#route.length - 1
      return true
    }
    this.#progress = Math.min(this.#route.length - 2, this.#progress + POINTS_PER_TICK)
    this.#battery = Math.max(15, this.#battery - this.#rng.int(0, 2))
    if (this.#progress >= this.#route.length - 2) this.#phase = 'returning'
    return true
  }

  /** Charges on the dock; after a few periods with enough battery a scheduled full cleanup starts. */
  #charge(): boolean {
    this.#battery = Math.min(100, this.#battery + 4)
    this.#dockedTicks++
    if (this.#dockedTicks < 3 || this.#battery < 80) return false
    this.#phase = 'cleaning'
    this.#route = planRoute(this.#rng, this.#plan)
    this.#progress = 0
    return true
  }

  #statusMessages(): SimMessage[] {
    const base = `valetudo/${this.id}`
    const batteryStatus = this.#phase !== 'docked' ? 'discharging' : this.#battery >= 100 ? 'charged' : 'charging'
    return [
      textMessage(`${base}/StatusStateAttribute/status`, this.#phase, 1, true),
      textMessage(`${base}/BatteryStateAttribute/level`, String(this.#battery), 1, true),
      textMessage(`${base}/BatteryStateAttribute/status`, batteryStatus, 1, true),
    ]
  }

  /** zlib (78 9C) of the compact JSON, exactly what Valetudo's MapNodeMqttHandle publishes. */
  #mapMessage(): SimMessage {
    const path = this.#route.slice(0, this.#progress + 1)
    const robot = path[path.length - 1] ?? this.#dockPoint()
    const previous = path[path.length - 2] ?? robot
    const cleaning = this.#phase === 'cleaning'
    const map = buildMap({
      nonce: this.#nonce,
      plan: this.#plan,
      path,
      robot,
      robotAngle: heading(previous, robot),
      activeSegment: cleaning ? roomAt(this.#plan, robot)?.segmentId : undefined,
      restrictions: this.#restrictions,
    })
    const payload = deflateSync(Buffer.from(JSON.stringify(map), 'utf8'))
    return binaryMessage(`valetudo/${this.id}/MapData/map-data`, payload, 0, true)
  }

  #dockPoint(): RoutePoint {
    return { x: this.#plan.charger.x * PIXEL_SIZE, y: (this.#plan.charger.y + 3) * PIXEL_SIZE }
  }
}

/**
 * Valetudo's default identifier is a human-readable system id (`<Adjective><Adjective><Animal>`); the first word
 * is `Canary` so it is recognisable, the rest enumerates devices (a fixed-width hex id past 64 devices).
 */
function systemId(index: number): string {
  const combos = ADJECTIVES.length * ANIMALS.length
  if (index >= combos) return `CanaryVacuum${index.toString(16).toUpperCase().padStart(4, '0')}`
  return `Canary${ADJECTIVES[index % ADJECTIVES.length]}${ANIMALS[Math.floor(index / ADJECTIVES.length)]}`
}

function shuffle<T>(rng: Rng, items: readonly T[]): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(0, i)
    const a = out[i] as T
    out[i] = out[j] as T
    out[j] = a
  }
  return out
}

export const valetudoProfile: SimulatorProfile = {
  name: 'valetudo',
  category: 'robot_vacuum',
  description: 'Valetudo robot vacuum: deflated ValetudoMap (floor plan, named rooms, path), status, battery, Wi-Fi',
  variants: 1,
  createDevices(count: number, seed: number): SimDevice[] {
    checkDeviceCount('valetudo', count)
    return Array.from({ length: count }, (_, i) => new ValetudoRobot(i, seed))
  },
}

/** Valetudo's MqttController: client id `valetudo_<system id>`, persistent session, retained `lost` will on `$state`. */
export function valetudoIdentity(device: SimDevice): ClientIdentity {
  return {
    clientId: `valetudo_${device.id}`,
    clean: false,
    will: { topic: `valetudo/${device.id}/$state`, payload: Buffer.from('lost'), qos: 1, retain: true },
  }
}
