// Property: no time leaves finer than its floor. Every shipped stream of every shipped policy whose allowlist lets a
// declared time field (x-veil-time) leave gets generated valid payloads with random times in the field's unit; each
// output's declared time values must be multiples of the policy's floor for that field in its unit (or of the
// domain's minimum, MIN_FLOOR_SECONDS, if the policy has none). Default variants, and the opt-ins that are not about
// exact times (health_consent, ...): precise_location and camera_exact_times may keep exact times and are left out.
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { builtinOperators } from '../../filters/operators/index.ts'
import { builtinProfiles } from '../../filters/profiles/index.ts'
import { sparkplugBytes } from '../../filters/profiles/sparkplug/testing.ts'
import { shippedPipeline, type ProfilePipeline } from '../../filters/profiles/testing.ts'
import { DEFAULT_POLICIES } from '../../gateway/src/config/config.ts'
import { Keyring } from '../../gateway/src/keys/keyring.ts'
import type { Domain } from '../../gateway/src/sdk/model.ts'
import { effectiveStreamPolicy, loadPolicySet } from '../../gateway/src/policy/load.ts'
import { MIN_FLOOR_SECONDS } from '../../gateway/src/policy/time-check.ts'
import { Classifier, type CompiledStream } from '../../gateway/src/streams/classifier.ts'
import type { TimeUnit } from '../../gateway/src/sdk/time.ts'
import { tempDir } from '../helpers/gateway.ts'

const EXACT_TIME_OPT_INS: ReadonlySet<string> = new Set(['precise_location', 'camera_exact_times'])
const classifier = new Classifier(builtinProfiles)
const dir = tempDir('veil-time-floor-')
afterAll(() => dir.remove())
const shipped = loadPolicySet(DEFAULT_POLICIES, {
  classifier,
  operators: builtinOperators,
  keyring: new Keyring(Buffer.alloc(32, 7), new Map()),
  dataDir: dir.path,
  variables: { privacy_zones: [], stay_zones: false },
})

/** Every opt-in switch of the shipped policies that does not grant exact times. */
const coarseOptIns = [
  ...new Set(
    [...shipped.documents.values()].flatMap((doc) =>
      Object.values(doc.domains).flatMap((s) =>
        Object.values(s?.streams ?? {}).flatMap((p) => Object.keys(p.opt_in ?? {})),
      ),
    ),
  ),
]
  .filter((name) => !EXACT_TIME_OPT_INS.has(name))
  .sort()

interface Target {
  readonly domain: Domain
  readonly stream: CompiledStream
  /** Every declared time field of the stream, with its unit and the floor (s) its output must be a multiple of. */
  readonly fields: readonly { path: string; unit: TimeUnit; seconds: number }[]
  /** The declared fields the allowlist lets leave: each must be seen in some output. */
  readonly leaving: readonly string[]
}

/** The (domain, stream) pairs that can forward a declared time field, with the floor the policy sets for each. */
function targets(optIn: ReadonlySet<string>): Target[] {
  const out: Target[] = []
  for (const doc of shipped.documents.values()) {
    for (const [domain, section] of Object.entries(doc.domains) as [
      Domain,
      { streams: Record<string, Parameters<typeof effectiveStreamPolicy>[0]> },
    ][]) {
      for (const [key, policy] of Object.entries(section.streams)) {
        const stream = classifier.streams.find((s) => s.key === key && s.category === doc.category)
        if (stream === undefined || stream.timeFields.size === 0) continue
        const variant = effectiveStreamPolicy(policy, optIn)
        const floors = (variant.operators ?? []).flatMap((op) => {
          const settings = op.time_floor as { paths?: string[]; seconds?: number } | undefined
          return settings === undefined ? [] : [{ paths: settings.paths ?? ['tst'], seconds: settings.seconds ?? 60 }]
        })
        const fields = [...stream.timeFields].map(([path, unit]) => ({
          path,
          unit,
          seconds: floors.find((f) => f.paths.includes(path))?.seconds ?? MIN_FLOOR_SECONDS[domain],
        }))
        const leaving = fields
          .map((f) => f.path)
          .filter(
            (p) =>
              variant.allow.includes(p) ||
              (p === 'metrics[].timestamp' &&
                variant.allow.includes('timestamp') &&
                ((variant.metrics as { allow?: string[] } | undefined)?.allow ?? []).length > 0),
          )
        if (leaving.length > 0) out.push({ domain, stream, fields, leaving })
      }
    }
  }
  return out
}

// Times in each unit, from 1970 to 2100. Frigate's are floats; the others integers or ISO strings with and without
// a zone (Tasmota's and the scale's local times have none).
const END_S = 4_102_444_800
const epochS = fc.integer({ min: 1, max: END_S })
const floatS = fc.oneof(epochS, fc.double({ min: 1, max: END_S, noNaN: true, noDefaultInfinity: true }))
const epochMs = fc.integer({ min: 1, max: END_S * 1000 })
const iso = fc
  .tuple(
    fc.integer({ min: Date.UTC(1971, 0, 1), max: END_S * 1000 }),
    fc.constantFrom('Z', '+00:00', '+02:00', '-05:30', '+0545', ''),
    fc.boolean(),
  )
  .map(([ms, zone, fraction]) => {
    const offsetMin =
      zone === 'Z' || zone === ''
        ? 0
        : (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(-2)))
    const wall = new Date(ms + offsetMin * 60_000).toISOString()
    return `${fraction ? wall.slice(0, 23) : wall.slice(0, 19)}${zone}`
  })
const id = fc.stringMatching(/^[a-z][a-z0-9]{5,11}$/)

type Message = { topic: string; payload: Buffer | Record<string, unknown> }
/** Valid messages of each stream key, the last of which can leave with its times (earlier ones set up state). */
const GENERATORS: Record<string, fc.Arbitrary<Message[]>> = {
  'frigate/events': fc.record({ id, start: floatS, end: floatS, frame: floatS }).map(({ id, start, end, frame }) => [
    {
      topic: 'frigate/events',
      payload: {
        type: 'end',
        after: {
          id: 'e1',
          camera: id,
          label: 'person',
          top_score: 0.8,
          start_time: start,
          end_time: end,
          frame_time: frame,
          has_clip: true,
        },
      },
    },
  ]),
  'frigate/reviews': fc.record({ id, start: floatS, end: floatS }).map(({ id, start, end }) => [
    {
      topic: 'frigate/reviews',
      payload: {
        type: 'end',
        after: {
          id: 'r1',
          camera: id,
          severity: 'alert',
          start_time: start,
          end_time: end,
          data: { objects: ['person'] },
        },
      },
    },
  ]),
  'canonical/event': fc
    .record({ id, ts: epochS })
    .map(({ id, ts }) => [
      { topic: `devices/camera/${id}/event`, payload: { ts, type: 'start', label: 'person', score: 0.71 } },
    ]),
  'owntracks/location': fc.record({ id, tst: epochS }).map(({ id, tst }) => [
    {
      topic: `owntracks/${id}/phone`,
      payload: { _type: 'location', lat: 48.137, lon: 11.575, tst, vel: 4, batt: 80 },
    },
  ]),
  'canonical/location': fc.record({ id, ts: epochS }).map(({ id, ts }) => [
    {
      topic: `devices/gps_tracker/${id}/location`,
      payload: { ts, lat: 48.137, lon: 11.575, speed_kmh: 4, battery_pct: 80 },
    },
  ]),
  'gpsd/tpv': fc
    .record({ id, time: iso })
    .map(({ id, time }) => [
      { topic: `gpsd/${id}/tpv`, payload: { class: 'TPV', mode: 3, time, lat: 48.137, lon: 11.575, speed: 1.2 } },
    ]),
  'traccar/location': fc.record({ id, timestamp: iso }).map(({ id, timestamp }) => [
    {
      topic: 'traccar/osmand',
      payload: {
        device_id: id,
        location: { timestamp, coords: { latitude: 48.137, longitude: 11.575, speed: 1.2 }, battery: { level: 0.8 } },
      },
    },
  ]),
  'sparkplug/node': fc.record({ id, birth: epochMs, death: epochMs }).map(({ id, birth, death }) => [
    {
      topic: `spBv1.0/G/NBIRTH/${id}`,
      payload: sparkplugBytes({
        timestamp: birth,
        seq: 0,
        metrics: [{ name: 'bdSeq', datatype: 8, value: 3, timestamp: birth }],
      }),
    },
    {
      topic: `spBv1.0/G/NDEATH/${id}`,
      payload: sparkplugBytes({
        timestamp: death,
        metrics: [{ name: 'bdSeq', datatype: 8, value: 3, timestamp: death }],
      }),
    },
  ]),
  'sparkplug/device': fc.record({ id, birth: epochMs, death: epochMs }).map(({ id, birth, death }) => [
    {
      topic: `spBv1.0/G/NBIRTH/${id}`,
      payload: sparkplugBytes({ timestamp: birth, seq: 0, metrics: [{ name: 'bdSeq', datatype: 8, value: 3 }] }),
    },
    {
      topic: `spBv1.0/G/DBIRTH/${id}/meter`,
      payload: sparkplugBytes({
        timestamp: birth,
        seq: 1,
        metrics: [{ name: 'Energy', datatype: 10, value: 1.5, timestamp: birth }],
      }),
    },
    { topic: `spBv1.0/G/DDEATH/${id}/meter`, payload: sparkplugBytes({ timestamp: death, seq: 2, metrics: [] }) },
  ]),
  'miscale/weight': fc
    .record({ id, timestamp: iso })
    .map(({ id, timestamp }) => [
      { topic: `miscale/${id}/weight`, payload: { weight: 72.35, weight_unit: 'kg', bmi: 23.61, timestamp } },
    ]),
  'canonical/measurement': fc
    .record({ id, ts: epochS })
    .map(({ id, ts }) => [
      { topic: `devices/body_scale/${id}/measurement`, payload: { ts, weight_kg: 72.35, battery_pct: 81 } },
    ]),
}

/** The values at a path in allowlist syntax (`a.b`, `items[].ts`, `$`). */
function valuesAt(doc: unknown, path: string): unknown[] {
  if (path === '$') return [doc]
  let current: unknown[] = [doc]
  for (const segment of path.split('.')) {
    const array = segment.endsWith('[]')
    const key = array ? segment.slice(0, -2) : segment
    current = current.flatMap((v) =>
      v !== null && typeof v === 'object' && !Array.isArray(v) && Object.hasOwn(v, key)
        ? [(v as Record<string, unknown>)[key]]
        : [],
    )
    if (array) current = current.flatMap((v) => (Array.isArray(v) ? v : []))
  }
  return current
}

/** Why a value is not a multiple of `seconds` in its unit, or undefined if it is. */
function finerThanFloor(value: unknown, unit: TimeUnit, seconds: number): string | undefined {
  if (unit === 'iso') {
    if (typeof value !== 'string') return `${JSON.stringify(value)} is not an ISO string`
    const ms = Date.parse(/(Z|[+-]\d{2}:?\d{2})$/i.test(value) ? value : `${value}Z`)
    return Number.isFinite(ms) && ms % (seconds * 1000) === 0 ? undefined : `${value} is not on a ${seconds} s boundary`
  }
  const step = unit === 'epoch_s' ? seconds : seconds * 1000
  return typeof value === 'number' && Number.isFinite(value) && value % step === 0
    ? undefined
    : `${JSON.stringify(value)} is not a multiple of ${step} (${unit})`
}

describe('property: no declared time leaves finer than its floor', () => {
  const sets: string[][] = [[], coarseOptIns]
  it('checks the default variants and the opt-ins that do not grant exact times', () => {
    expect(coarseOptIns).toEqual(expect.arrayContaining(['health_consent']))
  })

  for (const optIn of sets) {
    const label = optIn.length === 0 ? 'default variants' : `opt-ins ${optIn.join(', ')}`
    it(`every shipped stream that can forward a time (${label})`, async () => {
      const all = targets(new Set(optIn))
      expect(all.length).toBeGreaterThan(0)
      const keys = [...new Set(all.map((t) => t.stream.key))]
      // A stream that can forward a time but has no generator would go untested: add one above.
      expect(keys.filter((k) => GENERATORS[k] === undefined)).toEqual([])
      const p: ProfilePipeline = shippedPipeline(optIn)
      const seen = new Map<string, number>()
      try {
        let clock = Date.UTC(2026, 2, 1, 6)
        for (const key of keys) {
          const forKey = all.filter((t) => t.stream.key === key)
          await fc.assert(
            fc.asyncProperty(GENERATORS[key] as fc.Arbitrary<Message[]>, async (messages) => {
              let last: Awaited<ReturnType<typeof p.send>> | undefined
              for (const m of messages) last = await p.send((clock += 1000), m.topic, m.payload)
              for (const target of forKey) {
                for (const output of last?.outputs ?? []) {
                  if (output.domain !== target.domain) continue
                  const data = (JSON.parse(output.payload.toString('utf8')) as { data: unknown }).data
                  for (const field of target.fields) {
                    for (const value of valuesAt(data, field.path)) {
                      const problem = finerThanFloor(value, field.unit, field.seconds)
                      expect(problem, `${target.domain} ${key} ${field.path}`).toBeUndefined()
                      const k = `${target.domain} ${key} ${field.path}`
                      seen.set(k, (seen.get(k) ?? 0) + 1)
                    }
                  }
                }
              }
            }),
            { seed: 1305, numRuns: 150 },
          )
        }
      } finally {
        p.close()
      }
      // Every time the policies let leave was seen in outputs: the property did not pass by forwarding nothing.
      const unseen = all
        .flatMap((t) => t.leaving.map((path) => `${t.domain} ${t.stream.key} ${path}`))
        .filter((k) => (seen.get(k) ?? 0) === 0)
      expect(unseen).toEqual([])
    })
  }
})
