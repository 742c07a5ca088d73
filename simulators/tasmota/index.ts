/**
 * Smart plug running Tasmota: `tele/<topic>/LWT|INFO1..3|STATE|SENSOR` and `stat/<topic>/RESULT|POWER`, with the
 * printf-style JSON Tasmota emits (`"Factor":0.00`). One tick = one TelePeriod.
 */
import { bssidCanary, checkDeviceCount, hexCanary, ipCanary, ssidCanary } from '../canary.ts'
import { fixed, jsonMessage, localIsoSeconds, textMessage } from '../format.ts'
import type { Json } from '../format.ts'
import { deriveSeed, Rng } from '../random.ts'
import type { ClientIdentity, SimDevice, SimMessage, SimulatorProfile } from '../types.ts'

const MAC_SUFFIX_BASE = 0xca11a7
const SSID_BASE = 0x7f3a
const PROFILE_CODE = 0x01
const IP_OCTET = 201
const DAY_MS = 86_400_000

/** What the plug powers; drives the power series (a plug meters one appliance, see privacy.md §2.2). */
interface Appliance {
  readonly module: string
  readonly activeWatts: readonly [number, number]
  readonly standbyWatts: number
  /** Probability that the appliance draws active power at a given tele. */
  readonly duty: number
}

const APPLIANCES: readonly Appliance[] = [
  { module: 'Sonoff Pow R2', activeWatts: [85, 140], standbyWatts: 0, duty: 0.45 }, // fridge compressor cycling
  { module: 'Gosund SP111', activeWatts: [60, 110], standbyWatts: 1, duty: 0.35 }, // TV
  { module: 'Athom Plug V2', activeWatts: [1800, 2200], standbyWatts: 0, duty: 0.08 }, // kettle
  { module: 'Nous A1T', activeWatts: [8, 12], standbyWatts: 0, duty: 0.5 }, // lamp
  { module: 'Sonoff S31', activeWatts: [350, 2100], standbyWatts: 2, duty: 0.2 }, // washing machine
]

class TasmotaPlug implements SimDevice {
  readonly id: string
  readonly canaries: readonly string[]
  readonly #rng: Rng
  readonly #suffix: string
  readonly #ssid: string
  readonly #bssid: string
  readonly #ip: string
  readonly #appliance: Appliance
  readonly #channel: number
  #bootMs: number | undefined
  #lastMs: number | undefined
  #totalStartTime = ''
  #relayOn = true
  #watts = 0
  #voltage = 230
  #factor = 0
  /** Energy counters in Wh, unrounded; Tasmota prints them in kWh with 3 decimals. */
  #totalWh = 0
  #todayWh = 0
  #yesterdayWh = 0
  #periodWh = 0
  #day = 0

  constructor(index: number, seed: number) {
    this.#rng = new Rng(deriveSeed(seed, 'tasmota', index))
    this.#suffix = hexCanary(MAC_SUFFIX_BASE, index, 6)
    this.id = `tasmota_${this.#suffix}`
    this.#ssid = ssidCanary(SSID_BASE, index)
    this.#bssid = bssidCanary(PROFILE_CODE, index, true)
    this.#ip = ipCanary(IP_OCTET, index)
    this.canaries = [this.#suffix, this.#ssid, this.#bssid, this.#ip]
    this.#appliance = this.#rng.pick(APPLIANCES)
    this.#channel = this.#rng.pick([1, 6, 11])
    this.#totalWh = this.#rng.float(1_000, 250_000)
  }

  start(nowMs: number): SimMessage[] {
    this.#boot(nowMs)
    const t = this.id
    return [
      textMessage(`tele/${t}/LWT`, 'Online', 0, true),
      jsonMessage(`tele/${t}/INFO1`, { Info1: this.#info1() }, 0, false),
      jsonMessage(`tele/${t}/INFO2`, { Info2: this.#info2() }, 0, false),
      jsonMessage(
        `tele/${t}/INFO3`,
        { Info3: { RestartReason: 'Software/System restart', BootCount: this.#rng.int(3, 90) } },
        0,
        false,
      ),
    ]
  }

  tick(nowMs: number): SimMessage[] {
    this.#boot(nowMs)
    this.#accumulateEnergy(nowMs)
    const toggled = this.#updateLoad()
    const messages = toggled ? this.#relayMessages() : []
    messages.push(jsonMessage(`tele/${this.id}/STATE`, this.#state(nowMs), 0, false))
    messages.push(jsonMessage(`tele/${this.id}/SENSOR`, this.#sensor(nowMs), 0, false))
    this.#periodWh = 0
    return messages
  }

  /** First call fixes the boot time: the plug came up a few seconds before it reached the broker. */
  #boot(nowMs: number): void {
    if (this.#bootMs !== undefined) return
    this.#bootMs = nowMs - this.#rng.int(4, 40) * 1000
    this.#lastMs = nowMs
    this.#day = Math.floor(nowMs / DAY_MS)
    this.#totalStartTime = localIsoSeconds(nowMs - this.#rng.int(30, 900) * DAY_MS)
    // The counters survive reboots (Tasmota keeps them in flash), so seed Today/Yesterday with a typical usage.
    const meanWatts = this.#meanWatts()
    this.#yesterdayWh = meanWatts * 24 * this.#rng.float(0.6, 1.4)
    this.#todayWh = meanWatts * ((nowMs % DAY_MS) / 3_600_000) * this.#rng.float(0.6, 1.4)
    this.#updateLoad()
  }

  #meanWatts(): number {
    const { activeWatts, standbyWatts, duty } = this.#appliance
    return ((activeWatts[0] + activeWatts[1]) / 2) * duty + standbyWatts * (1 - duty)
  }

  /** Integrates the power reported at the previous tele over the elapsed time, so Total stays consistent. */
  #accumulateEnergy(nowMs: number): void {
    const elapsedMs = Math.max(0, nowMs - (this.#lastMs ?? nowMs))
    this.#lastMs = Math.max(nowMs, this.#lastMs ?? nowMs)
    const day = Math.floor(nowMs / DAY_MS)
    if (day > this.#day) {
      this.#yesterdayWh = day === this.#day + 1 ? this.#todayWh : 0
      this.#todayWh = 0
      this.#day = day
    }
    const wh = (this.#watts * elapsedMs) / 3_600_000
    this.#totalWh += wh
    this.#todayWh += wh
    this.#periodWh += wh
  }

  /** Draws the next instantaneous load; returns true when the relay toggled (which Tasmota reports on stat/). */
  #updateLoad(): boolean {
    const toggled = this.#rng.chance(0.04)
    if (toggled) this.#relayOn = !this.#relayOn
    const { activeWatts, standbyWatts, duty } = this.#appliance
    const active = this.#rng.chance(duty)
    this.#watts = !this.#relayOn ? 0 : active ? this.#rng.float(activeWatts[0], activeWatts[1]) : standbyWatts
    this.#voltage = Math.round(this.#rng.gaussian(230, 1.5))
    this.#factor = this.#watts > 0 ? this.#rng.float(active ? 0.88 : 0.3, active ? 1 : 0.6) : 0
    return toggled
  }

  #relayMessages(): SimMessage[] {
    const power = this.#relayOn ? 'ON' : 'OFF'
    return [
      jsonMessage(`stat/${this.id}/RESULT`, { POWER: power }, 0, false),
      textMessage(`stat/${this.id}/POWER`, power, 0, false),
    ]
  }

  #info1(): Record<string, string> {
    return {
      Module: this.#appliance.module,
      Version: '13.4.0(tasmota)',
      FallbackTopic: `cmnd/DVES_${this.#suffix}_fb/`,
      GroupTopic: 'cmnd/tasmotas/',
    }
  }

  #info2(): Record<string, string> {
    const chipId = this.#rng.int(0, 0x1fff).toString().padStart(4, '0')
    return { WebServerMode: 'Admin', Hostname: `tasmota-${this.#suffix}-${chipId}`, IPAddress: this.#ip }
  }

  #state(nowMs: number): Json {
    const uptimeSec = Math.floor((nowMs - (this.#bootMs ?? nowMs)) / 1000)
    const rssi = Math.min(100, Math.max(20, Math.round(this.#rng.gaussian(72, 6))))
    return {
      Time: localIsoSeconds(nowMs),
      Uptime: formatUptime(uptimeSec),
      UptimeSec: uptimeSec,
      Heap: this.#rng.int(20, 28),
      SleepMode: 'Dynamic',
      Sleep: 50,
      LoadAvg: this.#rng.int(18, 24),
      MqttCount: 1,
      POWER: this.#relayOn ? 'ON' : 'OFF',
      Wifi: {
        AP: 1,
        SSId: this.#ssid,
        BSSId: this.#bssid,
        Channel: this.#channel,
        Mode: '11n',
        RSSI: rssi,
        Signal: Math.round(rssi / 2 - 100),
        LinkCount: 1,
        Downtime: '0T00:00:03',
      },
    }
  }

  #sensor(nowMs: number): Json {
    const current = this.#watts > 0 ? this.#watts / (this.#voltage * this.#factor) : 0
    const apparent = this.#voltage * current
    return {
      Time: localIsoSeconds(nowMs),
      ENERGY: {
        TotalStartTime: this.#totalStartTime,
        Total: fixed(this.#totalWh / 1000, 3),
        Yesterday: fixed(this.#yesterdayWh / 1000, 3),
        Today: fixed(this.#todayWh / 1000, 3),
        Period: Math.round(this.#periodWh),
        Power: Math.round(this.#watts),
        ApparentPower: Math.round(apparent),
        ReactivePower: Math.round(Math.sqrt(Math.max(0, apparent ** 2 - this.#watts ** 2))),
        Factor: fixed(this.#factor, 2),
        Voltage: this.#voltage,
        Current: fixed(current, 3),
      },
    }
  }
}

/** Tasmota's `Uptime` format: `<days>T<hh>:<mm>:<ss>`. */
function formatUptime(totalSeconds: number): string {
  const days = Math.floor(totalSeconds / 86_400)
  const pad = (n: number): string => String(n).padStart(2, '0')
  const h = Math.floor((totalSeconds % 86_400) / 3600)
  const m = Math.floor((totalSeconds % 3600) / 60)
  return `${days}T${pad(h)}:${pad(m)}:${pad(totalSeconds % 60)}`
}

export const tasmotaProfile: SimulatorProfile = {
  name: 'tasmota',
  category: 'smart_plug',
  description: 'Tasmota smart plug: LWT, INFO1-3, STATE (Wi-Fi) and SENSOR (ENERGY) every TelePeriod',
  variants: 1,
  createDevices(count: number, seed: number): SimDevice[] {
    checkDeviceCount('tasmota', count)
    return Array.from({ length: count }, (_, i) => new TasmotaPlug(i, seed))
  },
}

/** Tasmota connects as `DVES_<MAC suffix>` with a retained `Offline` will on its LWT topic. */
export function tasmotaIdentity(device: SimDevice): ClientIdentity {
  const suffix = device.id.replace(/^tasmota_/, '')
  return {
    clientId: `DVES_${suffix}`,
    clean: true,
    will: { topic: `tele/${device.id}/LWT`, payload: Buffer.from('Offline'), qos: 1, retain: true },
  }
}
