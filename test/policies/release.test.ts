import { describe, expect, it } from 'vitest'
import { builtinOperators } from '../../filters/operators/index.ts'
import { builtinProfiles } from '../../filters/profiles/index.ts'
import { DEFAULT_POLICIES } from '../../gateway/src/config/config.ts'
import { ReleaseSchedule } from '../../gateway/src/forward/release.ts'
import { Keyring } from '../../gateway/src/keys/keyring.ts'
import { ConsentBook } from '../../gateway/src/consent/book.ts'
import type { Output } from '../../gateway/src/pipeline/envelope.ts'
import { effectiveStreamPolicy, loadPolicySet, selectPolicy } from '../../gateway/src/policy/load.ts'
import { Classifier } from '../../gateway/src/streams/classifier.ts'
import { mulberry32 } from '../../simulators/random.ts'
import { tempDir } from '../helpers/gateway.ts'

/** svc streams released as they happen, because a person needs the alert (filters/policies/camera.yaml). */
const ALERTS = new Set(['frigate/events', 'frigate/reviews', 'canonical/event'])
const OPT_INS = [[], ['health_consent'], ['energy_15min'], ['camera_exact_times']]

function shipped(optIn: readonly string[]) {
  const dir = tempDir()
  const classifier = new Classifier(builtinProfiles)
  const set = loadPolicySet(DEFAULT_POLICIES, {
    classifier,
    operators: builtinOperators,
    keyring: new Keyring(Buffer.alloc(32, 3), new Map()),
    dataDir: dir.path,
    variables: { stay_zones: false },
  })
  dir.remove()
  const rows: { key: string; domain: string; releaseMs: number; scheduled: boolean; floorS: number }[] = []
  for (const [stream, entries] of set.byStream) {
    for (const entry of entries) {
      const policy = selectPolicy(entry, new Set(optIn))
      if (policy === undefined) continue
      const doc = set.documents.get(stream.category)?.domains[policy.domain]?.streams[stream.key]
      if (doc === undefined) throw new Error(`no document for ${stream.key}`)
      const operators = effectiveStreamPolicy(doc, new Set(optIn)).operators ?? []
      const floors = operators
        .map((o) => (o.time_floor as { seconds?: number } | undefined)?.seconds)
        .filter((s): s is number => s !== undefined)
      rows.push({
        key: stream.key,
        domain: policy.domain,
        releaseMs: policy.releaseMs,
        scheduled: policy.scheduled !== undefined,
        floorS: Math.max(0, ...floors),
      })
    }
  }
  return rows
}

describe('release schedules of the shipped policies (issue 13 part 3)', () => {
  it('ana and 3p get only scheduled records; a svc stream that floors times is released at the floor, alerts at once', () => {
    for (const optIn of OPT_INS) {
      const rows = shipped(optIn)
      expect(rows.length).toBeGreaterThan(20)
      for (const row of rows) {
        const where = `${row.domain} ${row.key} (${optIn.join(',') || 'defaults'})`
        if (row.domain !== 'svc') {
          expect(row.scheduled, where).toBe(true)
          continue
        }
        if (row.scheduled) continue
        if (ALERTS.has(row.key)) expect(row.releaseMs, where).toBe(0)
        else expect(row.releaseMs, where).toBe(row.floorS * 1000)
      }
    }
  })

  it('the arrival time of a batched copy tells only its floored time: the boundary after it, plus under 3 s that do not depend on it', () => {
    const rows = shipped([]).filter((r) => r.releaseMs > 0)
    expect(rows.map((r) => r.key)).toContain('owntracks/location')
    const random = mulberry32(11)
    for (const row of rows) {
      const schedule = new ReleaseSchedule(random)
      const T0 = Date.UTC(2025, 0, 1)
      const sent: number[] = []
      for (let i = 0; i < 300; i++) sent.push(T0 + Math.floor(random() * 6 * 3_600_000))
      sent.sort((a, b) => a - b)
      const arrived = new Map<number, number>()
      let next = 0
      // The gateway's one-second clock.
      for (let now = T0; now <= T0 + 7 * 3_600_000 && arrived.size < sent.length; now += 1000) {
        while (next < sent.length && (sent[next] as number) <= now) {
          const out: Output = {
            domain: 'svc',
            doc: {},
            payload: Buffer.alloc(0),
            topic: String(next),
            contentType: '',
            releaseMs: row.releaseMs,
            subject: ConsentBook.household().household,
            purposeBit: 0,
          }
          schedule.hold({ out, category: 'gps_tracker', version: 'v' }, sent[next] as number)
          next++
        }
        for (const held of schedule.due(now)) arrived.set(Number(held.out.topic), now)
      }
      expect(arrived.size, row.key).toBe(sent.length)
      for (const [i, at] of arrived) {
        const t = sent[i] as number
        const boundary = (Math.floor(t / row.releaseMs) + 1) * row.releaseMs
        expect(at - boundary, row.key).toBeGreaterThanOrEqual(0)
        expect(at - boundary, row.key).toBeLessThan(3000)
      }
    }
  })
})
