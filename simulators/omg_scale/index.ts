/**
 * Xiaomi BLE body scales heard by OpenMQTTGateway or Theengs Gateway: `home/<gateway name>/BTtoMQTT/<MAC without
 * colons>`, the decoded advertisement as JSON (`id` is the MAC with colons). A tick is one weigh-in: the scale
 * advertises while the weight settles and the gateway publishes each advertisement it decodes (two to four
 * messages, the last one stable, with impedance on the Body Composition Scale). Gateway names are set by their
 * owners (`CanaryKitchenGW`); even-indexed devices sit behind OpenMQTTGateway, odd ones behind Theengs Gateway.
 */
import { checkDeviceCount, hexCanary, listCanary } from '../canary.ts'
import { fixed, jsonMessage, textMessage } from '../format.ts'
import type { Json } from '../format.ts'
import { deriveSeed, Rng } from '../random.ts'
import type { ClientIdentity, SimDevice, SimMessage, SimulatorProfile } from '../types.ts'

const GATEWAY_NAMES = ['CanaryBathroomGW', 'CanaryHallwayGW', 'CanaryAtticGW', 'CanaryCellarGW']
/** Xiaomi's OUI; the rest counts the scales. */
const MAC_OUI = 'C8:47:8C'
const MAC_BASE = 0x0a5c00

const MODELS = [
  {
    model: 'Mi Body Composition Scale 2',
    model_id: 'XMTZC02HM/XMTZC05HM',
    uuid: '181b',
    impedance: true,
    name: 'MIBFS',
  },
  { model: 'Mi Smart Scale', model_id: 'XMTZC01HM/XMTZC04HM', uuid: '181d', impedance: false, name: 'MI SCALE2' },
]

class OmgScale implements SimDevice {
  readonly id: string
  readonly canaries: readonly string[]
  readonly #rng: Rng
  readonly #mac: string
  readonly #gateway: string
  readonly #theengs: boolean
  readonly #model: (typeof MODELS)[number]
  readonly #baseWeight: number

  constructor(index: number, seed: number) {
    this.#rng = new Rng(deriveSeed(seed, 'omg_scale', index))
    const hex = hexCanary(MAC_BASE, index, 6)
    this.#mac = `${MAC_OUI}:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4)}`
    this.id = this.#mac.replaceAll(':', '')
    this.#gateway = listCanary(GATEWAY_NAMES, index, (h) => `CanaryGateway${h}`)
    // The MAC with colons is the payload's id; its bare form (the topic level) is one of the forms the check knows.
    this.canaries = [this.#mac, this.#gateway]
    this.#theengs = index % 2 === 1
    this.#model = this.#rng.pick(MODELS)
    this.#baseWeight = this.#rng.float(50, 105)
  }

  start(): SimMessage[] {
    // The gateway's own LWT: `online`, retained.
    return [textMessage(`home/${this.#gateway}/LWT`, 'online', 0, true)]
  }

  tick(): SimMessage[] {
    const finalWeight = Math.round((this.#baseWeight + this.#rng.gaussian(0, 0.4)) * 20) / 20
    const steps = this.#rng.int(2, 4)
    const out: SimMessage[] = []
    for (let i = 1; i <= steps; i++) {
      const stable = i === steps
      const weight = stable ? finalWeight : Math.round(finalWeight * this.#rng.float(0.6, 0.99) * 20) / 20
      out.push(jsonMessage(`home/${this.#gateway}/BTtoMQTT/${this.id}`, this.#payload(weight, stable), 0, false))
    }
    return out
  }

  #payload(weight: number, stable: boolean): Json {
    const m = this.#model
    const decoded: Record<string, Json | undefined> = {
      id: this.#mac,
      mac_type: this.#theengs ? 0 : undefined,
      name: m.name,
      rssi: this.#rng.int(-90, -55),
      brand: 'Xiaomi',
      model: m.model,
      model_id: m.model_id,
      type: 'SCALE',
      weighing_mode: 'person',
      unit: 'kg',
      weight: fixed(weight, 2),
    }
    if (m.impedance && stable) decoded.impedance = this.#rng.int(420, 560)
    // Theengs publishes the raw service data beside the decoded values by default.
    if (this.#theengs) {
      decoded.servicedatauuid = `0x${m.uuid}`
      decoded.servicedata = this.#rng.bytes(13).toString('hex')
    }
    return decoded
  }
}

export const omgScaleProfile: SimulatorProfile = {
  name: 'omg_scale',
  category: 'body_scale',
  description:
    'Xiaomi BLE scales via OpenMQTTGateway / Theengs: home/<gateway>/BTtoMQTT/<MAC>, settling weights per weigh-in',
  variants: 2,
  createDevices(count: number, seed: number): SimDevice[] {
    checkDeviceCount('omg_scale', count)
    return Array.from({ length: count }, (_, i) => new OmgScale(i, seed))
  },
}

/** The gateway connects under its own name, with `offline` as its retained will on `home/<gateway>/LWT`. */
export function omgScaleIdentity(device: SimDevice): ClientIdentity {
  const gateway = device.canaries[1] ?? 'OpenMQTTGateway'
  return {
    clientId: gateway,
    clean: true,
    will: { topic: `home/${gateway}/LWT`, payload: Buffer.from('offline'), qos: 0, retain: true },
  }
}
