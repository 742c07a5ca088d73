import { describe, expect, it } from 'vitest'
import type { Output } from '../../../gateway/src/pipeline/envelope.ts'
import { Classifier } from '../../../gateway/src/streams/classifier.ts'
import { builtinProfiles } from '../index.ts'
import { dataOf, expectCellCentre, expectNoLeak, gpsPipeline, MINUTE, readJsonLines, T0 } from '../gps.testing.ts'
import { createTraccarProfile } from './index.ts'

const TOPIC = 'traccar/osmand'
const BODIES = readJsonLines('traccar_osmand_json_bodies.jsonl')
/** A Luhn-valid IMEI (design doc §5.2): the usual OsmAnd device id. */
const IMEI = '353861053849681'
const FIXTURE_IDS = BODIES.map((b) => b.device_id as string)
const UUIDS = BODIES.map((b) => (b.location as { uuid?: string }).uuid).filter((u): u is string => u !== undefined)
const COORDINATES = BODIES.flatMap((b) => {
  const coords = (b.location as { coords: { latitude: number; longitude: number } }).coords
  return [coords.latitude, coords.longitude]
})
const SVC_TOPIC = /^veil\/svc\/gps_tracker\/[a-z2-7]{26}\/location$/
const ANA_TOPIC = /^veil\/ana\/gps_tracker\/[a-z2-7]{26}\/location$/
/** ana's daily window that holds T0 (epoch seconds). */
const DAY0 = Math.floor(T0 / 86_400_000) * 86_400

/** The body with its device id replaced everywhere it occurs (device_id and the query string copy in location._). */
function withId(body: Record<string, unknown>, id: string): Buffer {
  return Buffer.from(JSON.stringify(body).replaceAll(body.device_id as string, id))
}

describe('traccar profile', () => {
  it('classifies traccar/osmand and takes the device id from the body', () => {
    const classifier = new Classifier(builtinProfiles)
    expect(classifier.classify(TOPIC)).toMatchObject({ stream: { key: 'traccar/location' }, deviceId: undefined })
    expect(classifier.classify(TOPIC)?.stream.deviceIdFrom?.({ device_id: IMEI })).toBe(IMEI)
    expect(classifier.classify('traccar/osmand/x')).toBeUndefined()
    const custom = new Classifier([createTraccarProfile(['bridge/http/osmand', 'osmand/+'])])
    expect(custom.classify('bridge/http/osmand')?.stream.key).toBe('traccar/location')
    expect(custom.classify('osmand/phone7')).toMatchObject({ stream: { key: 'traccar/location' }, deviceId: undefined })
    for (const bad of ['traccar/#', '+/osmand', 'traccar/{id}', 'a//b', '$SYS/x'])
      expect(() => createTraccarProfile([bad]), bad).toThrow(/^traccar topic /)
  })

  it('maps every fixture body to a cell centre, a speed class, a battery class and a floored time', async () => {
    const { pipeline, audit, remove } = gpsPipeline()
    try {
      const outputs: Output[] = []
      const svc: Record<string, unknown>[] = []
      for (const [i, body] of BODIES.entries()) {
        // An hour apart, so that the two bodies of device 48241179 are both past the 15-minute downsampling.
        const result = await pipeline.process(TOPIC, Buffer.from(JSON.stringify(body)), T0 + i * 60 * MINUTE)
        expect(result.dropped).toBeUndefined()
        // ana's copy is absorbed by its daily aggregate: per fix, only svc gets anything.
        expect(result.outputs.map((o) => o.domain)).toEqual(['svc'])
        const [s] = result.outputs as [Output]
        expect(s.topic).toMatch(SVC_TOPIC)
        outputs.push(...result.outputs)
        svc.push(dataOf(s))
      }
      expect(BODIES).toHaveLength(4)
      // The end of the input: one record per device for the day (all four fixes fall on it), its mean battery level
      // rounded to 0.1, in the order the devices first reported.
      const drained = (await pipeline.tick(T0 + 3 * 60 * MINUTE, true)).flatMap((r) => r.outputs)
      expect(drained.map((o) => o.domain)).toEqual(['ana', 'ana', 'ana'])
      for (const a of drained) expect(a.topic).toMatch(ANA_TOPIC)
      expect(new Set(drained.map((o) => o.topic)).size).toBe(3)
      const ana = drained.map(dataOf)
      for (const a of [ana[0], ana[2]])
        expect(Object.keys(a as object).sort()).toEqual(['battery', 'window_s', 'window_start'])
      // Device 48241179: 1.0 and 1.0.
      expect(ana[0]).toEqual({ window_start: DAY0, window_s: 86400, battery: 1 })
      // The device with battery -1 (unknown): -1 is outside the aggregate's 0..1, so its day has no battery value.
      expect(ana[1]).toEqual({ window_start: DAY0, window_s: 86400 })
      // 0.79 → 0.8.
      expect(ana[2]).toEqual({ window_start: DAY0, window_s: 86400, battery: 0.8 })
      outputs.push(...drained)
      const expected = [
        // speed 0 m/s, battery 1.0; heading -1, altitude, accuracy, is_moving, activity, extras, odometer never leave.
        { timestamp: '2025-06-15T13:45:00Z', motion: 'stationary', battery: { level: '100' } },
        { timestamp: '2025-06-15T13:45:00Z', motion: 'stationary', battery: { level: '100' } },
        // speed -1 (unknown): no class; battery -1 (unknown).
        { timestamp: '2025-05-09T04:11:00Z', motion: undefined, battery: { level: 'unknown' } },
        // 18.67 m/s = 67 km/h; battery 0.79.
        { timestamp: '2021-07-21T08:06:00Z', motion: 'vehicle', battery: { level: '70' } },
      ]
      for (const [i, data] of svc.entries()) {
        const location = data.location as Record<string, unknown>
        const want = expected[i] as (typeof expected)[number]
        expect(Object.keys(data)).toEqual(['location'])
        expect(Object.keys(location).sort()).toEqual(
          want.motion === undefined ? ['battery', 'coords', 'timestamp'] : ['battery', 'coords', 'motion', 'timestamp'],
        )
        expect(location).toMatchObject({ timestamp: want.timestamp, battery: want.battery })
        expect(location.motion).toBe(want.motion)
        const coords = location.coords as Record<string, unknown>
        expect(Object.keys(coords).sort()).toEqual(['latitude', 'longitude'])
        expectCellCentre(coords.latitude, coords.longitude)
      }
      // Three devices, three pseudonyms per domain; the same device keeps its pseudonym.
      const svcTopics = outputs.filter((o) => o.domain === 'svc').map((o) => o.topic)
      expect(svcTopics[0]).toBe(svcTopics[1])
      expect(new Set(svcTopics).size).toBe(3)
      expectNoLeak(outputs, audit, [...FIXTURE_IDS, ...UUIDS, 'long_device_id', 'motionchange'], COORDINATES)
    } finally {
      remove()
    }
  })

  it('never lets an IMEI device id out, in the topic, the payload or the audit log', async () => {
    const { pipeline, audit, remove } = gpsPipeline()
    try {
      const outputs: Output[] = []
      for (const [i, body] of BODIES.entries())
        outputs.push(...(await pipeline.process(TOPIC, withId(body, IMEI), T0 + i * 60 * MINUTE)).outputs)
      // Four fixes to svc; ana's copies go into one daily aggregate for the one device, released at the drain.
      expect(outputs.length).toBe(4)
      outputs.push(...(await pipeline.tick(T0 + 3 * 60 * MINUTE, true)).flatMap((r) => r.outputs))
      expect(outputs.map((o) => o.domain)).toEqual(['svc', 'svc', 'svc', 'svc', 'ana'])
      expect(new Set(outputs.map((o) => o.topic)).size).toBe(2)
      // The pseudonym of the IMEI differs from that of the fixture's own id.
      const other = gpsPipeline()
      try {
        const fixture = await other.pipeline.process(TOPIC, Buffer.from(JSON.stringify(BODIES[0])), T0)
        expect(fixture.outputs[0]?.topic).not.toBe(outputs[0]?.topic)
      } finally {
        other.remove()
      }
      expectNoLeak(outputs, audit, [IMEI, ...FIXTURE_IDS], COORDINATES)
    } finally {
      remove()
    }
  })

  it('forwards no fix from inside a privacy zone, but still the battery class to ana', async () => {
    const { pipeline, audit, remove } = gpsPipeline({ zones: [{ lat: 37.4219983, lon: -122.084 }] })
    try {
      const outputs: Output[] = []
      for (let i = 0; i < 6; i++) {
        const result = await pipeline.process(
          TOPIC,
          withId(BODIES[0] as Record<string, unknown>, IMEI),
          T0 + i * 60 * MINUTE,
        )
        // svc's copy is suppressed by the zone, ana's absorbed by its daily aggregate: nothing per fix.
        expect(result.domainDrops).toEqual([
          { stage: 'filter', domain: 'svc', reason: 'suppressed' },
          { stage: 'filter', domain: 'ana', reason: 'suppressed' },
        ])
        expect(result.outputs).toEqual([])
      }
      // The day's one record: the zone hides the fixes from svc, not the battery from ana.
      const drained = (await pipeline.tick(T0 + 5 * 60 * MINUTE, true)).flatMap((r) => r.outputs)
      expect(drained.map((o) => [o.domain, dataOf(o)])).toEqual([
        ['ana', { window_start: DAY0, window_s: 86400, battery: 1 }],
      ])
      outputs.push(...drained)
      expectNoLeak(outputs, audit, [IMEI], COORDINATES)
    } finally {
      remove()
    }
  })

  it('downsamples svc to one fix per 15 minutes; ana gets every battery level in its daily mean', async () => {
    const { pipeline, remove } = gpsPipeline()
    try {
      const domains: string[][] = []
      for (let i = 0; i < 6; i++) {
        const result = await pipeline.process(
          TOPIC,
          withId(BODIES[3] as Record<string, unknown>, IMEI),
          T0 + i * 5 * MINUTE,
        )
        domains.push(result.outputs.map((o) => o.domain))
      }
      // ana gets nothing per fix: all six go into the day's one record, released at the drain.
      expect(domains).toEqual([['svc'], [], [], ['svc'], [], []])
      const drained = (await pipeline.tick(T0 + 25 * MINUTE, true)).flatMap((r) => r.outputs)
      expect(drained.map((o) => [o.domain, dataOf(o)])).toEqual([
        ['ana', { window_start: DAY0, window_s: 86400, battery: 0.8 }],
      ])
    } finally {
      remove()
    }
  })

  it('drops bodies without a device id, batches and out-of-range fixes as invalid', async () => {
    const { pipeline, audit, remove } = gpsPipeline()
    try {
      const body = BODIES[3] as { location: Record<string, unknown>; device_id: string }
      const invalid: unknown[] = [
        { location: body.location },
        { ...body, device_id: '' },
        { ...body, device_id: 353861053849681 },
        { location: [body.location, body.location], device_id: IMEI },
        { device_id: IMEI, location: { ...body.location, coords: { latitude: 91, longitude: 0 } } },
        { device_id: IMEI, location: { coords: body.location.coords } },
        { device_id: IMEI, location: { ...body.location, battery: { level: 79 } } },
      ]
      for (const message of invalid) {
        const result = await pipeline.process(TOPIC, Buffer.from(JSON.stringify(message)), T0)
        expect(result).toMatchObject({ outputs: [], dropped: { stage: 'validate', reason: 'invalid' } })
      }
      expectNoLeak([], audit, [IMEI], COORDINATES)
    } finally {
      remove()
    }
  })
})
