/**
 * Zigbee smart plugs behind Zigbee2MQTT (default base topic `zigbee2mqtt`). The friendly name is the device id:
 * the IEEE address for a plug nobody renamed, else a room or person name, possibly with `/` groups
 * (`CanaryKitchen/Kettle`, `CanaryFlat/CanaryBedroom/Heater`). On start the bridge announces the device on
 * `zigbee2mqtt/bridge/event` (IEEE address and friendly name) and marks it available (`{"state":"online"}`,
 * retained). Each tick is one attribute report: the plug's whole state, energy in kWh, as Z2M publishes it.
 */
import { checkDeviceCount, hexCanary, listCanary } from '../canary.ts'
import { jsonMessage, round } from '../format.ts'
import type { Json } from '../format.ts'
import { deriveSeed, Rng } from '../random.ts'
import type { ClientIdentity, SimDevice, SimMessage, SimulatorProfile } from '../types.ts'

/** Index 0 keeps the default (its IEEE address), the others were renamed, with zero, one or two `/`. */
const NAMES = [
  '',
  'CanaryKitchen/Kettle',
  'CanaryFlat/CanaryBedroom/Heater',
  'Canary Livingroom TV',
  'CanaryOffice/Desk lamp',
]
/** Xiaomi's OUI in an EUI-64; the last five bytes count the devices. */
const IEEE_PREFIX = '0x00158d'
const IEEE_BASE = 0xca0000
// 00158d (Xiaomi) + 0001 + six hex digits: the 16 hex digits of an EUI-64.
const MODELS = [
  { model: 'ZNCZ04LM', vendor: 'Xiaomi', description: 'Mi power plug ZigBee EU' },
  { model: 'TS011F_plug_1', vendor: 'Tuya', description: 'Smart plug (with power monitoring)' },
]

class Zigbee2MqttPlug implements SimDevice {
  readonly id: string
  readonly canaries: readonly string[]
  readonly #rng: Rng
  readonly #ieee: string
  readonly #activeWatts: number
  #lastMs: number | undefined
  #on = true
  #watts = 0
  #energyKwh: number
  #temperature: number

  constructor(index: number, seed: number) {
    this.#rng = new Rng(deriveSeed(seed, 'zigbee2mqtt', index))
    this.#ieee = `${IEEE_PREFIX}0001${hexCanary(IEEE_BASE, index, 6).toLowerCase()}`
    const name = listCanary(NAMES, index, (hex) => `CanaryRoom${hex}/Plug`)
    this.id = name === '' ? this.#ieee : name
    this.canaries =
      name === '' ? [this.#ieee] : [this.#ieee, ...name.split('/').filter((part) => part.startsWith('Canary'))]
    // Drawn and unused: the draw keeps every later value of the device's seeded sequence as it was.
    this.#rng.pick(MODELS)
    this.#activeWatts = this.#rng.float(30, 2000)
    this.#energyKwh = this.#rng.float(1, 400)
    this.#temperature = this.#rng.float(22, 35)
  }

  start(nowMs: number): SimMessage[] {
    this.#lastMs = nowMs
    const event: Json = {
      type: 'device_announce',
      data: { friendly_name: this.id, ieee_address: this.#ieee },
    }
    return [
      jsonMessage('zigbee2mqtt/bridge/event', event, 0, false),
      jsonMessage(`zigbee2mqtt/${this.id}/availability`, { state: 'online' }, 0, true),
    ]
  }

  tick(nowMs: number): SimMessage[] {
    const hours = Math.max(0, nowMs - (this.#lastMs ?? nowMs)) / 3_600_000
    this.#lastMs = Math.max(nowMs, this.#lastMs ?? nowMs)
    this.#energyKwh += (this.#watts * hours) / 1000
    if (this.#rng.chance(0.03)) this.#on = !this.#on
    this.#watts = this.#on
      ? this.#rng.chance(0.4)
        ? this.#activeWatts * this.#rng.float(0.9, 1.05)
        : this.#rng.float(0.3, 2)
      : 0
    this.#temperature += this.#rng.gaussian(0, 0.4)
    const voltage = Math.round(this.#rng.gaussian(231, 1.5))
    // Keys in the alphabetical order Z2M writes them; energy with the precision of the plug's cluster (0.01 kWh).
    const state: Json = {
      current: round(this.#watts / voltage, 2),
      device_temperature: Math.round(this.#temperature),
      energy: round(this.#energyKwh, 2),
      linkquality: this.#rng.int(40, 200),
      power: round(this.#watts, 1),
      power_outage_memory: true,
      state: this.#on ? 'ON' : 'OFF',
      update: { installed_version: 8_448, latest_version: 8_448, state: 'idle' },
      voltage,
    }
    return [jsonMessage(`zigbee2mqtt/${this.id}`, state, 0, false)]
  }
}

export const zigbee2mqttProfile: SimulatorProfile = {
  name: 'zigbee2mqtt',
  category: 'smart_plug',
  description:
    'Zigbee2MQTT plugs: state reports with energy in kWh, availability, bridge device_announce; friendly names with /',
  variants: 3,
  createDevices(count: number, seed: number): SimDevice[] {
    checkDeviceCount('zigbee2mqtt', count)
    return Array.from({ length: count }, (_, i) => new Zigbee2MqttPlug(i, seed))
  },
}

/**
 * All Zigbee devices share the bridge's one MQTT connection (client id `mqttjs_<random>` by default); one client
 * per simulated plug needs its own id. The will is on `zigbee2mqtt/bridge/state`.
 */
export function zigbee2mqttIdentity(device: SimDevice): ClientIdentity {
  return {
    clientId: `zigbee2mqtt_${device.canaries[0] ?? ''}`,
    clean: true,
    will: { topic: 'zigbee2mqtt/bridge/state', payload: Buffer.from('{"state":"offline"}'), qos: 1, retain: true },
  }
}
