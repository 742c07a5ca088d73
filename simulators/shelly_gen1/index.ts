/**
 * Shelly gen1 devices (ESP8266 firmware, documented MQTT API): `shellies/<model>-<MAC suffix>/...`, every value a
 * text payload of its own, published each `mqtt.update_period` (30 s): one tick. Three kinds by device index:
 * a Plug S (relay/0), a Shelly 2.5 (relay/0 and relay/1, each with its own meter) and a Shelly EM (emeter/0 and
 * emeter/1, two clamps). Energy counters are watt-minutes (relay/N/energy, emeter/N/energy, reset on reboot);
 * emeter/N/total is the persistent counter in Wh.
 */
import { checkDeviceCount, hexCanary, ipCanary, ssidCanary } from '../canary.ts'
import { fixed, jsonMessage, textMessage } from '../format.ts'
import type { Json } from '../format.ts'
import { deriveSeed, Rng } from '../random.ts'
import type { ClientIdentity, SimDevice, SimMessage, SimulatorProfile } from '../types.ts'

const MAC_SUFFIX_BASE = 0xc5e100
/** Allterco's OUI, the first half of every gen1 MAC. */
const OUI = 'E868E7'
const SSID_BASE = 0x9100
const IP_OCTET = 206
const FW = '20230913-114008/v1.14.0-gcb84623'
const INFO_EVERY_TICKS = 10

interface Kind {
  readonly model: string
  readonly type: string
  readonly relays: number
  readonly emeters: number
}

const KINDS: readonly Kind[] = [
  { model: 'shellyplug-s', type: 'SHPLG-S', relays: 1, emeters: 0 },
  { model: 'shellyswitch25', type: 'SHSW-25', relays: 2, emeters: 0 },
  { model: 'shellyem', type: 'SHEM', relays: 1, emeters: 2 },
]

/** One metered circuit: its load and its counters. */
interface Channel {
  readonly activeWatts: readonly [number, number]
  readonly duty: number
  on: boolean
  watts: number
  /** Watt-minutes since boot (relay/N/energy, emeter/N/energy). */
  wattMinutes: number
  /** Persistent Wh (emeter/N/total). */
  totalWh: number
  returnedWh: number
}

class ShellyGen1 implements SimDevice {
  readonly id: string
  readonly canaries: readonly string[]
  readonly #rng: Rng
  readonly #kind: Kind
  readonly #mac: string
  readonly #ip: string
  readonly #ssid: string
  readonly #relays: Channel[]
  readonly #emeters: Channel[]
  #lastMs: number | undefined
  #bootMs = 0
  #ticks = 0
  #temperature: number

  constructor(index: number, seed: number) {
    this.#rng = new Rng(deriveSeed(seed, 'shelly_gen1', index))
    this.#kind = KINDS[index % KINDS.length] as Kind
    const suffix = hexCanary(MAC_SUFFIX_BASE, index, 6)
    this.#mac = `${OUI}${suffix}`
    this.id = `${this.#kind.model}-${suffix}`
    this.#ip = ipCanary(IP_OCTET, index)
    this.#ssid = ssidCanary(SSID_BASE, index)
    // The MAC suffix is in the topic, the whole MAC in announce and info: the suffix catches both.
    this.canaries = [suffix, this.#ip, this.#ssid]
    const channel = (watts: readonly [number, number], duty: number): Channel => ({
      activeWatts: watts,
      duty,
      on: true,
      watts: 0,
      wattMinutes: 0,
      totalWh: this.#rng.float(5_000, 900_000),
      returnedWh: 0,
    })
    this.#relays = Array.from({ length: this.#kind.relays }, () => channel([40, 2000], this.#rng.float(0.1, 0.5)))
    // An EM measures whole circuits (a heat pump, the rest of the flat): always some base load.
    this.#emeters = Array.from({ length: this.#kind.emeters }, () => channel([150, 3500], this.#rng.float(0.3, 0.7)))
    this.#temperature = this.#rng.float(28, 40)
  }

  start(nowMs: number): SimMessage[] {
    this.#bootMs = nowMs - this.#rng.int(5, 60) * 1000
    this.#lastMs = nowMs
    const base = `shellies/${this.id}`
    const announce: Json = {
      id: this.id,
      model: this.#kind.type,
      mac: this.#mac,
      ip: this.#ip,
      new_fw: false,
      fw_ver: FW,
    }
    return [
      textMessage(`${base}/online`, 'true', 0, true),
      jsonMessage('shellies/announce', announce, 0, false),
      jsonMessage(`${base}/announce`, announce, 0, false),
      jsonMessage(`${base}/info`, this.#info(nowMs), 0, false),
    ]
  }

  tick(nowMs: number): SimMessage[] {
    const minutes = Math.max(0, nowMs - (this.#lastMs ?? nowMs)) / 60_000
    this.#lastMs = Math.max(nowMs, this.#lastMs ?? nowMs)
    const base = `shellies/${this.id}`
    const out: SimMessage[] = []
    this.#relays.forEach((relay, n) => {
      this.#integrate(relay, minutes)
      this.#draw(relay)
      out.push(textMessage(`${base}/relay/${n}`, relay.on ? 'on' : 'off', 0, false))
      // A relay without its own meter (the EM's contactor output) publishes its state only.
      if (this.#kind.emeters > 0) return
      out.push(textMessage(`${base}/relay/${n}/power`, relay.watts.toFixed(2), 0, false))
      out.push(textMessage(`${base}/relay/${n}/energy`, String(Math.floor(relay.wattMinutes)), 0, false))
    })
    this.#emeters.forEach((meter, n) => {
      this.#integrate(meter, minutes)
      this.#draw(meter)
      const voltage = this.#rng.gaussian(230, 1.2)
      const at = `${base}/emeter/${n}`
      out.push(textMessage(`${at}/power`, meter.watts.toFixed(2), 0, false))
      out.push(textMessage(`${at}/reactive_power`, (meter.watts * this.#rng.float(0.05, 0.25)).toFixed(2), 0, false))
      out.push(textMessage(`${at}/voltage`, voltage.toFixed(2), 0, false))
      out.push(textMessage(`${at}/energy`, String(Math.floor(meter.wattMinutes)), 0, false))
      out.push(textMessage(`${at}/returned_energy`, '0', 0, false))
      out.push(textMessage(`${at}/total`, meter.totalWh.toFixed(2), 0, false))
      out.push(textMessage(`${at}/total_returned`, meter.returnedWh.toFixed(2), 0, false))
    })
    this.#temperature += this.#rng.gaussian(0, 0.3)
    out.push(textMessage(`${base}/temperature`, this.#temperature.toFixed(2), 0, false))
    out.push(textMessage(`${base}/overtemperature`, '0', 0, false))
    if (++this.#ticks % INFO_EVERY_TICKS === 0) out.push(jsonMessage(`${base}/info`, this.#info(nowMs), 0, false))
    return out
  }

  /** The power reported at the previous period is integrated over the elapsed minutes. */
  #integrate(c: Channel, minutes: number): void {
    c.wattMinutes += c.watts * minutes
    c.totalWh += (c.watts * minutes) / 60
  }

  #draw(c: Channel): void {
    if (this.#rng.chance(0.03)) c.on = !c.on
    const active = this.#rng.chance(c.duty)
    c.watts = !c.on
      ? 0
      : active
        ? this.#rng.float(c.activeWatts[0], c.activeWatts[1])
        : this.#emeters.includes(c)
          ? this.#rng.float(80, 160)
          : 0
  }

  /** The /status JSON the firmware publishes on info. */
  #info(nowMs: number): Json {
    const unixtime = Math.floor(nowMs / 1000)
    const meters = (this.#kind.emeters > 0 ? [] : this.#relays).map((r) => ({
      power: fixed(r.watts, 2),
      overpower: fixed(0, 2),
      is_valid: true,
      // local time, as the firmware keeps it (UTC here)
      timestamp: unixtime,
      counters: [fixed(r.watts * 0.98, 3), fixed(r.watts * 1.01, 3), fixed(r.watts, 3)],
      total: Math.floor(r.wattMinutes),
    }))
    return {
      wifi_sta: { connected: true, ssid: this.#ssid, ip: this.#ip, rssi: this.#rng.int(-80, -45) },
      cloud: { enabled: false, connected: false },
      mqtt: { connected: true },
      time: new Date(nowMs).toISOString().slice(11, 16),
      unixtime,
      serial: this.#ticks,
      has_update: false,
      mac: this.#mac,
      cfg_changed_cnt: 0,
      actions_stats: { skipped: 0 },
      relays: this.#relays.map((r) => ({
        ison: r.on,
        has_timer: false,
        timer_started: 0,
        timer_duration: 0,
        timer_remaining: 0,
        overpower: false,
        source: 'mqtt',
      })),
      meters,
      temperature: fixed(this.#temperature, 2),
      overtemperature: false,
      uptime: Math.floor((nowMs - this.#bootMs) / 1000),
    }
  }
}

export const shellyGen1Profile: SimulatorProfile = {
  name: 'shelly_gen1',
  category: 'smart_plug',
  description:
    'Shelly gen1 Plug S, 2.5 and EM: relay/N, power and watt-minute energy, emeter/N, temperature, online, announce, info',
  variants: 3,
  createDevices(count: number, seed: number): SimDevice[] {
    checkDeviceCount('shelly_gen1', count)
    return Array.from({ length: count }, (_, i) => new ShellyGen1(i, seed))
  },
}

/** The client id is the device id; the retained will marks it offline. */
export function shellyGen1Identity(device: SimDevice): ClientIdentity {
  return {
    clientId: device.id,
    clean: true,
    will: { topic: `shellies/${device.id}/online`, payload: Buffer.from('false'), qos: 0, retain: true },
  }
}
