import { afterEach, describe, expect, it } from 'vitest'
import { fixture, HOUR_MS, leaks, perDevice, shippedPipeline, type ProfilePipeline } from '../testing.ts'

interface Device {
  friendly_name: string
  ieee_address: string
  network_address: number
  definition?: { model?: string; exposes?: { name?: string; property?: string }[] } | null
}

/** A real Zigbee2MQTT 1.33 network (21 Xiaomi devices) and its bridge/info; the dict form is turned into the array Z2M publishes. */
const devices = Object.values(fixture<Record<string, Device>>('zigbee2mqtt/z2m_barbaris_bridge_devices_dictform.json'))
const bridgeInfo = fixture('zigbee2mqtt/z2m_barbaris_bridge_info_full.json')
const sensorState = fixture('zigbee2mqtt/z2m_barbaris_state_WSDCGQ11LM.json')
/** The ZNCZ02LM plug of that network, which exposes power and energy (kWh). */
const plug = devices.find((d) => d.definition?.exposes?.some((e) => e.property === 'energy')) as Device

const T0 = Date.UTC(2026, 2, 1, 6, 0, 20)
const WINDOW0 = Date.UTC(2026, 2, 1, 6) / 1000

/** Every friendly name and IEEE address of the network: none may leave in any form. */
const identifiers = [
  ...devices.flatMap((d) => [d.friendly_name, d.ieee_address, d.ieee_address.slice(2)]),
  'livingroom/ac power',
  'livingroom',
  'ac power',
].filter((s) => s.length >= 4 && !/^(plug|state|online)$/i.test(s))

/**
 * A Xiaomi plug as Zigbee2MQTT publishes it: availability on start, then the state document every minute, energy
 * in kWh with 3 decimals. `name` is the friendly name (the IEEE address by default).
 */
async function runPlug(
  p: ProfilePipeline,
  name: string,
  until: number,
  powerAt: (t: number) => number,
  availability: string,
): Promise<void> {
  await p.send(T0, `zigbee2mqtt/${name}/availability`, availability)
  let wh = 12_345
  for (let t = T0; t <= until; t += 60_000) {
    const power = powerAt(t)
    const state = {
      state: power > 0 ? 'ON' : 'OFF',
      power,
      energy: Math.round(wh) / 1000,
      voltage: 231,
      current: power / 231,
      device_temperature: 31,
      linkquality: 87,
      power_outage_memory: true,
      last_seen: new Date(t).toISOString(),
      update: { state: 'idle', installed_version: 40, latest_version: 40 },
    }
    await p.send(t, `zigbee2mqtt/${name}`, state)
    wh += power / 60
  }
}

describe('zigbee2mqtt through the shipped smart_plug policy', () => {
  let p: ProfilePipeline
  afterEach(() => p.close())

  it('forwards hourly energy in Wh from the kWh counter, for one- and two-level friendly names, and nothing identifying', async () => {
    p = shippedPipeline()
    expect(plug.definition?.model).toBe('ZNCZ02LM')
    const until = T0 + 3 * HOUR_MS + 60_000
    // The bridge publishes its inventory and configuration (retained) as the gateway starts.
    await p.send(T0, 'zigbee2mqtt/bridge/state', '{"state":"online"}')
    await p.send(T0, 'zigbee2mqtt/bridge/info', bridgeInfo)
    await p.send(T0, 'zigbee2mqtt/bridge/devices', JSON.stringify(devices))
    await p.send(T0, 'zigbee2mqtt/bridge/event', {
      type: 'device_announce',
      data: { friendly_name: plug.friendly_name, ieee_address: plug.ieee_address },
    })
    await p.send(T0, 'zigbee2mqtt/bridge/response/device/rename', {
      data: { from: plug.ieee_address, to: 'livingroom/ac power' },
      status: 'ok',
    })
    // Default friendly name (the IEEE address): 1200 W for 30 min (600 Wh), then 120 W for an hour, then off.
    await runPlug(
      p,
      plug.ieee_address,
      until,
      (t) => (t < T0 + HOUR_MS / 2 ? 1200 : t >= T0 + HOUR_MS && t < T0 + 2 * HOUR_MS ? 120 : 0),
      'online',
    )
    // A user's name with a slash: a steady 45 W (45 Wh an hour), JSON availability.
    await runPlug(p, 'livingroom/ac power', until, () => 45, '{"state":"online"}')
    // A temperature sensor in the same namespace: classified, but it has no energy, so nothing leaves.
    await p.send(T0, 'zigbee2mqtt/bedroom sensor', sensorState)
    // Commands from Home Assistant are not telemetry.
    await p.send(T0, 'zigbee2mqtt/livingroom/ac power/set', '{"state":"OFF"}')
    await p.send(T0, `zigbee2mqtt/${plug.ieee_address}/set/state`, 'OFF')

    // The gateway's clock releases each window's record 5-30 s after the window ends; the last window (09:00, with
    // the final readings) is still open, since nothing drains it here.
    for (const domain of ['svc', 'ana']) {
      const records = perDevice(p.forwarded, domain, 'state')
      expect(records).toHaveLength(2)
      expect(records).toContainEqual([
        { window_start: WINDOW0, window_s: 3600, energy_wh: 600 },
        { window_start: WINDOW0 + 3600, window_s: 3600, energy_wh: 120 },
        { window_start: WINDOW0 + 7200, window_s: 3600, energy_wh: 0 },
      ])
      // 45 W is 0.75 Wh a minute, the counter in whole Wh. Window 0 counts from the first reading (06:00:20) to the
      // last in it (06:59:20): 44 Wh → 40 (carry 4); a reading after a window's end counts in the new window, so
      // window 1 gets 45 Wh + 4 → 50 (carry −1), window 2 45 − 1 = 44 → 40 (carry 4): the records add up to the
      // counter within 5 Wh.
      expect(records).toContainEqual([
        { window_start: WINDOW0, window_s: 3600, energy_wh: 40 },
        { window_start: WINDOW0 + 3600, window_s: 3600, energy_wh: 50 },
        { window_start: WINDOW0 + 7200, window_s: 3600, energy_wh: 40 },
      ])
    }
    expect(perDevice(p.forwarded, 'svc', 'availability')).toEqual([['online'], ['{"state":"online"}']])
    expect(new Set(p.forwarded.map((f) => f.stream))).toEqual(new Set(['state', 'availability']))

    const dropped = (stream: string) => p.results.filter((r) => r.stream === stream).map((r) => r.dropped?.reason)
    expect(dropped('bridge')).toEqual(Array(5).fill('no_policy'))
    expect(dropped('command')).toEqual(Array(2).fill('no_policy'))
    expect(p.results.at(-3)?.domainDrops.map((d) => d.reason)).toEqual(['empty_after_filter', 'empty_after_filter'])

    for (const f of p.forwarded) {
      expect(f.topic).toMatch(/^veil\/(svc|ana)\/smart_plug\/[a-z2-7]{26}\/(state|availability)$/)
      expect(f.text).not.toMatch(/power"|voltage|current|linkquality|last_seen|"ON"|"OFF"/)
    }
    expect(leaks(p.forwarded, identifiers, p.audit)).toEqual([])
  })

  it('gives a two-level friendly name one pseudonym for its state and its availability', async () => {
    p = shippedPipeline()
    await p.send(T0, 'zigbee2mqtt/livingroom/ac power/availability', 'online')
    await p.send(T0, 'zigbee2mqtt/0x00158d0001db18f9/availability', 'online')
    await p.send(T0, 'zigbee2mqtt/livingroom/ac power', { energy: 1.5 })
    await p.send(T0 + HOUR_MS, 'zigbee2mqtt/livingroom/ac power', { energy: 1.75 })
    // The end of the input closes the open window: the reading after 07:00 counts in window 1, window 0 (from the
    // first reading on) used nothing.
    await p.tick(T0 + HOUR_MS, true)
    // svc and ana records leave with independent random delays, so their order varies: pick svc's by name.
    const device = (f: { topic: string }) => f.topic.split('/')[3]
    const [ac, other] = p.forwarded.map(device)
    const energy = device(p.forwarded.find((f) => f.domain === 'svc' && f.stream === 'state') ?? { topic: '' })
    expect(ac).toBe(energy)
    expect(ac).not.toBe(other)
    expect(perDevice(p.forwarded, 'svc', 'state')).toEqual([
      [
        { window_start: WINDOW0, window_s: 3600, energy_wh: 0 },
        { window_start: WINDOW0 + 3600, window_s: 3600, energy_wh: 250 },
      ],
    ])
  })

  it('reads names with several slashes: availability, set and get are the last level, anything else is the name', async () => {
    p = shippedPipeline()
    const name = 'flat 2/bedroom/heater'
    await p.send(T0, `zigbee2mqtt/${name}/availability`, '{"state":"online"}')
    await p.send(T0, `zigbee2mqtt/${name}`, { energy: 3.5, power: 800, state: 'ON' })
    await p.send(T0, `zigbee2mqtt/${name}/set`, '{"state":"OFF"}')
    await p.send(T0, `zigbee2mqtt/${name}/get/state`, '')
    await p.send(T0 + HOUR_MS, `zigbee2mqtt/${name}`, { energy: 4.3 })
    // The end of the input closes the open window: the 800 Wh reading after 07:00 counts in window 1.
    await p.tick(T0 + HOUR_MS, true)
    expect(p.results.map((r) => r.stream)).toEqual(['availability', 'state', 'command', 'command', 'state'])
    const topics = new Set(p.forwarded.filter((f) => f.domain === 'svc').map((f) => f.topic.split('/')[3]))
    expect(topics.size).toBe(1)
    expect(perDevice(p.forwarded, 'svc', 'state')).toEqual([
      [
        { window_start: WINDOW0, window_s: 3600, energy_wh: 0 },
        { window_start: WINDOW0 + 3600, window_s: 3600, energy_wh: 800 },
      ],
    ])
    // The deepest name recognised has five levels; a sixth makes the topic unknown.
    expect((await p.send(T0, 'zigbee2mqtt/a/b/c/d/e', { energy: 1 })).stream).toBe('state')
    expect((await p.send(T0, 'zigbee2mqtt/a/b/c/d/e/f', { energy: 1 })).dropped?.reason).toBe('unknown_topic')
    expect(leaks(p.forwarded, ['flat 2', 'bedroom', 'heater', name], p.audit)).toEqual([])
  })

  it('follows a custom base topic (mqtt.base_topic)', async () => {
    const { Classifier } = await import('../../../gateway/src/streams/classifier.ts')
    const { createZigbee2mqttProfile } = await import('./index.ts')
    const classifier = new Classifier([createZigbee2mqttProfile('home/z2m')])
    expect(classifier.classify('home/z2m/kitchen/plug')).toMatchObject({
      stream: { key: 'zigbee2mqtt/state' },
      deviceId: 'kitchen/plug',
    })
    expect(classifier.classify('home/z2m/bridge/devices')?.stream.key).toBe('zigbee2mqtt/bridge')
    expect(classifier.classify('home/z2m/kitchen/plug/availability')?.stream.key).toBe('zigbee2mqtt/availability')
    expect(classifier.classify('zigbee2mqtt/kitchen')).toBeUndefined()
    for (const bad of ['', 'a/+', 'z2m/#', 'a//b', '$SYS', 'veil', 'z/{id}'])
      expect(() => createZigbee2mqttProfile(bad), bad).toThrow(/^zigbee2mqtt base topic /)
  })

  it('drops what a plug does not send, and names with more than five levels', async () => {
    p = shippedPipeline()
    const cases: [string, string, string][] = [
      ['zigbee2mqtt/Plug', '{"energy":"lots"}', 'invalid'],
      ['zigbee2mqtt/Plug', '{"state":"MAYBE"}', 'invalid'],
      ['zigbee2mqtt/Plug', 'ON', 'undecodable'],
      ['zigbee2mqtt/Plug/availability', 'online, from the kitchen', 'invalid'],
      ['zigbee2mqtt/Plug/availability', '{"state":"online","name":"Plug"}', 'invalid'],
      ['zigbee2mqtt/a/b/c/d/e/f', '{"energy":1}', 'unknown_topic'],
      ['zigbee2mqtt/a/b/c/d/e/f/availability', 'online', 'unknown_topic'],
      // A device named `x/availability` would publish its state here: read as x's availability, it fails the schema.
      ['zigbee2mqtt/x/availability', '{"energy":1}', 'invalid'],
    ]
    for (const [topic, payload, reason] of cases)
      expect((await p.send(T0, topic, payload)).dropped?.reason, `${topic} ${payload}`).toBe(reason)
    expect(p.forwarded).toEqual([])
  })
})
