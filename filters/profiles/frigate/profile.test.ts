import { afterEach, describe, expect, it } from 'vitest'
import { fixture, leaks, shippedPipeline, type Forwarded, type ProfilePipeline } from '../testing.ts'

const T0 = Date.UTC(2026, 2, 1, 7, 42, 13)
const CAMERA = 'front_door_cam'
const JPEG_B64 = Buffer.concat([
  Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]),
  Buffer.from('JFIF face crop of a neighbour'),
]).toString('base64')

/** A review item as Frigate 0.14+ publishes it, with a recognised name, zone names and a thumbnail path. */
function review(type: 'new' | 'update' | 'end', endTime: number | null): Record<string, unknown> {
  const item = (end: number | null) => ({
    id: '1772350933.308396-fqk5ka',
    camera: CAMERA,
    start_time: 1772350933.308396,
    end_time: end,
    severity: 'alert',
    thumb_path: `/media/frigate/clips/review/thumb-${CAMERA}-1772350933.308396-fqk5ka.webp`,
    data: {
      detections: ['1772350932.947436-g92ztx'],
      objects: ['person', 'car'],
      sub_labels: ['John Smith'],
      zones: ['driveway', 'front_yard'],
      audio: ['speech'],
    },
  })
  return { type, before: item(null), after: item(endTime) }
}

const lpr = {
  type: 'lpr',
  id: '1772350932.947436-g92ztx',
  camera: CAMERA,
  timestamp: 1772350940.1,
  name: 'Johns car',
  plate: 'CAN4RY1',
  plate_box: [10, 20, 110, 60],
  score: 0.91,
}

const IDENTIFIERS = [
  CAMERA,
  'John Smith',
  'John',
  'Johns car',
  'CAN4RY1',
  'driveway',
  'front_yard',
  'car_trigger',
  'fqk5ka',
  'g92ztx',
  'mxklsc',
  'thumb-',
  JPEG_B64,
  'The car is a red sedan moving away from the camera.',
  'helmet_detector',
  'delivery_person',
]

function streamsOf(forwarded: readonly Forwarded[], domain: string): Set<string> {
  return new Set(forwarded.filter((f) => f.domain === domain).map((f) => f.stream))
}

describe('frigate through the shipped camera policy', () => {
  let p: ProfilePipeline
  afterEach(() => p.close())

  it('forwards review severity and minute-floored times; no label (person-verified means a face was recognised), camera, zone, name, thumbnail or enrichment result', async () => {
    p = shippedPipeline()
    await p.send(T0, 'frigate/reviews', review('new', null))
    await p.send(T0 + 60_000, 'frigate/reviews', review('end', 1772350993.72))
    for (const f of ['face', 'description', 'classification_sublabel', 'classification_attribute']) {
      await p.send(T0, 'frigate/tracked_object_update', fixture(`camera/frigate_tracked_object_update_${f}.json`))
    }
    await p.send(T0, 'frigate/tracked_object_update', lpr)
    await p.send(T0, 'frigate/triggers', fixture('camera/frigate_triggers.json'))
    await p.send(T0, `frigate/${CAMERA}/motion`, 'ON')
    await p.send(T0, `frigate/${CAMERA}/all`, '2')
    await p.send(T0, `frigate/${CAMERA}/person`, '1')
    await p.send(T0, 'frigate/driveway/car', '1')
    await p.send(T0, `frigate/${CAMERA}/person/snapshot`, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]))
    // Close every open window: whatever scheduled operator holds anything must release it now.
    await p.tick(T0 + 60_000, true)

    const reviews = p.forwarded.filter((f) => f.stream === 'reviews')
    expect(reviews.filter((f) => f.domain === 'svc').map((f) => f.data)).toEqual([
      { type: 'new', after: { severity: 'alert', start_time: 1772350920 } },
      { type: 'end', after: { severity: 'alert', start_time: 1772350920, end_time: 1772350980 } },
    ])
    // Reviews are the same events as frigate/events again: ana gets its hourly counts from events only, and
    // nothing at all from reviews, not even after the drain.
    expect(reviews.filter((f) => f.domain === 'ana')).toEqual([])
    // One camera, one pseudonym.
    expect(new Set(reviews.map((f) => f.topic)).size).toBe(1)

    // Enrichment results, triggers, motion, counts and snapshots: recognised, never forwarded by default.
    expect(streamsOf(p.forwarded, 'svc')).toEqual(new Set(['reviews']))
    expect(streamsOf(p.forwarded, 'ana')).toEqual(new Set())
    const byStream = (s: string) => p.results.filter((r) => r.stream === s).map((r) => r.dropped)
    // The docs' description update names no camera: no device, so it is invalid; every other one has no policy.
    expect(byStream('tracked_object_update')).toEqual([
      { stage: 'filter', reason: 'no_policy' },
      { stage: 'validate', reason: 'invalid' },
      { stage: 'filter', reason: 'no_policy' },
      { stage: 'filter', reason: 'no_policy' },
      { stage: 'filter', reason: 'no_policy' },
    ])
    for (const s of ['triggers', 'motion', 'all_count', 'object_count'])
      for (const d of byStream(s)) expect(d, s).toEqual({ stage: 'filter', reason: 'no_policy' })

    for (const f of p.forwarded) {
      expect(f.topic).toMatch(/^veil\/(svc|ana)\/camera\/[a-z2-7]{26}\/reviews$/)
      expect(f.text).not.toMatch(/box|zone|sub_label|thumb|camera|name|plate|description|verified/)
    }
    expect(leaks(p.forwarded, IDENTIFIERS, p.audit)).toEqual([])
  })

  it('tells motion from counts on frigate/<camera>/<level>: counts are integers, motion is ON or OFF', async () => {
    p = shippedPipeline()
    const cases: [string, string, string, string | undefined][] = [
      [`frigate/${CAMERA}/motion`, 'OFF', 'motion', undefined],
      [`frigate/${CAMERA}/motion`, '1', 'motion', 'validate'],
      [`frigate/${CAMERA}/all`, '0', 'all_count', undefined],
      [`frigate/${CAMERA}/person`, '3', 'object_count', undefined],
      [`frigate/${CAMERA}/person`, 'ON', 'object_count', 'decode'],
      [`frigate/${CAMERA}/person`, '1.5', 'object_count', 'validate'],
      [`frigate/${CAMERA}/person`, '-1', 'object_count', 'validate'],
    ]
    for (const [topic, payload, stream, stage] of cases) {
      const r = await p.send(T0, topic, payload)
      expect(r.stream, `${topic} ${payload}`).toBe(stream)
      expect(r.dropped?.stage ?? undefined, `${topic} ${payload}`).toBe(stage ?? 'filter')
    }
    expect(p.forwarded).toEqual([])
  })

  it('forwards the instance-level availability and coarse stats to svc under one fixed pseudonym', async () => {
    p = shippedPipeline()
    await p.send(T0, 'frigate/available', 'online')
    await p.send(T0, 'frigate/stats', {
      service: {
        uptime: 200_123,
        version: '0.14.1-f4f3cfa',
        latest_version: '0.14.1',
        last_updated: 1772350933,
        storage: { '/media/frigate/recordings': { used: 1 } },
      },
      cameras: { [CAMERA]: { camera_fps: 5, pid: 321 } },
      detectors: { coral: { inference_speed: 8.1 } },
    })
    expect((await p.send(T0, 'frigate/available', 'Online')).dropped).toEqual({ stage: 'validate', reason: 'invalid' })
    expect(p.forwarded.map((f) => [f.domain, f.stream, f.data])).toEqual([
      ['svc', 'available', 'online'],
      ['svc', 'stats', { service: { uptime: 172_800, version: '0.14.1-f4f3cfa' } }],
    ])
    expect(new Set(p.forwarded.map((f) => f.topic.split('/')[3])).size).toBe(1)
    expect(leaks(p.forwarded, [...IDENTIFIERS, 'frigate/recordings', 'coral'], p.audit)).toEqual([])
  })

  it('keeps exact review times only with the camera_exact_times opt-in', async () => {
    p = shippedPipeline(['camera_exact_times'])
    await p.send(T0, 'frigate/reviews', review('end', 1772350993.72))
    expect(p.forwarded.find((f) => f.domain === 'svc')?.data).toEqual({
      type: 'end',
      after: { severity: 'alert', start_time: 1772350933.308396, end_time: 1772350993.72 },
    })
    expect(leaks(p.forwarded, IDENTIFIERS, p.audit)).toEqual([])
  })
})
