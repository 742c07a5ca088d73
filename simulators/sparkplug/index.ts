/**
 * Sparkplug B edge nodes (Eclipse Sparkplug 3.0.0, `spBv1.0`): one edge node per simulated device, in a group named
 * after its site, with its serial number as the edge node id, the way metering gateways and PLC bridges are set up.
 * On connect: NBIRTH (bdSeq, every node metric with name, alias and data type, the node's serial, site, MAC and IP
 * as string properties) and a DBIRTH per attached device. Each tick (one report period): NDATA and a DDATA per
 * device, by alias only and changed values only, `seq` counting 0..255 per edge node across all its messages.
 * Now and then a device drops off (DDEATH, born again the next tick) and the edge node loses its session (NDEATH,
 * then NBIRTH with bdSeq + 1 and the DBIRTHs). Kinds by index: even nodes are an energy-meter gateway with one
 * sub-meter, odd ones a PLC bridge with a pump and a compressor.
 */
import { sparkplugPayloadType } from '../../filters/profiles/sparkplug/codec.ts'
import { DEFAULT_SPARKPLUG_CATEGORY } from '../../filters/profiles/sparkplug/index.ts'
import { bssidCanary, checkDeviceCount, hexCanary, ipCanary, listCanary } from '../canary.ts'
import { binaryMessage, round } from '../format.ts'
import { deriveSeed, Rng } from '../random.ts'
import type { ClientIdentity, SimDevice, SimMessage, SimulatorProfile } from '../types.ts'

const SITE_NAMES = ['CanaryMillbrook', 'CanaryHarbourside', 'CanaryOakfield', 'CanaryRivermead']
const PROFILE_CODE = 0x0b
const IP_OCTET = 211
const HOUR = 3_600_000

/** Sparkplug B data types used here (specification 6.4.16). */
const T = { Int64: 4, UInt64: 8, Float: 9, Double: 10, Boolean: 11, String: 12 } as const
type DataType = (typeof T)[keyof typeof T]

interface Metric {
  name?: string
  alias?: number
  datatype?: DataType
  value: number | string | boolean
  timestamp?: number
}

interface Kind {
  readonly model: string
  readonly make: string
  readonly devices: readonly {
    readonly name: string
    readonly model: string
    readonly watts: readonly [number, number]
  }[]
}

const KINDS: readonly Kind[] = [
  { model: 'EM-GW200', make: 'Acme Metering', devices: [{ name: 'Meter1', model: 'EM340', watts: [300, 4_000] }] },
  {
    model: 'PLC-Bridge S7',
    make: 'Acme Automation',
    devices: [
      { name: 'Pump1', model: 'VFD-P11', watts: [800, 5_500] },
      { name: 'Compressor1', model: 'VFD-C22', watts: [1_500, 11_000] },
    ],
  },
]

/** Aliases the node's birth declares; data messages carry only these. */
const NODE_ALIAS = {
  rebirth: 1,
  energy: 2,
  power: 3,
  voltage: 4,
  uptime: 5,
  serial: 6,
  location: 7,
  mac: 8,
  ip: 9,
  make: 10,
  model: 11,
}
const DEVICE_ALIAS = { energy: 1, power: 2, voltage: 3, current: 4, running: 5, serial: 6, model: 7 }

interface AttachedDevice {
  readonly name: string
  readonly model: string
  readonly serial: string
  readonly watts: readonly [number, number]
  readonly duty: number
  online: boolean
  running: boolean
  powerW: number
  voltage: number
  /** kWh, never decreasing. */
  energyKwh: number
}

class SparkplugEdgeNode implements SimDevice {
  readonly id: string
  readonly canaries: readonly string[]
  readonly #rng: Rng
  readonly #kind: Kind
  readonly #group: string
  readonly #node: string
  readonly #serial: string
  readonly #mac: string
  readonly #ip: string
  readonly #devices: AttachedDevice[]
  /** Birth/death sequence: the NDEATH registered as the Will carries the bdSeq of the NBIRTH that follows. */
  #bdSeq: number
  #seq = 0
  #sessionEndMs = 0
  #bootMs = 0
  #lastMs: number | undefined
  #voltage = 230

  constructor(index: number, seed: number) {
    this.#rng = new Rng(deriveSeed(seed, 'sparkplug', index))
    this.#kind = KINDS[index % KINDS.length] as Kind
    this.#group = listCanary(SITE_NAMES, index, (hex) => `CanarySite${hex}`)
    this.#serial = `CA5B${hexCanary(0, index, 4)}`
    this.#node = `edge-${this.#serial}`
    this.id = `${this.#group}/${this.#node}`
    this.#mac = bssidCanary(PROFILE_CODE, index, true)
    this.#ip = ipCanary(IP_OCTET, index)
    this.#devices = this.#kind.devices.map((d, n) => ({
      name: d.name,
      model: d.model,
      serial: `CA5D${hexCanary(0, index * 2 + n, 4)}`,
      watts: d.watts,
      duty: this.#rng.float(0.2, 0.7),
      online: true,
      running: true,
      powerW: 0,
      voltage: 400,
      energyKwh: this.#rng.float(100, 80_000),
    }))
    this.canaries = [this.#group, this.#serial, this.#mac, this.#ip, ...this.#devices.map((d) => d.serial)]
    this.#bdSeq = this.#rng.int(0, 255)
  }

  /** The NDEATH the edge node registers as its MQTT Will before its next NBIRTH. */
  deathCertificate(nowMs: number): SimMessage {
    return binaryMessage(
      this.#topic('NDEATH'),
      encode({
        timestamp: nowMs,
        metrics: [{ name: 'bdSeq', datatype: T.UInt64, value: this.#bdSeq, timestamp: nowMs }],
      }),
      1,
      false,
    )
  }

  start(nowMs: number): SimMessage[] {
    this.#bootMs = nowMs - this.#rng.int(20, 600) * 1000
    this.#lastMs = nowMs
    return this.#births(nowMs)
  }

  tick(nowMs: number): SimMessage[] {
    const elapsedH = Math.max(0, nowMs - (this.#lastMs ?? nowMs)) / HOUR
    this.#lastMs = Math.max(nowMs, this.#lastMs ?? nowMs)
    for (const d of this.#devices) d.energyKwh += ((d.online ? d.powerW : 0) * elapsedH) / 1000
    // A lost session: the broker publishes the Will, the node reconnects and is born again with the next bdSeq.
    if (nowMs >= this.#sessionEndMs || this.#rng.chance(0.002)) {
      const death = this.deathCertificate(nowMs)
      this.#bdSeq = (this.#bdSeq + 1) % 256
      this.#bootMs = nowMs
      for (const d of this.#devices) d.online = true
      return [death, ...this.#births(nowMs + this.#rng.int(2_000, 30_000))]
    }
    const out: SimMessage[] = [this.#nodeData(nowMs)]
    for (const d of this.#devices) {
      if (!d.online) {
        d.online = true
        out.push(this.#deviceBirth(d, nowMs))
      } else if (this.#rng.chance(0.01)) {
        d.online = false
        out.push(
          binaryMessage(
            this.#topic('DDEATH', d.name),
            encode({ timestamp: nowMs, seq: this.#nextSeq(), metrics: [] }),
            0,
            false,
          ),
        )
        continue
      }
      out.push(this.#deviceData(d, nowMs))
    }
    return out
  }

  #births(nowMs: number): SimMessage[] {
    this.#seq = 0
    // Sessions last hours to a day; the 48-hour privacy run sees several rebirths.
    this.#sessionEndMs = nowMs + this.#rng.float(4, 20) * HOUR
    this.#voltage = this.#rng.gaussian(230, 1.5)
    const total = this.#devices.reduce((sum, d) => sum + d.energyKwh, 0)
    const power = this.#devices.reduce((sum, d) => sum + d.powerW, 0)
    const nbirth = encode({
      timestamp: nowMs,
      seq: 0,
      metrics: [
        { name: 'bdSeq', datatype: T.UInt64, value: this.#bdSeq, timestamp: nowMs },
        {
          name: 'Node Control/Rebirth',
          alias: NODE_ALIAS.rebirth,
          datatype: T.Boolean,
          value: false,
          timestamp: nowMs,
        },
        {
          name: 'Energy/Total',
          alias: NODE_ALIAS.energy,
          datatype: T.Double,
          value: round(total, 3),
          timestamp: nowMs,
        },
        { name: 'Power/Active', alias: NODE_ALIAS.power, datatype: T.Double, value: round(power, 1), timestamp: nowMs },
        {
          name: 'Voltage/L1',
          alias: NODE_ALIAS.voltage,
          datatype: T.Float,
          value: round(this.#voltage, 1),
          timestamp: nowMs,
        },
        {
          name: 'Node Info/Uptime',
          alias: NODE_ALIAS.uptime,
          datatype: T.Int64,
          value: Math.floor((nowMs - this.#bootMs) / 1000),
          timestamp: nowMs,
        },
        {
          name: 'Properties/Serial Number',
          alias: NODE_ALIAS.serial,
          datatype: T.String,
          value: this.#serial,
          timestamp: nowMs,
        },
        {
          name: 'Properties/Location',
          alias: NODE_ALIAS.location,
          datatype: T.String,
          value: `${this.#group} Hall 2, Cabinet E${this.#rng.int(1, 9)}`,
          timestamp: nowMs,
        },
        {
          name: 'Properties/MAC Address',
          alias: NODE_ALIAS.mac,
          datatype: T.String,
          value: this.#mac,
          timestamp: nowMs,
        },
        { name: 'Properties/IP Address', alias: NODE_ALIAS.ip, datatype: T.String, value: this.#ip, timestamp: nowMs },
        {
          name: 'Properties/Hardware Make',
          alias: NODE_ALIAS.make,
          datatype: T.String,
          value: this.#kind.make,
          timestamp: nowMs,
        },
        {
          name: 'Properties/Hardware Model',
          alias: NODE_ALIAS.model,
          datatype: T.String,
          value: this.#kind.model,
          timestamp: nowMs,
        },
      ],
    })
    return [
      binaryMessage(this.#topic('NBIRTH'), nbirth, 0, false),
      ...this.#devices.map((d) => this.#deviceBirth(d, nowMs)),
    ]
  }

  #deviceBirth(d: AttachedDevice, nowMs: number): SimMessage {
    this.#step(d)
    const payload = encode({
      timestamp: nowMs,
      seq: this.#nextSeq(),
      metrics: [
        {
          name: 'Energy/Total',
          alias: DEVICE_ALIAS.energy,
          datatype: T.Double,
          value: round(d.energyKwh, 3),
          timestamp: nowMs,
        },
        {
          name: 'Power/Active',
          alias: DEVICE_ALIAS.power,
          datatype: T.Double,
          value: round(d.powerW, 1),
          timestamp: nowMs,
        },
        {
          name: 'Voltage/L1-L2',
          alias: DEVICE_ALIAS.voltage,
          datatype: T.Float,
          value: round(d.voltage, 1),
          timestamp: nowMs,
        },
        {
          name: 'Current/L1',
          alias: DEVICE_ALIAS.current,
          datatype: T.Float,
          value: round(current(d), 2),
          timestamp: nowMs,
        },
        {
          name: 'Status/Running',
          alias: DEVICE_ALIAS.running,
          datatype: T.Boolean,
          value: d.running,
          timestamp: nowMs,
        },
        {
          name: 'Properties/Serial Number',
          alias: DEVICE_ALIAS.serial,
          datatype: T.String,
          value: d.serial,
          timestamp: nowMs,
        },
        { name: 'Properties/Model', alias: DEVICE_ALIAS.model, datatype: T.String, value: d.model, timestamp: nowMs },
      ],
    })
    return binaryMessage(this.#topic('DBIRTH', d.name), payload, 0, false)
  }

  #nodeData(nowMs: number): SimMessage {
    this.#voltage = this.#rng.gaussian(230, 1.5)
    const total = this.#devices.reduce((sum, d) => sum + d.energyKwh, 0)
    const power = this.#devices.reduce((sum, d) => sum + (d.online ? d.powerW : 0), 0)
    const metrics: Metric[] = [
      { alias: NODE_ALIAS.energy, value: round(total, 3), timestamp: nowMs },
      { alias: NODE_ALIAS.power, value: round(power, 1), timestamp: nowMs },
      { alias: NODE_ALIAS.voltage, value: round(this.#voltage, 1), timestamp: nowMs },
      { alias: NODE_ALIAS.uptime, value: Math.floor((nowMs - this.#bootMs) / 1000), timestamp: nowMs },
    ]
    return binaryMessage(
      this.#topic('NDATA'),
      encode({ timestamp: nowMs, seq: this.#nextSeq(), metrics }, NODE_TYPES),
      0,
      false,
    )
  }

  #deviceData(d: AttachedDevice, nowMs: number): SimMessage {
    const wasRunning = d.running
    this.#step(d)
    // Report by exception: the running state only when it changed.
    const metrics: Metric[] = [
      { alias: DEVICE_ALIAS.energy, value: round(d.energyKwh, 3), timestamp: nowMs },
      { alias: DEVICE_ALIAS.power, value: round(d.powerW, 1), timestamp: nowMs },
      { alias: DEVICE_ALIAS.voltage, value: round(d.voltage, 1), timestamp: nowMs },
      { alias: DEVICE_ALIAS.current, value: round(current(d), 2), timestamp: nowMs },
    ]
    if (d.running !== wasRunning) metrics.push({ alias: DEVICE_ALIAS.running, value: d.running, timestamp: nowMs })
    return binaryMessage(
      this.#topic('DDATA', d.name),
      encode({ timestamp: nowMs, seq: this.#nextSeq(), metrics }, DEVICE_TYPES),
      0,
      false,
    )
  }

  /** New readings for a device: three-phase load that cycles on and off. */
  #step(d: AttachedDevice): void {
    if (this.#rng.chance(0.05)) d.running = !d.running
    d.powerW = !d.running
      ? this.#rng.float(0, 15)
      : this.#rng.chance(d.duty)
        ? this.#rng.float(d.watts[1] * 0.7, d.watts[1])
        : this.#rng.float(d.watts[0] * 0.5, d.watts[0])
    d.voltage = this.#rng.gaussian(400, 2.5)
  }

  #nextSeq(): number {
    this.#seq = (this.#seq + 1) % 256
    return this.#seq
  }

  #topic(type: string, device?: string): string {
    return device === undefined
      ? `spBv1.0/${this.#group}/${type}/${this.#node}`
      : `spBv1.0/${this.#group}/${type}/${this.#node}/${device}`
  }
}

function current(d: AttachedDevice): number {
  return d.powerW / (Math.sqrt(3) * d.voltage * 0.9)
}

/** Data types of the aliases, for data messages that (as the specification recommends) omit them on the wire. */
const NODE_TYPES = new Map<number, DataType>([
  [NODE_ALIAS.energy, T.Double],
  [NODE_ALIAS.power, T.Double],
  [NODE_ALIAS.voltage, T.Float],
  [NODE_ALIAS.uptime, T.Int64],
])
const DEVICE_TYPES = new Map<number, DataType>([
  [DEVICE_ALIAS.energy, T.Double],
  [DEVICE_ALIAS.power, T.Double],
  [DEVICE_ALIAS.voltage, T.Float],
  [DEVICE_ALIAS.current, T.Float],
  [DEVICE_ALIAS.running, T.Boolean],
])

const VALUE_FIELD: Record<DataType, string> = {
  [T.Int64]: 'long_value',
  [T.UInt64]: 'long_value',
  [T.Float]: 'float_value',
  [T.Double]: 'double_value',
  [T.Boolean]: 'boolean_value',
  [T.String]: 'string_value',
}

/** A Sparkplug B payload as an edge node's Tahu client writes it. */
function encode(
  payload: { timestamp: number; seq?: number; metrics: readonly Metric[] },
  aliasTypes?: ReadonlyMap<number, DataType>,
): Buffer {
  const metrics = payload.metrics.map((m) => {
    const type = m.datatype ?? (m.alias === undefined ? undefined : aliasTypes?.get(m.alias))
    if (type === undefined) throw new Error(`sparkplug simulator: no data type for metric ${m.name ?? m.alias}`)
    const out: Record<string, unknown> = {}
    if (m.name !== undefined) out.name = m.name
    if (m.alias !== undefined) out.alias = m.alias
    if (m.timestamp !== undefined) out.timestamp = m.timestamp
    if (m.datatype !== undefined) out.datatype = m.datatype
    out[VALUE_FIELD[type]] = m.value
    return out
  })
  const message: Record<string, unknown> = { timestamp: payload.timestamp, metrics }
  if (payload.seq !== undefined) message.seq = payload.seq
  return Buffer.from(sparkplugPayloadType().encode(message).finish())
}

export const sparkplugProfile: SimulatorProfile = {
  name: 'sparkplug',
  // What the gateway files Sparkplug traffic under when `sparkplug.category` is not set.
  category: DEFAULT_SPARKPLUG_CATEGORY,
  description:
    'Sparkplug B edge nodes (energy-meter gateway, PLC bridge): NBIRTH/DBIRTH with aliases, NDATA/DDATA by alias, NDEATH and rebirth',
  variants: 2,
  createDevices(count: number, seed: number): SimDevice[] {
    checkDeviceCount('sparkplug', count)
    return Array.from({ length: count }, (_, i) => new SparkplugEdgeNode(i, seed))
  },
}

/** Client id = edge node id; clean session; the Will is the NDEATH with the bdSeq of the coming NBIRTH (QoS 1). */
export function sparkplugIdentity(device: SimDevice, nowMs: number): ClientIdentity {
  const identity: ClientIdentity = { clientId: device.id.slice(device.id.indexOf('/') + 1), clean: true }
  if (device instanceof SparkplugEdgeNode) identity.will = device.deathCertificate(nowMs)
  return identity
}
