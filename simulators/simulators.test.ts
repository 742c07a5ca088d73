import { createServer } from 'node:net'
import type { AddressInfo, Server } from 'node:net'
import { inflateSync } from 'node:zlib'
import { Aedes } from 'aedes'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { builtinProfiles } from '../filters/profiles/index.ts'
import { profiles, runSimulators } from './index.ts'
import type { SimDevice, SimMessage } from './index.ts'
import { until } from '../test/helpers/poll.ts'

const T0 = Date.UTC(2025, 0, 15, 6, 0, 0)
const FIVE_MINUTES = 300_000

/** start() then `ticks` ticks, `stepMs` apart. */
function record(device: SimDevice, ticks: number, stepMs = FIVE_MINUTES): SimMessage[] {
  const messages = device.start(T0)
  for (let i = 1; i <= ticks; i++) messages.push(...device.tick(T0 + i * stepMs))
  return messages
}

function fingerprint(messages: readonly SimMessage[]): string[] {
  return messages.map((m) => `${m.topic}|${m.qos}|${m.retain}|${m.payload.toString('base64')}`)
}

/** Payload as text, inflating Valetudo's zlib maps so canaries inside the floor plan are visible. */
function readable(m: SimMessage): string {
  const zlib = m.payload[0] === 0x78 && m.payload[1] === 0x9c
  return zlib ? inflateSync(m.payload).toString('utf8') : m.payload.toString('utf8')
}

function json(m: SimMessage): Record<string, unknown> {
  return JSON.parse(m.payload.toString('utf8')) as Record<string, unknown>
}

function device(profile: string, seed = 42, index = 0): SimDevice {
  const created = profiles[profile]?.createDevices(index + 1, seed)[index]
  if (created === undefined) throw new Error(`no device ${profile}#${index}`)
  return created
}

describe('profiles', () => {
  it('registers a simulator for every device profile, with its category', () => {
    const categories = Object.fromEntries(Object.entries(profiles).map(([name, p]) => [name, p.category]))
    expect(categories).toEqual({
      tasmota: 'smart_plug',
      frigate: 'camera',
      valetudo: 'robot_vacuum',
      miscale: 'body_scale',
      owntracks: 'gps_tracker',
      shelly_gen1: 'smart_plug',
      shelly_gen2: 'smart_plug',
      zigbee2mqtt: 'smart_plug',
      doubletake: 'camera',
      omg_scale: 'body_scale',
      gpsd: 'gps_tracker',
      traccar: 'gps_tracker',
      sparkplug: 'smart_plug',
      canonical: 'all',
    })
    expect(new Set(Object.keys(profiles))).toEqual(new Set(builtinProfiles.map((p) => p.name)))
    for (const [name, p] of Object.entries(profiles)) expect(p.name).toBe(name)
  })

  describe.each(Object.keys(profiles))('%s', (name) => {
    it('is deterministic for a seed', () => {
      const run = (seed: number): string[] =>
        profiles[name]!.createDevices(3, seed).flatMap((d) => fingerprint(record(d, 25)))
      expect(run(7)).toEqual(run(7))
      expect(run(7)).not.toEqual(run(8))
    })

    it('gives device i the same stream whatever the device count', () => {
      const alone = profiles[name]!.createDevices(2, 5)[1]!
      const inCrowd = profiles[name]!.createDevices(9, 5)[1]!
      expect(fingerprint(record(alone, 10))).toEqual(fingerprint(record(inCrowd, 10)))
    })

    it('publishes every canary of every device in its topics or payloads', () => {
      for (const d of profiles[name]!.createDevices(4, 3)) {
        const text = record(d, 30)
          .map((m) => `${m.topic}\n${readable(m)}`)
          .join('\n')
        expect(d.canaries.length).toBeGreaterThan(0)
        for (const canary of d.canaries) expect(text, `${d.id}: ${canary}`).toContain(canary)
      }
    })
  })

  it('uses canaries that are unique across all devices and never contain one another', () => {
    const canaries = Object.values(profiles).flatMap((p) => p.createDevices(70, 1).flatMap((d) => [...d.canaries]))
    expect(new Set(canaries).size).toBe(canaries.length)
    const nested = canaries.flatMap((a) => canaries.filter((b) => a !== b && a.includes(b)).map((b) => `${a} ⊃ ${b}`))
    expect(nested).toEqual([])
  })

  it('rejects device counts outside the canary ranges', () => {
    expect(() => profiles.tasmota!.createDevices(-1, 1)).toThrow(RangeError)
    expect(() => profiles.tasmota!.createDevices(1.5, 1)).toThrow(RangeError)
  })
})

describe('tasmota', () => {
  it('publishes LWT, INFO, STATE and SENSOR on tasmota_<MAC suffix> topics', () => {
    const messages = record(device('tasmota'), 3)
    expect(messages[0]).toMatchObject({ topic: 'tele/tasmota_CA11A7/LWT', retain: true })
    expect(messages[0]!.payload.toString()).toBe('Online')
    const state = json(messages.find((m) => m.topic.endsWith('/STATE'))!)
    expect(Object.keys(state)).toEqual(
      expect.arrayContaining([
        'Time',
        'Uptime',
        'UptimeSec',
        'Heap',
        'SleepMode',
        'Sleep',
        'LoadAvg',
        'MqttCount',
        'POWER',
        'Wifi',
      ]),
    )
    expect(state.Wifi).toMatchObject({ AP: 1, SSId: 'CanaryNet-7F3A', BSSId: 'CA:11:A7:01:00:01', LinkCount: 1 })
    const sensor = messages.find((m) => m.topic.endsWith('/SENSOR'))!
    expect(Object.keys((json(sensor) as { ENERGY: object }).ENERGY)).toEqual([
      'TotalStartTime',
      'Total',
      'Yesterday',
      'Today',
      'Period',
      'Power',
      'ApparentPower',
      'ReactivePower',
      'Factor',
      'Voltage',
      'Current',
    ])
    // printf-style decimals, as the firmware writes them
    expect(sensor.payload.toString()).toMatch(/"Total":\d+\.\d{3},"Yesterday":\d+\.\d{3},"Today":\d+\.\d{3},/)
    expect(sensor.payload.toString()).toMatch(/"Factor":\d\.\d{2},"Voltage":\d+,"Current":\d+\.\d{3}\}/)
  })

  it('keeps ENERGY.Total non-decreasing and consistent with the reported power', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3_600_000 }), { minLength: 2, maxLength: 40 }),
        fc.nat(),
        (steps, seed) => {
          const plug = device('tasmota', seed)
          plug.start(T0)
          let now = T0
          let previous: { total: number; power: number; at: number } | undefined
          let expectedWh = 0
          let firstTotal = 0
          for (const step of steps) {
            now += step
            const sensor = plug.tick(now).find((m) => m.topic.endsWith('/SENSOR'))!
            const energy = (json(sensor) as { ENERGY: { Total: number; Power: number } }).ENERGY
            if (previous === undefined) firstTotal = energy.Total
            else {
              expect(energy.Total).toBeGreaterThanOrEqual(previous.total)
              expectedWh += (previous.power * (now - previous.at)) / 3_600_000
            }
            previous = { total: energy.Total, power: energy.Power, at: now }
          }
          // Power is rounded to 1 W and Total to 1 Wh, so allow that slack.
          const slackWh = 1 + (steps.reduce((a, b) => a + b, 0) / 3_600_000) * 0.5
          expect(Math.abs((previous!.total - firstTotal) * 1000 - expectedWh)).toBeLessThanOrEqual(slackWh)
        },
      ),
      { numRuns: 60 },
    )
  })
})

describe('frigate', () => {
  const OBJECT_KEYS = [
    'id',
    'camera',
    'frame_time',
    'label',
    'sub_label',
    'top_score',
    'score',
    'false_positive',
    'start_time',
    'end_time',
    'box',
    'area',
    'ratio',
    'region',
    'current_zones',
    'entered_zones',
    'snapshot',
    'has_snapshot',
    'has_clip',
    'active',
    'stationary',
    'motionless_count',
    'position_changes',
    'attributes',
    'current_attributes',
    'recognized_license_plate',
    'thumbnail',
  ]

  it('runs tracked objects through new, update and end on frigate/events', () => {
    const events = record(device('frigate'), 40)
      .filter((m) => m.topic === 'frigate/events')
      .map((m) => json(m) as { type: string; before: Record<string, unknown>; after: Record<string, unknown> })
    expect(events[0]!.type).toBe('new')
    for (const e of events) {
      expect(['new', 'update', 'end']).toContain(e.type)
      expect(Object.keys(e.after)).toEqual(expect.arrayContaining(OBJECT_KEYS))
      expect(e.after.id).toMatch(/^\d+\.\d{6}-[a-z0-9]{6}$/)
      expect(e.after.camera).toBe('canary_front_door')
      expect(e.before.id).toBe(e.after.id)
    }
    const ends = events.filter((e) => e.type === 'end')
    expect(ends.length).toBeGreaterThan(2)
    for (const e of ends) expect(typeof e.after.end_time).toBe('number')
    const recognised = events.map((e) => e.after.sub_label).find((s): s is [string, number] => Array.isArray(s))
    expect(recognised?.[0]).toBe('Canary Bob')
    expect(typeof recognised?.[1]).toBe('number')
    expect(events.some((e) => e.after.label === 'car' && e.after.recognized_license_plate === 'CAN4RY1')).toBe(true)
  })

  it('writes JSON with Python json.dumps separators', () => {
    const event = record(device('frigate'), 1).find((m) => m.topic === 'frigate/events')!
    expect(event.payload.toString()).toMatch(/^\{"type": "new", "before": \{"id": "/)
  })

  it('publishes raw, retained JPEG snapshots and integer counts', () => {
    const messages = record(device('frigate'), 40)
    const snapshots = messages.filter((m) => /^frigate\/canary_front_door\/(person|car|dog)\/snapshot$/.test(m.topic))
    expect(snapshots.length).toBeGreaterThan(3)
    for (const s of snapshots) {
      expect([...s.payload.subarray(0, 4)]).toEqual([0xff, 0xd8, 0xff, 0xe0])
      expect(s.payload.subarray(6, 11).toString('latin1')).toBe('JFIF\0')
      expect([...s.payload.subarray(-2)]).toEqual([0xff, 0xd9])
      expect(s.payload.length).toBeGreaterThan(2_000)
      expect(s.payload.length).toBeLessThan(10_000)
      expect(s.retain).toBe(true)
    }
    const counts = messages.filter((m) => /^frigate\/canary_front_door\/(person|car|dog)$/.test(m.topic))
    expect(new Set(counts.map((m) => m.payload.toString()))).toEqual(new Set(['0', '1']))
  })
})

describe('valetudo', () => {
  interface Layer {
    type: string
    compressedPixels: number[]
    metaData: { area: number; name?: string; segmentId?: string }
    dimensions: { pixelCount: number }
  }
  interface ValetudoMap {
    __class: string
    metaData: { version: number; nonce: string; totalLayerArea: number }
    pixelSize: number
    layers: Layer[]
    entities: { __class: string; type: string; points: number[] }[]
  }
  const maps = (messages: SimMessage[]): SimMessage[] =>
    messages.filter((m) => m.topic === 'valetudo/CanarySillyBadger/MapData/map-data')

  it('publishes the map as retained QoS 0 zlib-deflated ValetudoMap JSON', () => {
    const messages = record(device('valetudo'), 12, 30_000)
    const mapMessages = maps(messages)
    expect(mapMessages.length).toBeGreaterThan(3)
    for (const m of mapMessages) {
      expect([m.payload[0], m.payload[1]]).toEqual([0x78, 0x9c])
      expect(m).toMatchObject({ qos: 0, retain: true })
      const map = JSON.parse(inflateSync(m.payload).toString('utf8')) as ValetudoMap
      expect(map.__class).toBe('ValetudoMap')
      expect(map.metaData.version).toBe(2)
      expect(map.pixelSize).toBe(5)
    }
  })

  it('builds consistent layers and the expected entities', () => {
    const last = maps(record(device('valetudo'), 12, 30_000)).at(-1)!
    const map = JSON.parse(inflateSync(last.payload).toString('utf8')) as ValetudoMap
    expect(new Set(map.layers.map((l) => l.type))).toEqual(new Set(['floor', 'wall', 'segment']))
    for (const layer of map.layers) {
      const counts = layer.compressedPixels.filter((_, i) => i % 3 === 2)
      expect(counts.reduce((a, b) => a + b, 0)).toBe(layer.dimensions.pixelCount)
      expect(layer.metaData.area).toBe(layer.dimensions.pixelCount * 25)
    }
    expect(map.metaData.totalLayerArea).toBe(map.layers.reduce((sum, l) => sum + l.metaData.area, 0))
    const names = map.layers.filter((l) => l.type === 'segment').map((l) => l.metaData.name)
    expect(names).toEqual(expect.arrayContaining(['Schlafzimmer', 'Küche', 'Bad', 'CanaryAnnas Zimmer']))
    expect(map.entities.map((e) => e.type)).toEqual(
      expect.arrayContaining(['robot_position', 'charger_location', 'path', 'virtual_wall', 'no_go_area']),
    )
    const path = map.entities.find((e) => e.type === 'path')!
    expect(path.__class).toBe('PathMapEntity')
    expect(path.points.length % 2).toBe(0)
  })

  it('publishes Homie state, battery, status and Wi-Fi as text', () => {
    const messages = record(device('valetudo'), 40, 30_000)
    const values = (suffix: string): string[] =>
      messages.filter((m) => m.topic === `valetudo/CanarySillyBadger/${suffix}`).map((m) => m.payload.toString())
    expect(values('$state')).toEqual(['ready'])
    expect(values('WifiConfigurationCapability/ssid')).toEqual(['CanaryNet-5E10'])
    for (const level of values('BatteryStateAttribute/level')) expect(Number(level)).toBeGreaterThanOrEqual(0)
    expect(new Set(values('StatusStateAttribute/status'))).toEqual(new Set(['docked', 'cleaning', 'returning']))
    expect(new Set(values('BatteryStateAttribute/status'))).toContain('discharging')
  })
})

describe('miscale', () => {
  it('publishes string-built JSON with two-decimal floats on miscale/<user>/weight', () => {
    const messages = record(device('miscale'), 5).filter((m) => m.topic === 'miscale/CanaryErin/weight')
    expect(messages).toHaveLength(5)
    for (const m of messages) {
      const text = m.payload.toString()
      expect(text).toMatch(
        /^\{"weight":\d+\.\d{2},"weight_unit":"kg","bmi":\d+\.\d{2},"basal_metabolism":\d+\.\d{2},"visceral_fat":\d+\.\d{2},/,
      )
      expect(text).toMatch(/"metabolic_age":\d+,"impedance":\d+,"timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"\}$/)
      expect(Object.keys(json(m))).toEqual([
        'weight',
        'weight_unit',
        'bmi',
        'basal_metabolism',
        'visceral_fat',
        'lean_body_mass',
        'body_fat',
        'water',
        'bone_mass',
        'muscle_mass',
        'protein',
        'body_type',
        'metabolic_age',
        'impedance',
        'timestamp',
      ])
      expect(m.retain).toBe(true)
    }
  })

  it('omits body composition for a scale without impedance', () => {
    const plain = profiles.miscale!.createDevices(4, 1)[3]!
    const weight = plain.tick(T0)[0]!
    expect(Object.keys(json(weight))).toEqual([
      'weight',
      'weight_unit',
      'bmi',
      'basal_metabolism',
      'visceral_fat',
      'timestamp',
    ])
  })
})

describe('owntracks', () => {
  interface Location {
    _type: string
    lat: number
    lon: number
    tst: number
    vel: number
    conn: string
    inregions?: string[]
    SSID?: string
  }
  const distanceM = (a: Location, b: Location): number =>
    Math.hypot((b.lat - a.lat) * 111_320, (b.lon - a.lon) * 111_320 * Math.cos((a.lat * Math.PI) / 180))

  it('publishes locations around home and Home transitions on /event', () => {
    const messages = record(device('owntracks'), 60, 120_000)
    const base = 'owntracks/canaryalice/canaryphone0000'
    const locations = messages.filter((m) => m.topic === base).map((m) => json(m) as unknown as Location)
    expect(locations.every((l) => l._type === 'location')).toBe(true)
    const home = locations[0]!
    expect(home).toMatchObject({ conn: 'w', inregions: ['Home'], SSID: 'CanaryNet-3C20' })
    for (const l of locations) expect(distanceM(home, l)).toBeLessThan(12_000)
    const tst = locations.map((l) => l.tst)
    expect(tst).toEqual([...tst].sort((a, b) => a - b))
    const transitions = messages.filter((m) => m.topic === `${base}/event`).map((m) => json(m))
    expect(transitions.map((t) => t.event)).toEqual(expect.arrayContaining(['leave', 'enter']))
    for (const t of transitions) expect(t).toMatchObject({ _type: 'transition', desc: 'Home', t: 'c' })
  })

  it('moves at the speed it reports', () => {
    const locations = record(device('owntracks', 9), 60, 60_000)
      .filter((m) => !m.topic.endsWith('/event'))
      .map((m) => json(m) as unknown as Location)
    let checked = 0
    for (let i = 1; i < locations.length; i++) {
      const [a, b] = [locations[i - 1]!, locations[i]!]
      // compare only consecutive fixes on the road (the straight-line distance can be shorter at a corner)
      if (a.conn !== 'm' || b.conn !== 'm') continue
      const kmh = (distanceM(a, b) / (b.tst - a.tst)) * 3.6
      expect(kmh).toBeLessThanOrEqual(Math.max(a.vel, b.vel) * 1.6 + 2)
      checked++
    }
    expect(checked).toBeGreaterThan(5)
  })
})

describe('shelly_gen1', () => {
  it('publishes plug, 2.5 and EM channels as text values, energy as integer watt-minutes', () => {
    const [plug, sw, em] = profiles.shelly_gen1!.createDevices(3, 42)
    const topics = (d: SimDevice): Set<string> =>
      new Set(record(d, 3, 30_000).map((m) => m.topic.replace(d.id, '<id>')))
    expect(topics(plug!)).toEqual(
      new Set([
        'shellies/<id>/online',
        'shellies/announce',
        'shellies/<id>/announce',
        'shellies/<id>/info',
        'shellies/<id>/relay/0',
        'shellies/<id>/relay/0/power',
        'shellies/<id>/relay/0/energy',
        'shellies/<id>/temperature',
        'shellies/<id>/overtemperature',
      ]),
    )
    expect(topics(sw!)).toContain('shellies/<id>/relay/1/energy')
    expect(topics(em!)).toContain('shellies/<id>/emeter/1/total')
    const energy = record(plug!, 20, 30_000)
      .filter((m) => m.topic.endsWith('/relay/0/energy'))
      .map((m) => m.payload.toString())
    for (const e of energy) expect(e).toMatch(/^\d+$/)
    expect(energy.map(Number)).toEqual([...energy.map(Number)].sort((a, b) => a - b))
    expect(plug!.id).toBe('shellyplug-s-C5E100')
  })
})

describe('shelly_gen2', () => {
  it('sends NotifyFullStatus on connect and NotifyStatus frames per switch, with a growing aenergy.total', () => {
    const [, pm] = profiles.shelly_gen2!.createDevices(2, 42)
    const messages = record(pm!, 10, 60_000)
    const frames = messages
      .filter((m) => m.topic === `${pm!.id}/events/rpc`)
      .map((m) => json(m) as { method: string; params: Record<string, { aenergy?: { total: number } }> })
    expect(frames[0]!.method).toBe('NotifyFullStatus')
    expect(frames.slice(1).every((f) => f.method === 'NotifyStatus')).toBe(true)
    const totals = frames
      .slice(1)
      .flatMap((f) => (f.params['switch:1']?.aenergy?.total === undefined ? [] : [f.params['switch:1'].aenergy.total]))
    expect(totals.length).toBe(10)
    expect(totals).toEqual([...totals].sort((a, b) => a - b))
    expect(messages.some((m) => m.topic === `${pm!.id}/status/switch:1`)).toBe(true)
  })
})

describe('zigbee2mqtt', () => {
  it('names devices by IEEE address or by names with slashes, and reports energy in kWh', () => {
    const ids = profiles.zigbee2mqtt!.createDevices(4, 1).map((d) => d.id)
    expect(ids[0]).toMatch(/^0x00158d0001[0-9a-f]{6}$/)
    expect(ids.slice(1, 3)).toEqual(['CanaryKitchen/Kettle', 'CanaryFlat/CanaryBedroom/Heater'])
    const messages = record(device('zigbee2mqtt', 1, 2), 5, 60_000)
    expect(messages[1]).toMatchObject({
      topic: 'zigbee2mqtt/CanaryFlat/CanaryBedroom/Heater/availability',
      retain: true,
    })
    const state = json(messages.at(-1)!)
    expect(Object.keys(state)).toEqual([
      'current',
      'device_temperature',
      'energy',
      'linkquality',
      'power',
      'power_outage_memory',
      'state',
      'update',
      'voltage',
    ])
  })
})

describe('doubletake', () => {
  it('publishes per-person matches, per-camera results and counts, errors with the detector address', () => {
    const messages = record(device('doubletake', 3, 1), 12, 60_000)
    const topics = new Set(messages.map((m) => m.topic))
    for (const t of [
      'double-take/available',
      'double-take/errors',
      'double-take/matches/canarypenny',
      'double-take/cameras/canary-patio',
      'double-take/cameras/canary-patio/person',
    ])
      expect(topics).toContain(t)
    const camera = json(messages.find((m) => m.topic === 'double-take/cameras/canary-patio')!) as {
      counts: { person: number }
      matches: { base64: string | null }[]
    }
    expect(camera.counts.person).toBeGreaterThan(0)
    // Odd cameras have detect.match.base64 on: a JPEG face crop inside the JSON.
    expect(Buffer.from(camera.matches[0]?.base64 ?? '', 'base64').subarray(0, 3)).toEqual(
      Buffer.from([0xff, 0xd8, 0xff]),
    )
  })
})

describe('omg_scale', () => {
  it('publishes settling weights, the last one stable with impedance, on the MAC without colons', () => {
    const scale = device('omg_scale', 5)
    const messages = record(scale, 3, 86_400_000).filter((m) => m.topic.includes('/BTtoMQTT/'))
    expect(messages.length).toBeGreaterThanOrEqual(6)
    for (const m of messages) {
      expect(m.topic).toBe('home/CanaryBathroomGW/BTtoMQTT/C8478C0A5C00')
      expect(json(m)).toMatchObject({ id: 'C8:47:8C:0A:5C:00', type: 'SCALE', unit: 'kg' })
    }
  })
})

describe('gps simulators', () => {
  it('gpsd: TPV with a 3D fix in m/s, SKY every fifth tick, VERSION/DEVICES/WATCH on start', () => {
    const messages = record(device('gpsd'), 10, 5_000)
    expect(messages.slice(0, 3).map((m) => m.topic)).toEqual([
      'gpsd/canary-van-0000/version',
      'gpsd/canary-van-0000/devices',
      'gpsd/canary-van-0000/watch',
    ])
    const tpv = messages.filter((m) => m.topic.endsWith('/tpv')).map((m) => json(m))
    expect(tpv).toHaveLength(10)
    for (const t of tpv) expect(t).toMatchObject({ class: 'TPV', mode: 3 })
    expect(messages.filter((m) => m.topic.endsWith('/sky'))).toHaveLength(2)
  })

  it('traccar: JSON bodies with speed in m/s, query strings with speed in knots', () => {
    const [body, query] = profiles.traccar!.createDevices(2, 3).map((d) => record(d, 40, 60_000))
    expect(json(body![0]!)).toMatchObject({ device_id: '359870000000000', location: { coords: {} } })
    const lines = query!.map((m) => m.payload.toString())
    for (const l of lines)
      expect(l).toMatch(
        /^id=359870000000001&timestamp=\d{10}&lat=-?\d+(\.\d+)?&lon=-?\d+(\.\d+)?&speed=\d+(\.\d)?&bearing=/,
      )
    const fastest = Math.max(...lines.map((l) => Number(/speed=([\d.]+)/.exec(l)![1])))
    // Walking or driving up to ~48 km/h: at most ~30 knots.
    expect(fastest).toBeGreaterThan(1)
    expect(fastest).toBeLessThan(35)
    expect(lines.some((l) => l.includes('&wifi=CA-11-A7-09-00-02,'))).toBe(true)
  })
})

describe('canonical', () => {
  it('creates n devices of each category on devices/<category>/<id>/<stream>', () => {
    const devices = profiles.canonical!.createDevices(2, 1)
    expect(devices.map((d) => d.id)).toEqual([
      'canary-plug-0000',
      'canary-cam-0000',
      'canary-vac-0000',
      'canary-scale-0000',
      'canary-trk-0000',
      'canary-plug-0001',
      'canary-cam-0001',
      'canary-vac-0001',
      'canary-scale-0001',
      'canary-trk-0001',
    ])
    const topics = new Set(devices.slice(0, 5).flatMap((d) => record(d, 3).map((m) => m.topic)))
    expect(topics).toEqual(
      new Set([
        'devices/smart_plug/canary-plug-0000/energy',
        'devices/camera/canary-cam-0000/event',
        'devices/robot_vacuum/canary-vac-0000/status',
        'devices/body_scale/canary-scale-0000/measurement',
        'devices/gps_tracker/canary-trk-0000/location',
      ]),
    )
  })
})

describe('runSimulators', () => {
  let broker: Aedes
  let server: Server
  let url: string
  const received: { clientId: string; topic: string }[] = []

  beforeEach(async () => {
    received.length = 0
    broker = await Aedes.createBroker()
    broker.on('publish', (packet, client) => {
      if (client !== null) received.push({ clientId: client.id, topic: packet.topic })
    })
    server = createServer(broker.handle)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  afterEach(async () => {
    await new Promise<void>((resolve) => broker.close(() => resolve()))
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })

  it('throws on an unknown profile, naming the valid ones', () => {
    expect(() =>
      runSimulators({ url: 'mqtt://127.0.0.1:1', profiles: ['tasmota', 'nest'], devices: 1, ratePerSecond: 1 }),
    ).toThrow(/nest.*tasmota, frigate, valetudo, miscale, owntracks/)
  })

  it('throws on invalid options', () => {
    const base = { url, profiles: ['tasmota'], devices: 1, ratePerSecond: 1 }
    expect(() => runSimulators({ ...base, url: 'localhost:1883' })).toThrow(/broker URL/)
    expect(() => runSimulators({ ...base, devices: 0 })).toThrow(RangeError)
    expect(() => runSimulators({ ...base, ratePerSecond: 0 })).toThrow(RangeError)
    expect(() => runSimulators({ ...base, maxMessages: 1.5 })).toThrow(RangeError)
  })

  it('publishes exactly maxMessages through the broker and stops by itself', async () => {
    const seen: SimMessage[] = []
    const run = runSimulators({
      url,
      profiles: Object.keys(profiles),
      devices: 2,
      ratePerSecond: 400,
      maxMessages: 80,
      onPublish: (m) => seen.push(m),
    })
    const { published } = await run.done
    expect(published).toBe(80)
    expect(seen).toHaveLength(80)
    await until(() => received.length >= 80, { timeoutMs: 2_000, what: 'the broker to see all 80 publishes' })
    expect(received.map((r) => `${r.clientId} ${r.topic}`).slice(80)).toEqual([])
    expect(received).toHaveLength(80)
    const clientIds = new Set(received.map((r) => r.clientId))
    expect(clientIds).toContain('DVES_CA11A7')
    expect(clientIds).toContain('valetudo_CanarySillyBadger')
    expect(clientIds).toContain('frigate_canary_front_door')
    expect(clientIds).toContain('canaryalicecanaryphone0000')
    expect(received.map((r) => r.topic)).toContain('tele/tasmota_CA11A7/LWT')
  })

  it('stops after durationMs', async () => {
    // The pace and the duration's length are wall-clock bounds: simulators.slow.test.ts.
    const { published } = await runSimulators({
      url,
      profiles: ['tasmota', 'owntracks'],
      devices: 2,
      ratePerSecond: 40,
      durationMs: 100,
    }).done
    await until(() => received.length >= published, {
      timeoutMs: 2_000,
      what: `the broker to see all ${published} publishes`,
    })
    expect(received).toHaveLength(published)
  })

  it('stops on an abort signal and on stop()', async () => {
    const controller = new AbortController()
    // Stopped once a publish went out, not after a fixed time: on a busy machine the first one may take a while.
    const viaSignal = runSimulators({
      url,
      profiles: ['frigate'],
      devices: 1,
      ratePerSecond: 100,
      signal: controller.signal,
      onPublish: () => controller.abort(),
    })
    expect((await viaSignal.done).published).toBeGreaterThan(0)

    let stopPublished = 0
    const viaStop = runSimulators({
      url,
      profiles: ['miscale'],
      devices: 1,
      ratePerSecond: 100,
      onPublish: () => stopPublished++,
    })
    await until(() => stopPublished > 0, { what: 'the first publish' })
    await viaStop.stop()
    await viaStop.stop() // idempotent
    expect((await viaStop.done).published).toBeGreaterThan(0)
  })

  it('reports connection errors instead of throwing', async () => {
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    const errors: string[] = []
    const run = runSimulators({
      url: `mqtt://127.0.0.1:${port}`,
      profiles: ['tasmota'],
      devices: 1,
      ratePerSecond: 10,
      durationMs: 300,
      onError: (error, deviceId) => errors.push(`${deviceId}: ${error.message}`),
    })
    expect((await run.done).published).toBe(0)
    expect(errors.some((e) => e.startsWith('tasmota_CA11A7: ') && e.includes('ECONNREFUSED'))).toBe(true)
  })
})
