/**
 * The `profiles` section end to end: a configuration file moves gpsd, Traccar and Zigbee2MQTT to other topics, a
 * real gateway started from it classifies devices on those topics (and no longer on the defaults) and forwards
 * their filtered copies upstream; a bad pattern stops the start naming the file, the path and the problem.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { DEFAULT_POLICIES, resolveConfig, upstreamConfig, type GatewayConfig } from '../../gateway/src/config/config.ts'
import { Gateway } from '../../gateway/src/gateway.ts'
import type { PipelineResult } from '../../gateway/src/pipeline/envelope.ts'
import { createLogger } from '../../gateway/src/telemetry/log.ts'
import { connect, startUpstream, tempDir } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'
import { builtinPlugins } from '../../gateway/src/builtins.ts'

const CONFIG = `
profiles:
  gpsd: { topics: ['fleet/{id}/position', 'site/boat/{id}/tpv'] }
  traccar: { topics: ['osmand/+'] }
  zigbee2mqtt: { baseTopic: home/z2m }
# One fix per device: learned stay zones would withhold each device's first fix (stay_zone).
stayZones: false
`

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function configFile(text: string): string {
  const dir = tempDir('veil-profiles-config-')
  cleanups.push(() => dir.remove())
  const file = join(dir.path, 'veil.yaml')
  writeFileSync(file, text)
  return file
}

describe('profiles section of the configuration', () => {
  it('classifies and forwards devices on the configured topics, and no longer on the defaults', async () => {
    const upstream = await startUpstream()
    cleanups.push(() => upstream.close())
    const data = tempDir()
    cleanups.push(() => data.remove())
    const base = resolveConfig(builtinPlugins, {
      config: configFile(CONFIG),
      allowAnonymous: true,
      listen: 'mqtt://127.0.0.1:0',
      http: '127.0.0.1:0',
      dataDir: data.path,
      policies: DEFAULT_POLICIES,
    })
    const domains = new Map(base.domains)
    domains.set('svc', { epochSeconds: 0, upstream: upstreamConfig(upstream.url, { protocolVersion: 4 }) })
    const config: GatewayConfig = { ...base, domains }
    const gateway = await Gateway.start(config, builtinPlugins, createLogger('silent', process.stderr))
    cleanups.push(() => gateway.close(1000))
    const results: [string, PipelineResult][] = []
    gateway.onProcessed((topic, _size, result) => results.push([topic, result]))

    const device = await connect(`mqtt://127.0.0.1:${gateway.broker.address.port}`)
    cleanups.push(() => device.endAsync())
    const tpv = JSON.stringify({
      class: 'TPV',
      mode: 3,
      time: new Date().toISOString(),
      lat: 48.2,
      lon: 11.6,
      speed: 12.5,
    })
    const sent: [string, string][] = [
      ['fleet/van7/position', tpv],
      ['site/boat/rover/sky', JSON.stringify({ class: 'SKY', satellites: [] })],
      [
        'osmand/phone7',
        `id=359870000000123&timestamp=${Math.floor(Date.now() / 1000)}&lat=52.1&lon=13.2&speed=10&batt=64`,
      ],
      ['home/z2m/kitchen/plug/availability', '{"state":"online"}'],
      // The default topics are someone else's now: unknown, dropped.
      ['gpsd/van7/tpv', tpv],
      [
        'traccar/osmand',
        JSON.stringify({
          device_id: 'x',
          location: { timestamp: new Date().toISOString(), coords: { latitude: 1, longitude: 1 } },
        }),
      ],
      ['zigbee2mqtt/kitchen/plug/availability', 'online'],
    ]
    for (const [topic, payload] of sent) await device.publishAsync(topic, payload, { qos: 1 })
    await until(() => results.length === sent.length, { timeoutMs: 5000, what: 'every message processed' })

    const streamOf = new Map(results.map(([topic, r]) => [topic, r.dropped?.reason ?? r.stream]))
    expect(Object.fromEntries(streamOf)).toEqual({
      'fleet/van7/position': 'tpv',
      'site/boat/rover/sky': 'no_policy',
      'osmand/phone7': 'location',
      'home/z2m/kitchen/plug/availability': 'availability',
      'gpsd/van7/tpv': 'unknown_topic',
      'traccar/osmand': 'unknown_topic',
      'zigbee2mqtt/kitchen/plug/availability': 'unknown_topic',
    })
    // The shipped policies release minute-floored GPS fixes at the next minute boundary: run the gateway's clock there.
    await gateway.tick(Date.now() + 62_000)
    await until(() => upstream.received.length >= 3, { timeoutMs: 5000, what: 'three filtered copies upstream' })
    const upstreamTopics = upstream.received.map((p) => p.topic.replace(/[a-z2-7]{26}/, '<p>')).sort()
    expect(upstreamTopics).toEqual([
      'veil/svc/gps_tracker/<p>/location',
      'veil/svc/gps_tracker/<p>/tpv',
      'veil/svc/smart_plug/<p>/availability',
    ])
    const location = upstream.received.find((p) => p.topic.endsWith('/location'))
    // The query string's speed (10 knots = 5.1 m/s) became a speed class; no id, no Wi-Fi, no exact position.
    const text = location?.payload.toString() ?? ''
    expect(text).not.toContain('359870000000123')
    expect(text).not.toContain('"speed"')
    expect(JSON.parse(text).data.location.motion).toBeDefined()
  })

  it('stops the start on a bad pattern, naming the file, the path and the problem', () => {
    const cases: [string, RegExp][] = [
      [
        "profiles: { gpsd: { topics: ['gpsd/{id}/tpv', 'gpsd/#'] } }",
        /veil\.yaml: \/profiles\/gpsd\/topics\/1: .*# is not allowed/,
      ],
      ["profiles: { gpsd: { topics: ['gpsd/tpv'] } }", /\/profiles\/gpsd\/topics\/0: .*exactly 1 \{id\} level/],
      [
        "profiles: { traccar: { topics: ['traccar/{id}'] } }",
        /\/profiles\/traccar\/topics\/0: .*device id is in the payload/,
      ],
      [
        "profiles: { traccar: { topics: ['+/osmand'] } }",
        /\/profiles\/traccar\/topics\/0: .*must start with a literal level/,
      ],
      ["profiles: { zigbee2mqtt: { baseTopic: 'veil' } }", /\/profiles\/zigbee2mqtt\/baseTopic: .*reserved/],
      // Would read a Tasmota plug's STATE as a GPS fix.
      [
        "profiles: { gpsd: { topics: ['tele/{id}/STATE'] } }",
        /\/profiles\/gpsd\/topics: can match the same topics as tasmota\/state/,
      ],
      [
        "profiles: { traccar: { topics: ['frigate/+'] } }",
        /\/profiles\/traccar\/topics: can match the same topics as frigate\//,
      ],
      [
        'profiles: { gpsd: { topics: [] } }',
        /\/profiles\/gpsd\/topics: must NOT have fewer than 1 items|\/profiles\/gpsd\/topics: .*1/,
      ],
      ["profiles: { owntracks: { topics: ['x'] } }", /\/profiles: .*owntracks/],
    ]
    for (const [text, message] of cases) {
      const file = configFile(text)
      expect(() => resolveConfig(builtinPlugins, { config: file }), text).toThrow(message)
      try {
        resolveConfig(builtinPlugins, { config: file })
      } catch (err) {
        expect((err as { code?: string }).code).toBe('VEIL_ERR_CONFIG')
        expect((err as Error).message.startsWith(file)).toBe(true)
      }
    }
  })
})
