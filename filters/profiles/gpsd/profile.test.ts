import { describe, expect, it } from 'vitest'
import type { Output } from '../../../gateway/src/pipeline/envelope.ts'
import { Classifier } from '../../../gateway/src/streams/classifier.ts'
import { builtinProfiles } from '../index.ts'
import { dataOf, expectCellCentre, expectNoLeak, gpsPipeline, MINUTE, readJsonLines, T0 } from '../gps.testing.ts'
import { createGpsdProfile } from './index.ts'

/** gpsd reports a receiver's device path, not an id: the bridge names the device. An IMEI-like id must not leak. */
const DEVICE = '353861053849681'
const TOPIC = `gpsd/${DEVICE}/tpv`
const TPV = readJsonLines('gpsd_tpv_bu303-moving.jsonl')
const CHK = readJsonLines('gpsd_test_daemon_bu303-moving.log.chk')
const COORDINATES = TPV.flatMap((m) => [m.lat as number, m.lon as number])
const SVC_TOPIC = /^veil\/svc\/gps_tracker\/[a-z2-7]{26}\/tpv$/

describe('gpsd profile', () => {
  it('classifies TPV and the other report classes by topic, with the device id from the topic', () => {
    const classifier = new Classifier(builtinProfiles)
    expect(classifier.classify(TOPIC)).toMatchObject({ stream: { key: 'gpsd/tpv' }, deviceId: DEVICE })
    for (const c of ['sky', 'device', 'devices', 'version', 'watch']) {
      expect(classifier.classify(`gpsd/rover/${c}`)?.stream.key).toBe('gpsd/report')
    }
    for (const topic of ['gpsd/tpv', 'gpsd/rover/tpv/x', 'gpsd/rover/nmea', 'gpsd//tpv'])
      expect(classifier.classify(topic)).toBeUndefined()
  })

  it('takes other topics, and refuses wildcards, empty levels and anything but one {id} level', () => {
    const classifier = new Classifier([createGpsdProfile(['site/boat/{id}/tpv', 'fleet/{id}/position'])])
    expect(classifier.classify('site/boat/rover/tpv')).toMatchObject({ stream: { key: 'gpsd/tpv' }, deviceId: 'rover' })
    expect(classifier.classify('site/boat/rover/sky')).toMatchObject({
      stream: { key: 'gpsd/report' },
      deviceId: 'rover',
    })
    expect(classifier.classify('fleet/van7/position')).toMatchObject({ stream: { key: 'gpsd/tpv' }, deviceId: 'van7' })
    // Only a topic ending in tpv gets the other classes beside it.
    expect(classifier.classify('fleet/van7/sky')).toBeUndefined()
    expect(classifier.classify('gpsd/rover/tpv')).toBeUndefined()
    for (const bad of [
      '',
      'a//{id}',
      '+/{id}/tpv',
      'a/+/{id}',
      'a/#/{id}',
      '{id}/tpv',
      'gpsd/tpv',
      'gpsd/{id}/{id}',
      'gpsd/x{id}/tpv',
      'veil/{id}/tpv',
    ]) {
      expect(() => createGpsdProfile([bad]), bad).toThrow(/^gpsd topic /)
    }
    expect(() => createGpsdProfile([])).toThrow(/at least one/)
  })

  it('forwards the first TPV of the fixture as a snapped cell centre, a speed class and a floored time; downsamples the rest', async () => {
    const { pipeline, audit, remove } = gpsPipeline()
    try {
      const outputs: Output[] = []
      const results = []
      for (const [i, message] of TPV.entries()) {
        const result = await pipeline.process(TOPIC, Buffer.from(JSON.stringify(message)), T0 + i * 1000)
        results.push(result)
        outputs.push(...result.outputs)
      }
      expect(TPV).toHaveLength(12)
      expect(results.every((r) => r.dropped === undefined)).toBe(true)
      // svc only (gpsd has no battery, so ana has no section), and one fix per 15 minutes.
      expect(outputs.map((o) => o.domain)).toEqual(['svc'])
      expect(results.slice(1).map((r) => r.domainDrops)).toEqual(
        Array(11).fill([{ stage: 'filter', domain: 'svc', reason: 'suppressed' }]),
      )
      const [first] = outputs as [Output]
      expect(first.topic).toMatch(SVC_TOPIC)
      const data = dataOf(first)
      expect(Object.keys(data).sort()).toEqual(['class', 'lat', 'lon', 'motion', 'time'])
      expect(data).toMatchObject({ class: 'TPV', motion: 'stationary', time: '2005-06-09T14:34:00Z' })
      expectCellCentre(data.lat, data.lon)
      expectNoLeak(outputs, audit, [DEVICE], COORDINATES)
    } finally {
      remove()
    }
  })

  it('forwards one fix per 15 minutes on a synthetic clock, every one a cell centre within the noise of the truth', async () => {
    const { pipeline, audit, remove } = gpsPipeline()
    try {
      const outputs: Output[] = []
      for (const [i, message] of TPV.entries()) {
        // Vary the speed (m/s) so that all three classes occur: 0.36, 3.6 and 72 km/h.
        const speed = [0.1, 1, 20][i % 3] as number
        outputs.push(
          ...(await pipeline.process(TOPIC, Buffer.from(JSON.stringify({ ...message, speed })), T0 + i * 15 * MINUTE))
            .outputs,
        )
      }
      expect(outputs).toHaveLength(12)
      const topics = new Set(outputs.map((o) => o.topic))
      expect(topics.size).toBe(1)
      const data = outputs.map(dataOf)
      expect(data.map((d) => d.motion)).toEqual(Array(4).fill(['stationary', 'walking', 'vehicle']).flat())
      for (const d of data) {
        expectCellCentre(d.lat, d.lon)
        // 500 m of planar Laplace noise plus a cell: well inside 0.1 degrees at this latitude.
        expect(Math.abs((d.lat as number) - 46.4983)).toBeLessThan(0.1)
        expect(Math.abs((d.lon as number) - 7.5674)).toBeLessThan(0.15)
        expect(d).not.toHaveProperty('speed')
        expect(d).not.toHaveProperty('track')
        expect(d).not.toHaveProperty('altHAE')
      }
      expectNoLeak(outputs, audit, [DEVICE], COORDINATES)
    } finally {
      remove()
    }
  })

  it('forwards nothing from inside a privacy zone', async () => {
    const { pipeline, audit, remove } = gpsPipeline({ zones: [{ lat: 46.4983, lon: 7.5674 }] })
    try {
      const outputs: Output[] = []
      for (const [i, message] of TPV.entries()) {
        const result = await pipeline.process(TOPIC, Buffer.from(JSON.stringify(message)), T0 + i * 15 * MINUTE)
        expect(result.domainDrops).toEqual([{ stage: 'filter', domain: 'svc', reason: 'suppressed' }])
        outputs.push(...result.outputs)
      }
      expect(outputs).toEqual([])
      expectNoLeak(outputs, audit, [DEVICE], COORDINATES)
    } finally {
      remove()
    }
  })

  it('never forwards SKY, DEVICE or VERSION reports; a non-TPV or fix-less report on the tpv topic is invalid', async () => {
    const { pipeline, audit, remove } = gpsPipeline()
    try {
      const sky = CHK.filter((m) => m.class === 'SKY')
      expect(sky.length).toBeGreaterThan(0)
      const others = [
        ...sky.map((m) => ['sky', m] as const),
        [
          'device',
          {
            class: 'DEVICE',
            path: '/dev/ttyUSB0',
            driver: 'u-blox',
            subtype: 'SW 2.01,HW 00080000',
            activated: '2026-03-01T06:00:00.000Z',
          },
        ] as const,
        ['version', { class: 'VERSION', release: '3.25', rev: '3.25', proto_major: 3, proto_minor: 15 }] as const,
      ]
      for (const [suffix, message] of others) {
        const result = await pipeline.process(`gpsd/${DEVICE}/${suffix}`, Buffer.from(JSON.stringify(message)), T0)
        expect(result).toMatchObject({ outputs: [], dropped: { stage: 'filter', reason: 'no_policy' } })
      }
      const invalid = [
        sky[0],
        { class: 'TPV', mode: 1, time: '2026-03-01T06:00:00.000Z' },
        { class: 'TPV', mode: 1, lat: 46.5, lon: 7.5 },
        { ...TPV[0], lat: 91 },
      ]
      for (const message of invalid) {
        const result = await pipeline.process(TOPIC, Buffer.from(JSON.stringify(message)), T0)
        expect(result).toMatchObject({ outputs: [], dropped: { stage: 'validate', reason: 'invalid' } })
      }
      expectNoLeak([], audit, [DEVICE, 'ttyUSB0', 'u-blox'], COORDINATES)
    } finally {
      remove()
    }
  })

  it('with precise_location on, keeps the exact fix outside zones but rounds the speed', async () => {
    const { pipeline, remove } = gpsPipeline({ optIn: ['precise_location'] })
    try {
      const [out] = (await pipeline.process(TOPIC, Buffer.from(JSON.stringify(TPV[0])), T0)).outputs
      expect(out === undefined ? undefined : dataOf(out)).toEqual({
        class: 'TPV',
        lat: 46.498287177,
        lon: 7.567411672,
        time: '2005-06-09T14:34:44.280Z',
        speed: 0,
      })
    } finally {
      remove()
    }
  })
})
