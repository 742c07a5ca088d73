/**
 * A GPS receiver read by gpsd, its JSON reports bridged to MQTT (gpsd2mqtt style: `gpsd/<host>/<class>`). The host
 * name is the device id (`canary-van-0000`). On start: VERSION, DEVICES and WATCH. Each tick: one TPV with a 3D
 * fix (speed in m/s, the position following a vehicle that parks at home and makes round trips), and every fifth
 * tick a SKY report. Real receivers report once a second; bridges usually throttle to one message every few seconds.
 */
import { checkDeviceCount, hexCanary } from '../canary.ts'
import { fixed, jsonMessage, round } from '../format.ts'
import type { Json } from '../format.ts'
import { Roamer } from '../geo.ts'
import { deriveSeed, Rng } from '../random.ts'
import type { ClientIdentity, SimDevice, SimMessage, SimulatorProfile } from '../types.ts'

const RECEIVERS = [
  { path: '/dev/ttyACM0', driver: 'u-blox', subtype: 'SW ROM CORE 3.01 (107888),HW 00080000' },
  { path: '/dev/ttyUSB0', driver: 'SiRF', subtype: 'GSW3.5.0_3.5.00.00-SDK-3EP2.01' },
]

class GpsdReceiver implements SimDevice {
  readonly id: string
  readonly canaries: readonly string[]
  readonly #rng: Rng
  readonly #roamer: Roamer
  readonly #receiver: (typeof RECEIVERS)[number]
  #ticks = 0
  #alt: number

  constructor(index: number, seed: number) {
    this.#rng = new Rng(deriveSeed(seed, 'gpsd', index))
    this.id = `canary-van-${hexCanary(0, index, 4).toLowerCase()}`
    this.canaries = [this.id]
    this.#roamer = new Roamer(this.#rng, { speedsKmh: [30, 80], radiusM: 15_000, homeTicks: [3, 8] })
    this.#receiver = this.#rng.pick(RECEIVERS)
    this.#alt = this.#rng.float(20, 120)
  }

  start(nowMs: number): SimMessage[] {
    const base = `gpsd/${this.id}`
    const r = this.#receiver
    return [
      jsonMessage(
        `${base}/version`,
        { class: 'VERSION', release: '3.25', rev: '3.25', proto_major: 3, proto_minor: 15 },
        0,
        false,
      ),
      jsonMessage(
        `${base}/devices`,
        {
          class: 'DEVICES',
          devices: [
            {
              class: 'DEVICE',
              path: r.path,
              driver: r.driver,
              subtype: r.subtype,
              activated: isoMs(nowMs),
              flags: 1,
              native: 0,
              bps: 9600,
              parity: 'N',
              stopbits: 1,
              cycle: 1.0,
            },
          ],
        },
        0,
        false,
      ),
      jsonMessage(
        `${base}/watch`,
        {
          class: 'WATCH',
          enable: true,
          json: true,
          nmea: false,
          raw: 0,
          scaled: false,
          timing: false,
          split24: false,
          pps: false,
        },
        0,
        false,
      ),
    ]
  }

  tick(nowMs: number): SimMessage[] {
    const fix = this.#roamer.advance(nowMs)
    this.#alt += this.#rng.gaussian(0, 0.5)
    const climb = round(this.#rng.gaussian(0, 0.1), 3)
    const eph = round(this.#rng.float(2, 12), 3)
    const tpv: Json = {
      class: 'TPV',
      device: this.#receiver.path,
      mode: 3,
      time: isoMs(nowMs),
      leapseconds: 18,
      ept: 0.005,
      lat: round(fix.position.lat, 9),
      lon: round(fix.position.lon, 9),
      altHAE: fixed(this.#alt + 45.6, 3),
      altMSL: fixed(this.#alt, 3),
      alt: fixed(this.#alt, 3),
      epx: round(eph * 0.7, 3),
      epy: round(eph * 0.7, 3),
      epv: round(eph * 1.8, 3),
      track: round(fix.course, 4),
      magtrack: round((fix.course + 3.1) % 360, 4),
      magvar: 3.1,
      speed: round(fix.speedMs, 3),
      climb,
      eps: round(eph * 0.4, 2),
      epc: round(eph * 3.5, 2),
      geoidSep: 45.6,
      eph,
      sep: round(eph * 2, 3),
    }
    const out = [jsonMessage(`gpsd/${this.id}/tpv`, tpv, 0, false)]
    if (this.#ticks++ % 5 === 0) out.push(jsonMessage(`gpsd/${this.id}/sky`, this.#sky(nowMs), 0, false))
    return out
  }

  #sky(nowMs: number): Json {
    const satellites = Array.from({ length: this.#rng.int(7, 12) }, () => ({
      PRN: this.#rng.int(1, 32),
      el: this.#rng.int(5, 85),
      az: this.#rng.int(0, 359),
      ss: this.#rng.int(15, 45),
      used: this.#rng.chance(0.7),
    }))
    return {
      class: 'SKY',
      device: this.#receiver.path,
      time: isoMs(nowMs),
      hdop: round(this.#rng.float(0.7, 2.5), 2),
      vdop: round(this.#rng.float(0.9, 3), 2),
      nSat: satellites.length,
      uSat: satellites.filter((s) => s.used).length,
      satellites,
    }
  }
}

/** gpsd prints times with millisecond precision and a Z. */
function isoMs(ms: number): string {
  return new Date(ms).toISOString()
}

export const gpsdProfile: SimulatorProfile = {
  name: 'gpsd',
  category: 'gps_tracker',
  description: 'gpsd JSON bridged to MQTT: gpsd/<host>/tpv fixes of a vehicle, SKY, VERSION, DEVICES, WATCH',
  variants: 1,
  createDevices(count: number, seed: number): SimDevice[] {
    checkDeviceCount('gpsd', count)
    return Array.from({ length: count }, (_, i) => new GpsdReceiver(i, seed))
  },
}

/** The bridge connects as `gpsd2mqtt-<host>` and sets no will. */
export function gpsdIdentity(device: SimDevice): ClientIdentity {
  return { clientId: `gpsd2mqtt-${device.id}`, clean: true }
}
