/**
 * Shelly gen2+ devices (Plus/Pro/gen3, JSON-RPC firmware). The topic prefix is the device id,
 * `<model>-<lower-case MAC>`. On connect: `<prefix>/online` `true` (retained; the will says `false`) and a
 * NotifyFullStatus frame with sys (MAC) and wifi (IP, SSID, BSSID). Each tick (a minute: aenergy counts per minute)
 * a NotifyStatus frame per switch with the changed keys only; devices with `mqtt.status_ntf` on (odd indexes) also
 * publish the full `status/switch:N`. Kinds: a Plus Plug S (switch:0) and a Plus 2PM (switch:0 and switch:1).
 */
import { bssidCanary, checkDeviceCount, hexCanary, ipCanary, ssidCanary } from '../canary.ts'
import { jsonMessage, round, textMessage } from '../format.ts'
import type { Json } from '../format.ts'
import { deriveSeed, Rng } from '../random.ts'
import type { ClientIdentity, SimDevice, SimMessage, SimulatorProfile } from '../types.ts'

const MAC_BASE = 0x5e2000
const OUI = 'e86bea'
const SSID_BASE = 0x9200
const PROFILE_CODE = 0x07
const IP_OCTET = 207

interface Kind {
  readonly model: string
  readonly app: string
  readonly switches: number
}

const KINDS: readonly Kind[] = [
  { model: 'shellyplusplugs', app: 'PlusPlugS', switches: 1 },
  { model: 'shellyplus2pm', app: 'Plus2PM', switches: 2 },
]

interface Switch {
  output: boolean
  apower: number
  voltage: number
  /** Wh, never decreasing. */
  totalWh: number
  byMinute: [number, number, number]
  readonly duty: number
  readonly watts: readonly [number, number]
}

class ShellyGen2 implements SimDevice {
  readonly id: string
  readonly canaries: readonly string[]
  readonly #rng: Rng
  readonly #kind: Kind
  readonly #mac: string
  readonly #ip: string
  readonly #ssid: string
  readonly #bssid: string
  readonly #statusNtf: boolean
  readonly #switches: Switch[]
  #lastMs: number | undefined
  #bootMs = 0

  constructor(index: number, seed: number) {
    this.#rng = new Rng(deriveSeed(seed, 'shelly_gen2', index))
    this.#kind = KINDS[index % KINDS.length] as Kind
    this.#mac = `${OUI}${hexCanary(MAC_BASE, index, 6).toLowerCase()}`
    this.id = `${this.#kind.model}-${this.#mac}`
    this.#ip = ipCanary(IP_OCTET, index)
    this.#ssid = ssidCanary(SSID_BASE, index)
    this.#bssid = bssidCanary(PROFILE_CODE, index, false)
    this.canaries = [this.#mac, this.#ip, this.#ssid, this.#bssid]
    this.#statusNtf = index % 2 === 1
    this.#switches = Array.from({ length: this.#kind.switches }, () => ({
      output: true,
      apower: 0,
      voltage: 230,
      totalWh: this.#rng.float(1_000, 600_000),
      byMinute: [0, 0, 0],
      duty: this.#rng.float(0.1, 0.6),
      watts: [this.#rng.float(20, 80), this.#rng.float(300, 2200)],
    }))
  }

  start(nowMs: number): SimMessage[] {
    this.#bootMs = nowMs - this.#rng.int(5, 90) * 1000
    this.#lastMs = nowMs
    const components: Record<string, Json> = {}
    for (const [n, s] of this.#switches.entries()) components[`switch:${n}`] = this.#switchStatus(s, n, nowMs)
    const full: Json = {
      src: this.id,
      dst: `${this.id}/events`,
      method: 'NotifyFullStatus',
      params: {
        ts: round(nowMs / 1000, 2),
        ble: {},
        cloud: { connected: false },
        mqtt: { connected: true },
        ...components,
        sys: {
          mac: this.#mac.toUpperCase(),
          restart_required: false,
          time: new Date(nowMs).toISOString().slice(11, 16),
          unixtime: Math.floor(nowMs / 1000),
          uptime: Math.floor((nowMs - this.#bootMs) / 1000),
          ram_size: 250_476,
          ram_free: this.#rng.int(110_000, 140_000),
          fs_size: 393_216,
          fs_free: 106_496,
          cfg_rev: this.#rng.int(5, 40),
          available_updates: {},
          reset_reason: 3,
        },
        wifi: {
          sta_ip: this.#ip,
          status: 'got ip',
          ssid: this.#ssid,
          bssid: this.#bssid,
          rssi: this.#rng.int(-80, -45),
        },
      },
    }
    return [textMessage(`${this.id}/online`, 'true', 0, true), jsonMessage(`${this.id}/events/rpc`, full, 0, false)]
  }

  tick(nowMs: number): SimMessage[] {
    const elapsedH = Math.max(0, nowMs - (this.#lastMs ?? nowMs)) / 3_600_000
    this.#lastMs = Math.max(nowMs, this.#lastMs ?? nowMs)
    const out: SimMessage[] = []
    this.#switches.forEach((s, n) => {
      const wh = s.apower * elapsedH
      s.totalWh += wh
      s.byMinute = [round((wh * 1000) / Math.max(1, elapsedH * 60), 3), s.byMinute[0], s.byMinute[1]]
      if (this.#rng.chance(0.03)) s.output = !s.output
      s.apower = !s.output
        ? 0
        : this.#rng.chance(s.duty)
          ? this.#rng.float(s.watts[1] * 0.8, s.watts[1])
          : this.#rng.float(0, s.watts[0])
      s.voltage = this.#rng.gaussian(231, 1.2)
      const changed: Json = {
        id: n,
        apower: round(s.apower, 1),
        current: round(s.apower / s.voltage, 3),
        voltage: round(s.voltage, 1),
        aenergy: { total: round(s.totalWh, 3), by_minute: s.byMinute, minute_ts: minuteTs(nowMs) },
      }
      const frame: Json = {
        src: this.id,
        dst: `${this.id}/events`,
        method: 'NotifyStatus',
        params: { ts: round(nowMs / 1000, 2), [`switch:${n}`]: changed },
      }
      out.push(jsonMessage(`${this.id}/events/rpc`, frame, 0, false))
      if (this.#statusNtf)
        out.push(jsonMessage(`${this.id}/status/switch:${n}`, this.#switchStatus(s, n, nowMs), 0, false))
    })
    return out
  }

  #switchStatus(s: Switch, n: number, nowMs: number): Json {
    const temperature = this.#rng.float(35, 50)
    return {
      id: n,
      source: 'init',
      output: s.output,
      apower: round(s.apower, 1),
      voltage: round(s.voltage, 1),
      current: round(s.apower / s.voltage, 3),
      aenergy: { total: round(s.totalWh, 3), by_minute: s.byMinute, minute_ts: minuteTs(nowMs) },
      temperature: { tC: round(temperature, 1), tF: round(temperature * 1.8 + 32, 1) },
    }
  }
}

function minuteTs(nowMs: number): number {
  return Math.floor(nowMs / 60_000) * 60
}

export const shellyGen2Profile: SimulatorProfile = {
  name: 'shelly_gen2',
  category: 'smart_plug',
  description:
    'Shelly gen2+ Plus Plug S and Plus 2PM: NotifyFullStatus/NotifyStatus on <prefix>/events/rpc, status/switch:N, online',
  variants: 2,
  createDevices(count: number, seed: number): SimDevice[] {
    checkDeviceCount('shelly_gen2', count)
    return Array.from({ length: count }, (_, i) => new ShellyGen2(i, seed))
  },
}

/** mqtt.client_id defaults to the device id; the will is `<prefix>/online` = `false`. */
export function shellyGen2Identity(device: SimDevice): ClientIdentity {
  return {
    clientId: device.id,
    clean: true,
    will: { topic: `${device.id}/online`, payload: Buffer.from('false'), qos: 0, retain: true },
  }
}
