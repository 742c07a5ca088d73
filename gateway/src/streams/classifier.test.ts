import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { builtinProfiles } from '../../../filters/profiles/index.ts'
import { Classifier } from './classifier.ts'
import { defineProfile } from '../sdk/profile.ts'

describe('classifier', () => {
  const classifier = new Classifier(builtinProfiles)
  const cases: [string, string, string | undefined][] = [
    ['tele/tasmota_0329F7/SENSOR', 'tasmota/sensor', 'tasmota_0329F7'],
    ['tele/tasmota_0329F7/STATE', 'tasmota/state', 'tasmota_0329F7'],
    ['tele/tasmota_0329F7/LWT', 'tasmota/lwt', 'tasmota_0329F7'],
    ['stat/tasmota_0329F7/POWER1', 'tasmota/power', 'tasmota_0329F7'],
    ['frigate/events', 'frigate/events', undefined],
    ['frigate/front_door/person/snapshot', 'frigate/snapshot', 'front_door'],
    ['frigate/reviews', 'frigate/reviews', undefined],
    ['frigate/tracked_object_update', 'frigate/tracked_object_update', undefined],
    ['frigate/triggers', 'frigate/triggers', undefined],
    ['frigate/stats', 'frigate/stats', 'frigate'],
    ['frigate/available', 'frigate/available', 'frigate'],
    ['frigate/front_door/motion', 'frigate/motion', 'front_door'],
    ['frigate/front_door/all', 'frigate/all_count', 'front_door'],
    ['frigate/front_door/person', 'frigate/object_count', 'front_door'],
    ['frigate/driveway/car', 'frigate/object_count', 'driveway'],
    ['double-take/matches/david', 'doubletake/matches', undefined],
    ['double-take/cameras/back-door', 'doubletake/cameras', 'back-door'],
    ['double-take/cameras/back-door/person', 'doubletake/person', 'back-door'],
    ['valetudo/Robo/MapData/map-data', 'valetudo/map', 'Robo'],
    ['valetudo/Robo/WifiConfigurationCapability/ssid', 'valetudo/wifi', 'Robo'],
    ['miscale/Alice/weight', 'miscale/weight', 'Alice'],
    ['owntracks/alice/phone', 'owntracks/location', 'alice/phone'],
    ['owntracks/alice/phone/event', 'owntracks/transition', 'alice/phone'],
    ['devices/gps_tracker/t-1/location', 'canonical/location', 't-1'],
    ['shellies/shellyplug-s-C38EAB/relay/0', 'shelly_gen1/relay', 'shellyplug-s-C38EAB'],
    ['shellies/shellyplug-s-C38EAB/relay/0/power', 'shelly_gen1/power', 'shellyplug-s-C38EAB'],
    ['shellies/shellyplug-s-C38EAB/relay/0/energy', 'shelly_gen1/energy', 'shellyplug-s-C38EAB'],
    ['shellies/shellyplug-s-C38EAB/online', 'shelly_gen1/online', 'shellyplug-s-C38EAB'],
    ['shellies/shellyplug-s-C38EAB/announce', 'shelly_gen1/announce', 'shellyplug-s-C38EAB'],
    ['shellies/announce', 'shelly_gen1/announce', undefined],
    ['shellies/shellyplug-s-C38EAB/info', 'shelly_gen1/info', 'shellyplug-s-C38EAB'],
    ['shellyplusplugs-e86beaeaa000/events/rpc', 'shelly_gen2/rpc', 'shellyplusplugs-e86beaeaa000'],
    ['shellyplusplugs-e86beaeaa000/status/switch:0', 'shelly_gen2/switch', 'shellyplusplugs-e86beaeaa000'],
    ['shellyplusplugs-e86beaeaa000/online', 'shelly_gen2/online', 'shellyplusplugs-e86beaeaa000'],
    ['zigbee2mqtt/0x00158d0001db18f9', 'zigbee2mqtt/state', '0x00158d0001db18f9'],
    ['zigbee2mqtt/livingroom/ac power', 'zigbee2mqtt/state', 'livingroom/ac power'],
    ['zigbee2mqtt/Plug/availability', 'zigbee2mqtt/availability', 'Plug'],
    ['zigbee2mqtt/livingroom/ac power/availability', 'zigbee2mqtt/availability', 'livingroom/ac power'],
    ['zigbee2mqtt/Plug/set', 'zigbee2mqtt/command', 'Plug'],
    ['zigbee2mqtt/bridge/devices', 'zigbee2mqtt/bridge', 'devices'],
    ['zigbee2mqtt/bridge/response/device/rename', 'zigbee2mqtt/bridge', 'response'],
  ]
  for (const [topic, key, id] of cases) {
    it(`maps ${topic} to ${key}`, () => {
      const match = classifier.classify(topic)
      expect(match?.stream.key).toBe(key)
      expect(match?.deviceId).toBe(id)
    })
  }

  it('knows no topic it was not told about', () => {
    for (const topic of [
      '',
      'tele',
      'tele/x',
      'tele//SENSOR',
      'tele/x/SENSOR/extra',
      'owntracks/alice',
      'devices/toaster/x/energy',
      'veil/svc/x',
      '#',
    ]) {
      expect(classifier.classify(topic)).toBeUndefined()
    }
  })

  it('keeps topics of id-first devices unknown unless they match exactly', () => {
    const unknown = [
      // Other levels, lengths or components of a Shelly gen2 prefix.
      'x/events',
      'x/events/rpc/extra',
      'x/status/sys',
      'x/status/switch:',
      'x/status/switch',
      'x/rpc',
      '/events/rpc',
      '/online',
      'online',
      'x/y/online',
      // A literal root owns its namespace: never a gen2 device called tele, shellies or zigbee2mqtt.
      'tele/events/rpc',
      'tele/online',
      'shellies/events/rpc',
      'shellies/status/switch:0',
      'frigate/online',
      // Veil's own namespace and the broker's are never a device id.
      'veil/events/rpc',
      'veil/online',
      '$SYS/online',
      '$share/events/rpc',
      // Shelly gen1: unknown levels; Zigbee2MQTT: names with more than five levels.
      'shellies/x/relay/0/command',
      'shellies',
      'zigbee2mqtt/a/b/c/d/e/f',
      // Frigate and Double Take: other lengths and levels.
      'frigate/front_door/detect/state',
      'frigate/front_door/audio/dBFS/x',
      'double-take/matches',
      'double-take/errors/x',
      'double-take/matches/a/b',
    ]
    for (const topic of unknown) expect(classifier.classify(topic), topic).toBeUndefined()
  })

  it('maps every literal-root topic exactly as a classifier without the id-first profiles does', () => {
    const literalOnly = new Classifier(builtinProfiles.filter((p) => p.name !== 'shelly_gen2'))
    const topics = [
      'tele/x/SENSOR',
      'tele/x/STATE',
      'tele/x/LWT',
      'tele/x/INFO2',
      'stat/x/POWER1',
      'stat/x/RESULT',
      'frigate/events',
      'frigate/c/person/snapshot',
      'valetudo/r/MapData/map-data',
      'miscale/a/weight',
      'owntracks/a/b',
      'owntracks/a/b/event',
      'devices/smart_plug/p/energy',
      'shellies/x/online',
      'shellies/x/relay/0',
      'shellies/events/rpc',
      'zigbee2mqtt/events/rpc',
      'zigbee2mqtt/online',
      'zigbee2mqtt/x/online',
      'tele/x/online',
    ]
    for (const topic of topics) {
      const a = classifier.classify(topic)
      const b = literalOnly.classify(topic)
      expect([a?.stream.key, a?.deviceId], topic).toEqual([b?.stream.key, b?.deviceId])
    }
    expect(classifier.classify('tele/x/SENSOR')?.stream.key).toBe('tasmota/sensor')
    expect(classifier.classify('zigbee2mqtt/x/online')?.stream.key).toBe('zigbee2mqtt/state')
  })

  it('refuses id-first routes that fix no level or could match the same topic as another', () => {
    const plug = (name: string, topics: string[]) =>
      defineProfile({ name, category: 'smart_plug', description: name, streams: { s: { topics, decoding: 'text' } } })
    expect(() => new Classifier([plug('a', ['{id}'])])).toThrow(/fixes no other level/)
    expect(() => new Classifier([plug('a', ['{id}/+'])])).toThrow(/fixes no other level/)
    expect(() => new Classifier([plug('a', ['{id}/x/+']), plug('b', ['{id}/+/y'])])).toThrow(
      /can match the same topics as a\/s/,
    )
    expect(() => new Classifier([plug('a', ['{id}/online']), plug('b', ['{id}/online'])])).toThrow(
      /can match the same topics/,
    )
    expect(() => new Classifier([plug('a', ['+/x/{id}'])])).toThrow(/must start with a literal level or \{id\}/)
    expect(() => new Classifier([plug('a', ['x//{id}'])])).toThrow(/empty or wildcard level/)
    expect(() => new Classifier([plug('a', ['x/#/{id}'])])).toThrow(/empty or wildcard level/)
    // Different lengths or different fixed levels do not overlap.
    const ok = new Classifier([plug('a', ['{id}/x/+']), plug('b', ['{id}/y/+']), plug('c', ['{id}/x'])])
    expect(ok.classify('d/x/1')?.stream.key).toBe('a/s')
    expect(ok.classify('d/y/1')?.stream.key).toBe('b/s')
    expect(ok.classify('d/x')?.stream.key).toBe('c/s')
  })

  it('finds the first matching route in the order the profiles list them, whatever their last level', () => {
    const plug = (name: string, topics: string[]) =>
      defineProfile({ name, category: 'smart_plug', description: name, streams: { s: { topics, decoding: 'text' } } })
    // Routes with an open last level sit in every last-level group of their length, in their place.
    const c = new Classifier([
      plug('a', ['r/{id}/status']),
      plug('b', ['r/{id}/+']),
      plug('c', ['r/{id}/power', 'r/x{id}/status']),
      plug('d', ['r/{id}/{id}/status']),
    ])
    expect(c.classify('r/dev/status')?.stream.profile).toBe('a')
    expect(c.classify('r/dev/power')?.stream.profile).toBe('b')
    expect(c.classify('r/dev/other')?.stream.profile).toBe('b')
    expect(c.classify('r/xdev/status')?.stream.profile).toBe('a')
    expect(c.classify('r/dev/2/status')).toMatchObject({ deviceId: 'dev/2' })
    expect(c.classify('r/dev/2/power')).toBeUndefined()
    expect(c.classify('r/dev')).toBeUndefined()
    const later = new Classifier([plug('c', ['r/{id}/power']), plug('b', ['r/{id}/+'])])
    expect(later.classify('r/dev/power')?.stream.profile).toBe('c')
    expect(later.classify('r/dev/status')?.stream.profile).toBe('b')
  })

  it('captures the rest of a level after a literal start (switch:{id}) as a level of the device id', () => {
    const plug = (name: string, topics: string[]) =>
      defineProfile({ name, category: 'smart_plug', description: name, streams: { s: { topics, decoding: 'text' } } })
    const c = new Classifier([
      plug('a', ['{id}/status/switch:0', '{id}/status/switch:{id}']),
      plug('b', ['x/meter:{id}/{id}']),
    ])
    expect(c.classify('dev/status/switch:0')?.deviceId).toBe('dev')
    expect(c.classify('dev/status/switch:3')?.deviceId).toBe('dev/3')
    expect(c.classify('dev/status/switch:')).toBeUndefined()
    expect(c.classify('dev/status/swatch:1')).toBeUndefined()
    expect(c.classify('x/meter:2/dev')?.deviceId).toBe('2/dev')
    // Within one stream the literal channel comes first; across profiles a prefixed level overlaps a literal it starts.
    expect(() => new Classifier([plug('a', ['{id}/status/switch:{id}']), plug('b', ['{id}/status/switch:0'])])).toThrow(
      /can match the same topics/,
    )
    expect(() => new Classifier([plug('a', ['{id}/status/sw{id}']), plug('b', ['{id}/status/switch:{id}'])])).toThrow(
      /can match the same topics/,
    )
    expect(
      () => new Classifier([plug('a', ['{id}/status/switch:{id}']), plug('b', ['{id}/status/pm1:{id}'])]),
    ).not.toThrow()
    expect(() => new Classifier([plug('a', ['x/sw+{id}'])])).toThrow(/empty or wildcard level/)
  })

  it('gives an instance-level stream its fixed device id, and refuses one next to {id} or deviceIdPath', () => {
    const nvr = (streams: Parameters<typeof defineProfile>[0]['streams']) =>
      defineProfile({ name: 'nvr', category: 'camera', description: 'nvr', streams })
    const c = new Classifier([
      nvr({
        stats: { topics: ['nvr/stats'], decoding: 'json', fixedDeviceId: 'nvr-1' },
        cam: { topics: ['nvr/{id}/x'], decoding: 'text' },
      }),
    ])
    expect(c.classify('nvr/stats')?.deviceId).toBe('nvr-1')
    expect(c.classify('nvr/c/x')?.deviceId).toBe('c')
    expect(c.streams.find((s) => s.name === 'cam')?.fixedDeviceId).toBeUndefined()
    // Without any source of a device id the route is refused, as before.
    expect(() => new Classifier([nvr({ stats: { topics: ['nvr/stats'], decoding: 'json' } })])).toThrow(
      /names no device id/,
    )
    expect(
      () => new Classifier([nvr({ s: { topics: ['nvr/{id}/s'], decoding: 'json', fixedDeviceId: 'n' } })]),
    ).toThrow(/fixedDeviceId/)
    expect(
      () =>
        new Classifier([nvr({ s: { topics: ['nvr/s'], decoding: 'json', deviceIdPath: 'a', fixedDeviceId: 'n' } })]),
    ).toThrow(/fixedDeviceId/)
    expect(() => new Classifier([nvr({ s: { topics: ['nvr/s'], decoding: 'json', fixedDeviceId: ' ' } })])).toThrow(
      /fixedDeviceId/,
    )
  })
  it('matches topics in place exactly as a match of their split levels would', () => {
    // The classifier matches without String#split; this is the split-based definition it must agree with.
    const plug = (name: string, topics: string[]) =>
      defineProfile({ name, category: 'smart_plug', description: name, streams: { s: { topics, decoding: 'text' } } })
    const patterns = [
      ['a', ['x/{id}/y', 'x/{id}/y/pb']],
      ['b', ['x/+/{id}']],
      ['c', ['x/sw:{id}/{id}']],
      ['d', ['{id}/on']],
      ['e', ['{id}/st/p:{id}']],
    ] as const
    const c = new Classifier(patterns.map(([name, topics]) => plug(name, [...topics])))
    const reference = (topic: string): [string, string | undefined] | undefined => {
      const levels = topic.split('/')
      // A literal root owns its namespace; id-first routes are tried only under other roots.
      const literal = levels[0] === 'x'
      for (const [name, topics] of patterns) {
        for (const pattern of topics) {
          if (pattern.startsWith('{id}') === literal) continue
          const want = pattern.split('/')
          if (want.length !== levels.length) continue
          let id: string | undefined
          const ok = want.every((w, i) => {
            const got = levels[i] as string
            const part =
              w === '{id}'
                ? got
                : w.endsWith('{id}') && got.startsWith(w.slice(0, -4))
                  ? got.slice(w.length - 4)
                  : undefined
            if (w === '+') return got !== ''
            if (part === undefined) return w === got
            if (part === '') return false
            id = id === undefined ? part : `${id}/${part}`
            return true
          })
          if (ok) return [`${name}/s`, id]
        }
      }
      return undefined
    }
    const level = fc.constantFrom('', 'x', 'y', 'pb', 'on', 'st', 'sw:', 'sw:1', 'p:', 'p:2', 'dev', 'x/y', '//')
    let matched = 0
    fc.assert(
      fc.property(fc.array(level, { maxLength: 6 }), (parts) => {
        // A fresh string, as a topic arrives from the wire.
        const topic = Buffer.from(parts.join('/')).toString()
        const got = c.classify(topic)
        if (got !== undefined) matched++
        expect(got === undefined ? undefined : [got.stream.key, got.deviceId], topic).toEqual(reference(topic))
      }),
      { numRuns: 3000 },
    )
    expect(matched).toBeGreaterThan(50)
  })
})
