import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Output } from '../../../gateway/src/pipeline/envelope.ts'
import { Classifier } from '../../../gateway/src/streams/classifier.ts'
import { builtinProfiles } from '../index.ts'
import { dataOf, expectCellCentre, expectNoLeak, GPS_FIXTURES, gpsPipeline, MINUTE, T0 } from '../gps.testing.ts'

const BASE = 'owntracks/CanaryAlice/CanaryPhone'
const HOUR = 60 * MINUTE
/** Strings of the fixtures (and the synthetic messages below) that must never leave. */
const SECRETS = [
  'CanaryAlice',
  'CanaryPhone',
  'AndroidWifi',
  '00:13:10:85:fe:01',
  'Testregion1',
  'Testregion2',
  'inputTestId',
  'overridden-topic',
  'MyName!',
  'mypoint',
  'owntracks/user/device',
  'TestCipherText',
  'newHost',
  'CanaryPassword',
  'CanaryUsername',
  'CanaryHost',
  'CanaryFaceName',
  'CanaryRegion',
  'CanaryDeviceModel',
]
/** A 1×1 PNG, base64: what a card's `face` looks like. */
const FACE = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='

type Drop = { drop: readonly [string, string] }
type Expected = { forward: readonly string[] } | Drop
/** svc gets the fix as it comes; ana gets the day's mean battery class once the day's window closes (the drain). */
const FORWARD_BOTH: Expected = { forward: ['svc', 'ana'] }
/** No `batt`: ana's aggregate has nothing to report, so ana gets no record, not even at the drain. */
const FORWARD_SVC: Expected = { forward: ['svc'] }
const INVALID: Drop = { drop: ['validate', 'invalid'] }
const NO_POLICY: Drop = { drop: ['filter', 'no_policy'] }

/**
 * Every Android fixture: the topic suffix its `_type` is published on, what the default policies do with it there,
 * and what they do when it arrives on the base topic instead (the canary test sends them all there).
 */
const FIXTURES: Record<string, { suffix: string; there: Expected; onBase: Expected }> = {
  'owntracks_android_card_message_with_tid.json': { suffix: '/info', there: NO_POLICY, onBase: INVALID },
  'owntracks_android_cmd_invalid_action.json': { suffix: '/cmd', there: NO_POLICY, onBase: INVALID },
  'owntracks_android_cmd_report_location.json': { suffix: '/cmd', there: NO_POLICY, onBase: INVALID },
  'owntracks_android_cmd_set_configuration.json': { suffix: '/cmd', there: NO_POLICY, onBase: INVALID },
  'owntracks_android_cmd_set_waypoints.json': { suffix: '/cmd', there: NO_POLICY, onBase: INVALID },
  'owntracks_android_cmd_status.json': { suffix: '/cmd', there: NO_POLICY, onBase: INVALID },
  // Veil holds no OwnTracks key: an encrypted payload cannot be checked, so it is dropped wherever it arrives.
  'owntracks_android_encrypted_message.json': { suffix: '', there: INVALID, onBase: INVALID },
  // The app rejects it for a missing tid; to Veil it is a valid fix (tid is not required and never forwarded).
  'owntracks_android_invalid_location_message_missing_tid_and_topic.json': {
    suffix: '',
    there: FORWARD_SVC,
    onBase: FORWARD_SVC,
  },
  'owntracks_android_invalid_location_message_zero_timestamp.json': { suffix: '', there: INVALID, onBase: INVALID },
  'owntracks_android_location_deserialize_extended.json': { suffix: '', there: FORWARD_BOTH, onBase: FORWARD_BOTH },
  'owntracks_android_location_empty.json': { suffix: '', there: INVALID, onBase: INVALID },
  'owntracks_android_location_encrypted_decrypted.json': { suffix: '', there: FORWARD_BOTH, onBase: FORWARD_BOTH },
  'owntracks_android_location_timer_trigger.json': { suffix: '', there: FORWARD_BOTH, onBase: FORWARD_BOTH },
  'owntracks_android_location_with_created_at.json': { suffix: '', there: FORWARD_BOTH, onBase: FORWARD_BOTH },
  'owntracks_android_unknown_message.json': { suffix: '', there: INVALID, onBase: INVALID },
  'owntracks_android_valid_card_message.json': { suffix: '/info', there: NO_POLICY, onBase: INVALID },
  'owntracks_android_valid_location_message.json': { suffix: '', there: FORWARD_BOTH, onBase: FORWARD_BOTH },
  'owntracks_android_valid_location_message_with_topic.json': { suffix: '', there: FORWARD_SVC, onBase: FORWARD_SVC },
  'owntracks_android_waypoint_message.json': { suffix: '/waypoint', there: NO_POLICY, onBase: INVALID },
}

function fixture(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(GPS_FIXTURES, file), 'utf8')) as Record<string, unknown>
}

function coordinatesOf(value: Record<string, unknown>): number[] {
  return [value.lat, value.lon].filter((v): v is number => typeof v === 'number')
}

describe('owntracks profile', () => {
  it('maps each message type to its own topic and stream; the base topic is location only', () => {
    const classifier = new Classifier(builtinProfiles)
    const streams: [string, string][] = [
      ['', 'location'],
      ['/event', 'transition'],
      ['/waypoint', 'waypoint'],
      ['/waypoints', 'waypoints'],
      ['/info', 'card'],
      ['/status', 'status'],
      ['/dump', 'configuration'],
      ['/cmd', 'cmd'],
      ['/step', 'steps'],
      ['/beacon', 'beacon'],
    ]
    for (const [suffix, stream] of streams) {
      expect(classifier.classify(`${BASE}${suffix}`)).toMatchObject({
        stream: { key: `owntracks/${stream}` },
        deviceId: 'CanaryAlice/CanaryPhone',
      })
    }
    expect(classifier.classify(`${BASE}/lwt`)).toBeUndefined()
    expect(classifier.classify(`${BASE}/event/x`)).toBeUndefined()
  })

  it('covers every Android fixture', () => {
    expect(
      readdirSync(GPS_FIXTURES)
        .filter((f) => f.startsWith('owntracks_android_'))
        .sort(),
    ).toEqual(Object.keys(FIXTURES).sort())
  })

  for (const [file, { suffix, there, onBase }] of Object.entries(FIXTURES)) {
    it(`${file.replace(/^owntracks_android_|\.json$/g, '')}: ${'forward' in there ? `to ${there.forward.join(' and ')}` : `dropped (${there.drop.join(' ')})`} on ${BASE.replace(/\/.*/, '')}/…${suffix}`, async () => {
      const { pipeline, audit, remove } = gpsPipeline()
      try {
        const body = fixture(file)
        const outputs: Output[] = []
        let anaFixes = 0
        // An hour apart, so that downsampling does not hide the second one.
        for (const [topic, want, ts] of [
          [`${BASE}${suffix}`, there, T0],
          [BASE, onBase, T0 + HOUR],
        ] as const) {
          const result = await pipeline.process(topic, Buffer.from(JSON.stringify(body)), ts)
          if ('drop' in want) {
            expect(result).toMatchObject({ outputs: [], dropped: { stage: want.drop[0], reason: want.drop[1] } })
            continue
          }
          expect(result.dropped).toBeUndefined()
          // ana's copy of a fix is absorbed by its daily aggregate: only svc gets anything per message.
          expect(result.outputs.map((o) => o.domain)).toEqual(want.forward.filter((d) => d !== 'ana'))
          if (want.forward.includes('ana')) anaFixes++
          for (const out of result.outputs) {
            expect(out.topic).toMatch(new RegExp(`^veil/${out.domain}/gps_tracker/[a-z2-7]{26}/location$`))
            const data = dataOf(out)
            expect(Object.keys(data).every((k) => ['_type', 'lat', 'lon', 'tst', 'batt', 'motion'].includes(k))).toBe(
              true,
            )
            expectCellCentre(data.lat, data.lon)
            expect((data.tst as number) % 60).toBe(0)
          }
          outputs.push(...result.outputs)
        }
        // The end of the input: both fixes fall in one day, so ana gets exactly one record (the day's mean battery,
        // in 10 % steps) if any fix had a battery level, and none otherwise.
        const drained = (await pipeline.tick(T0 + HOUR, true)).flatMap((r) => r.outputs)
        expect(drained.map((o) => o.domain)).toEqual(anaFixes > 0 ? ['ana'] : [])
        for (const out of drained) {
          expect(out.topic).toMatch(/^veil\/ana\/gps_tracker\/[a-z2-7]{26}\/location$/)
          const data = dataOf(out)
          expect(Object.keys(data).sort()).toEqual(['battery', 'window_s', 'window_start'])
          expect(data).toMatchObject({ window_s: 86400, window_start: Math.floor(T0 / 86_400_000) * 86_400 })
          expect((data.battery as number) % 10).toBe(0)
        }
        outputs.push(...drained)
        expectNoLeak(outputs, audit, SECRETS, coordinatesOf(body))
      } finally {
        remove()
      }
    })
  }

  it('never forwards a configuration dump with credentials, wherever it is published', async () => {
    const { pipeline, audit, remove } = gpsPipeline()
    try {
      const configuration = {
        _type: 'configuration',
        host: 'CanaryHost.example.org',
        port: 8883,
        username: 'CanaryUsername',
        password: 'CanaryPassword',
        deviceId: 'CanaryPhone',
        tid: 'cp',
        waypoints: [{ _type: 'waypoint', desc: 'CanaryRegion', lat: 52.52, lon: 13.405, rad: 100, tst: 1700000000 }],
      }
      const cases: [string, unknown, Drop][] = [
        [`${BASE}/dump`, configuration, NO_POLICY],
        [`${BASE}/cmd`, { _type: 'cmd', action: 'setConfiguration', configuration }, NO_POLICY],
        [BASE, configuration, INVALID],
        [`${BASE}/event`, configuration, INVALID],
        [`${BASE}/info`, configuration, INVALID],
      ]
      for (const [topic, message, want] of cases) {
        const result = await pipeline.process(topic, Buffer.from(JSON.stringify(message)), T0)
        expect(result).toMatchObject({ outputs: [], dropped: { stage: want.drop[0], reason: want.drop[1] } })
      }
      expectNoLeak([], audit, SECRETS, [])
    } finally {
      remove()
    }
  })

  it('never forwards a card with a name and a face, nor waypoints, status, steps or beacons', async () => {
    const { pipeline, audit, remove } = gpsPipeline()
    try {
      const card = { _type: 'card', name: 'CanaryFaceName', face: FACE, tid: 'cp' }
      const cases: [string, unknown, Drop][] = [
        [`${BASE}/info`, card, NO_POLICY],
        [BASE, card, INVALID],
        [
          `${BASE}/waypoints`,
          {
            _type: 'waypoints',
            waypoints: [
              { _type: 'waypoint', desc: 'CanaryRegion', lat: 52.52, lon: 13.405, rad: 100, tst: 1700000000 },
            ],
          },
          NO_POLICY,
        ],
        [
          `${BASE}/status`,
          { _type: 'status', android: { hib: 1, bo: 1, loc: 0, ps: 0, wifi: 1, model: 'CanaryDeviceModel' } },
          NO_POLICY,
        ],
        [
          `${BASE}/step`,
          { _type: 'steps', tst: 1700000000, steps: 4711, distance: 3200, from: 1699990000, to: 1700000000 },
          NO_POLICY,
        ],
        [
          `${BASE}/beacon`,
          {
            _type: 'beacon',
            uuid: 'CAFEBABE-0000-0000-0000-000000000000',
            major: 1,
            minor: 2,
            tst: 1700000000,
            rssi: -60,
          },
          NO_POLICY,
        ],
        [`${BASE}/info`, { _type: 'encrypted', data: 'TestCipherText' }, INVALID],
      ]
      for (const [topic, message, want] of cases) {
        const result = await pipeline.process(topic, Buffer.from(JSON.stringify(message)), T0)
        expect(result, topic).toMatchObject({ outputs: [], dropped: { stage: want.drop[0], reason: want.drop[1] } })
      }
      expectNoLeak([], audit, [...SECRETS, FACE.slice(0, 40), 'CAFEBABE'], [52.52, 13.405])
    } finally {
      remove()
    }
  })

  it('drops a last will on the base topic (documented); a transition leaves nothing for any domain', async () => {
    const { pipeline, audit, remove } = gpsPipeline()
    try {
      expect(await pipeline.process(BASE, Buffer.from('{"_type":"lwt","tst":1700000000}'), T0)).toMatchObject({
        outputs: [],
        dropped: { stage: 'validate', reason: 'invalid' },
      })
      // An enter or leave event says to the minute when someone leaves home (issue 13.8): no domain gets it, not
      // even without its region name, whether the region is a privacy zone or not.
      for (const event of ['enter', 'leave']) {
        const transition = {
          _type: 'transition',
          event,
          desc: 'CanaryRegion',
          rid: 'CanaryRegionId',
          lat: 52.5201,
          lon: 13.4052,
          acc: 10,
          t: 'c',
          tid: 'cp',
          tst: 1700000059,
          wtst: 1690000000,
        }
        const result = await pipeline.process(`${BASE}/event`, Buffer.from(JSON.stringify(transition)), T0)
        expect(result).toMatchObject({ outputs: [], dropped: { stage: 'filter', reason: 'no_policy' } })
        expectNoLeak(result.outputs, audit, [...SECRETS, 'CanaryRegionId'], [52.5201, 13.4052])
      }
    } finally {
      remove()
    }
  })

  it('forwards no fix from inside a privacy zone; ana still gets the battery class', async () => {
    const body = fixture('owntracks_android_location_deserialize_extended.json')
    const { pipeline, audit, remove } = gpsPipeline({ zones: [{ lat: 52.3153748, lon: 5.0408462 }] })
    try {
      const outputs: Output[] = []
      for (let i = 0; i < 4; i++) {
        const result = await pipeline.process(BASE, Buffer.from(JSON.stringify(body)), T0 + i * HOUR)
        // svc's copy is suppressed by the zone; ana's is absorbed by its daily aggregate: nothing per fix.
        expect(result.domainDrops).toEqual([
          { stage: 'filter', domain: 'svc', reason: 'suppressed' },
          { stage: 'filter', domain: 'ana', reason: 'suppressed' },
        ])
        expect(result.outputs).toEqual([])
      }
      // The day's one record: the zone hides the fixes from svc, not the battery from ana. batt 99 → mean 99,
      // rounded to the nearest 10 % step: 100 (the old per-fix bucket floored it to 90).
      const drained = (await pipeline.tick(T0 + 3 * HOUR, true)).flatMap((r) => r.outputs)
      expect(drained.map((o) => [o.domain, dataOf(o)])).toEqual([
        ['ana', { window_start: Math.floor(T0 / 86_400_000) * 86_400, window_s: 86400, battery: 100 }],
      ])
      outputs.push(...drained)
      expectNoLeak(outputs, audit, SECRETS, coordinatesOf(body))
    } finally {
      remove()
    }
  })
})
