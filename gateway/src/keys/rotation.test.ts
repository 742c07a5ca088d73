import { createHmac, hkdfSync } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { keyPoliciesOf, resolveConfig } from '../config/config.ts'
import type { Category, Domain } from '../sdk/model.ts'
import { base32 } from '../sdk/keyring.ts'
import { Keyring } from './keyring.ts'
import { DAY_S, resolveRotation } from './rotation.ts'
import { builtinPlugins } from '../builtins.ts'

const DAY_MS = DAY_S * 1000
const HOUR_MS = 3_600_000
const MINUTE_MS = 60_000
const T0 = Date.UTC(2026, 0, 1)
const MASTER = Buffer.alloc(32, 0x5a)

/** A keyring with the configuration's defaults (no configuration file at all). */
function defaultRing(master = MASTER): Keyring {
  return new Keyring(
    master,
    keyPoliciesOf(resolveConfig(builtinPlugins, { dataDir: '/nonexistent/veil-rotation-test' })),
  )
}

const scope = (domain: Domain, category: Category, deviceId: string, nowMs: number) => ({
  domain,
  category,
  deviceId,
  nowMs,
})
const route = (k: Keyring, domain: Domain, category: Category, deviceId: string, nowMs: number) =>
  k.pseudonym(scope(domain, category, deviceId, nowMs), category, deviceId)

/** The device's first rotation moment after `from`. */
function rotationAfter(k: Keyring, domain: Domain, category: Category, deviceId: string, from: number): number {
  const epochMs = k.scheduleOf(domain, category).epochSeconds * 1000
  const phase = k.phaseMs(domain, category, deviceId)
  return (Math.floor((from - phase) / epochMs) + 1) * epochMs + phase
}

/** One device's stream (a copy every `stepMs`) across its rotation moment R: what leaves, and when. */
function streamAround(k: Keyring, domain: Domain, category: Category, deviceId: string, stepMs: number) {
  const r = rotationAfter(k, domain, category, deviceId, T0 + 3 * DAY_MS)
  const sent: { t: number; pseudonym: string }[] = []
  let silent = 0
  // Half an epoch on either side (at most two days), on a grid offset from R by an arbitrary amount.
  const span = Math.min(2 * DAY_MS, (k.scheduleOf(domain, category).epochSeconds * 1000) / 2)
  for (let t = r - span + 17_321; t < r + span; t += stepMs) {
    const p = route(k, domain, category, deviceId, t)
    if (p === undefined) silent++
    else sent.push({ t, pseudonym: p })
  }
  return { r, sent, silent }
}

describe('rotation defaults (privacy.md §1: SVC ∞, ANA 30 d, GPS-ANA 1 d)', () => {
  it('rotate ana and 3p every 30 days with a 26 h gap, location categories daily with a 2 h gap, never svc', () => {
    const { schedules, problems } = resolveRotation({})
    expect(problems).toEqual([])
    for (const d of ['ana', '3p'] as const) {
      expect(schedules.get(d)?.get('smart_plug')).toEqual({ epochSeconds: 30 * DAY_S, gapSeconds: 26 * 3600 })
      expect(schedules.get(d)?.get('camera')).toEqual({ epochSeconds: 30 * DAY_S, gapSeconds: 26 * 3600 })
      expect(schedules.get(d)?.get('gps_tracker')).toEqual({ epochSeconds: DAY_S, gapSeconds: 2 * 3600 })
    }
    for (const c of ['smart_plug', 'gps_tracker'] as const)
      expect(schedules.get('svc')?.get(c)).toEqual({ epochSeconds: 0, gapSeconds: 0 })
  })

  it('a configured domain epoch applies to its categories, a location category stays at most daily, a category section overrides', () => {
    const { schedules } = resolveRotation({
      ana: { epochSeconds: 7 * DAY_S, categories: { camera: { epochSeconds: 3600, rotationGapSeconds: 600 } } },
      svc: { epochSeconds: 0 },
    })
    expect(schedules.get('ana')?.get('smart_plug')).toEqual({ epochSeconds: 7 * DAY_S, gapSeconds: 14 * 3600 })
    expect(schedules.get('ana')?.get('gps_tracker')).toEqual({ epochSeconds: DAY_S, gapSeconds: 2 * 3600 })
    expect(schedules.get('ana')?.get('camera')).toEqual({ epochSeconds: 3600, gapSeconds: 600 })
    expect(schedules.get('svc')?.get('gps_tracker')).toEqual({ epochSeconds: 0, gapSeconds: 0 })
  })

  it('refuse a gap longer than half the epoch, and a gap on a domain that never rotates, naming the path', () => {
    expect(resolveRotation({ ana: { epochSeconds: DAY_S, rotationGapSeconds: DAY_S } }).problems).toEqual([
      { path: '/domains/ana/rotationGapSeconds', problem: '86400 s must not exceed half of the epoch (86400 s)' },
    ])
    expect(
      resolveRotation({ '3p': { categories: { gps_tracker: { rotationGapSeconds: 50_000 } } } }).problems.map(
        (p) => p.path,
      ),
    ).toEqual(['/domains/3p/categories/gps_tracker/rotationGapSeconds'])
    expect(resolveRotation({ svc: { rotationGapSeconds: 60 } }).problems.map((p) => p.path)).toEqual([
      '/domains/svc/rotationGapSeconds',
    ])
  })

  it("ana's pseudonyms on day 0, 31 and 400 differ under the default configuration; svc's do not", () => {
    const k = defaultRing()
    for (const [category, device] of [
      ['smart_plug', 'tasmota_0329f7'],
      ['gps_tracker', 'alice/phone'],
      ['camera', 'front_door'],
    ] as const) {
      const on = (domain: Domain, day: number) => {
        // The first live hour of that day: a device may be inside its gap at midnight.
        for (let h = 0; h < 27; h++) {
          const p = route(k, domain, category, device, T0 + day * DAY_MS + h * HOUR_MS)
          if (p !== undefined) return p
        }
        throw new Error(`${domain} silent for 27 h`)
      }
      const ana = [0, 31, 400].map((d) => on('ana', d))
      expect(new Set(ana).size).toBe(3)
      expect(new Set([0, 31, 400].map((d) => on('3p', d))).size).toBe(3)
      expect(new Set([0, 31, 400].map((d) => on('svc', d))).size).toBe(1)
    }
  })
})

describe('a device stream across its rotation moment', () => {
  for (const [label, category, stepMs] of [
    ['ana smart plug, a copy every minute', 'smart_plug', MINUTE_MS],
    ['ana smart plug, a copy every hour', 'smart_plug', HOUR_MS],
    ['ana gps tracker (1-day epoch), a copy every minute', 'gps_tracker', MINUTE_MS],
  ] as const) {
    it(`${label}: nothing leaves within the gap and the two epochs share no pseudonym`, () => {
      const k = defaultRing()
      const gapMs = k.scheduleOf('ana', category).gapSeconds * 1000
      const { r, sent, silent } = streamAround(k, 'ana', category, 'tasmota_0329f7', stepMs)
      const before = sent.filter((s) => s.t < r)
      const after = sent.filter((s) => s.t >= r)
      // No message from either side within the gap, centred on R.
      expect(sent.every((s) => s.t < r - gapMs / 2 || s.t >= r + gapMs / 2)).toBe(true)
      expect(silent).toBeGreaterThanOrEqual(Math.floor(gapMs / stepMs))
      // The hole between the last old copy and the first new one is at least the gap, longer than the spacing.
      const lastOld = before.at(-1)
      const firstNew = after[0]
      expect(lastOld).toBeDefined()
      expect(firstNew).toBeDefined()
      expect((firstNew?.t ?? 0) - (lastOld?.t ?? 0)).toBeGreaterThanOrEqual(gapMs)
      expect(gapMs).toBeGreaterThan(stepMs)
      // One pseudonym per side, different from each other.
      const old = new Set(before.map((s) => s.pseudonym))
      const now = new Set(after.map((s) => s.pseudonym))
      expect(old.size).toBe(1)
      expect(now.size).toBe(1)
      expect([...old].some((p) => now.has(p))).toBe(false)
    })
  }

  it('without the gap (the old behaviour) the last old and the first new copy are one spacing apart', () => {
    // Shows the bound above fails when the channel is open: rotationGapSeconds 0 joins the epochs by continuity.
    const k = new Keyring(MASTER, new Map([['ana', { epochSeconds: 30 * DAY_S, rotationGapSeconds: 0 }]]))
    const { r, sent } = streamAround(k, 'ana', 'smart_plug', 'tasmota_0329f7', MINUTE_MS)
    const lastOld = sent.filter((s) => s.t < r).at(-1)
    const firstNew = sent.find((s) => s.t >= r)
    expect((firstNew?.t ?? 0) - (lastOld?.t ?? 0)).toBe(MINUTE_MS)
  })

  it("payload ids (hmac_pseudo under the device's scope) switch at the same instant as the topic's pseudonym", () => {
    const k = defaultRing()
    const r = rotationAfter(k, 'ana', 'camera', 'nvr', T0)
    const gapMs = k.scheduleOf('ana', 'camera').gapSeconds * 1000
    for (const t of [r - gapMs / 2 - 1, r + gapMs / 2]) {
      const s = scope('ana', 'camera', 'nvr', t)
      const topic = k.pseudonym(s, 'camera', 'nvr')
      const label = k.pseudonym(s, 'camera_name', 'front_door')
      expect(topic).toBeDefined()
      expect(label).toBeDefined()
      // Both are under the device's epoch at t: a fresh keyring in that epoch agrees on both.
      const fresh = defaultRing()
      expect(fresh.pseudonym(s, 'camera_name', 'front_door')).toBe(label)
    }
    expect(k.pseudonym(scope('ana', 'camera', 'nvr', r), 'camera_name', 'front_door')).toBeUndefined()
    const before = k.pseudonym(scope('ana', 'camera', 'nvr', r - gapMs), 'camera_name', 'front_door')
    const after = k.pseudonym(scope('ana', 'camera', 'nvr', r + gapMs), 'camera_name', 'front_door')
    expect(before).not.toBe(after)
  })
})

describe('rotation phases', () => {
  it('two devices of one gateway rotate at different moments, spread over the epoch', () => {
    const k = defaultRing()
    const epochMs = 30 * DAY_MS
    const phases = Array.from({ length: 400 }, (_, i) => k.phaseMs('ana', 'smart_plug', `plug-${i}`))
    expect(phases[0]).not.toBe(phases[1])
    expect(new Set(phases).size).toBe(400)
    // Each tenth of the epoch holds some of the 400 moments (expected 40; a shared instant would put all in one).
    const tenths = new Array<number>(10).fill(0)
    for (const p of phases) {
      expect(p).toBeGreaterThanOrEqual(0)
      expect(p).toBeLessThan(epochMs)
      tenths[Math.floor((p / epochMs) * 10)] = (tenths[Math.floor((p / epochMs) * 10)] ?? 0) + 1
    }
    for (const n of tenths) expect(n).toBeGreaterThan(20)
    // Two devices: at the first one's rotation moment the second keeps its pseudonym.
    const r = rotationAfter(k, 'ana', 'smart_plug', 'plug-0', T0)
    const gapMs = k.scheduleOf('ana', 'smart_plug').gapSeconds * 1000
    expect(route(k, 'ana', 'smart_plug', 'plug-0', r)).toBeUndefined()
    const other = Math.abs((phases[1] ?? 0) - (phases[0] ?? 0)) > gapMs ? 'plug-1' : 'plug-2'
    expect(route(k, 'ana', 'smart_plug', other, r)).toBeDefined()
  })

  it('property: a phase is stable across Keyring instances with one master key and differs across master keys', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.constantFrom<Category>('smart_plug', 'gps_tracker'),
        (a, b, id, category) => {
          fc.pre(!Buffer.from(a).equals(Buffer.from(b)))
          const phase = defaultRing(Buffer.from(a)).phaseMs('ana', category, id)
          expect(defaultRing(Buffer.from(a)).phaseMs('ana', category, id)).toBe(phase)
          expect(defaultRing(Buffer.from(b)).phaseMs('ana', category, id)).not.toBe(phase)
        },
      ),
      { seed: 13, numRuns: 200 },
    )
  })

  it('the pseudonym depends on the epoch index alone, not on the phase: HMAC under K[ana, period, n]', () => {
    const k = defaultRing()
    for (const device of ['plug-a', 'plug-b', 'plug-c']) {
      const r = rotationAfter(k, 'ana', 'smart_plug', device, T0)
      const t = r + 2 * DAY_MS
      const n = k.epochOf(scope('ana', 'smart_plug', device, t))
      expect(n).toBe(Math.round((r - k.phaseMs('ana', 'smart_plug', device)) / (30 * DAY_MS)))
      const key = Buffer.from(
        hkdfSync(
          'sha256',
          MASTER,
          Buffer.from('veil/pseudonym/v1'),
          Buffer.from(`domain=ana;period=${30 * DAY_S};epoch=${n}`),
          32,
        ),
      )
      const expected = base32(
        createHmac('sha256', key).update('smart_plug').update('\u0000').update(device).digest().subarray(0, 16),
      )
      expect(route(k, 'ana', 'smart_plug', device, t)).toBe(expected)
    }
  })

  it('old epoch keys are destroyed: a year of daily rotations holds only the epochs devices are in, and the one before', () => {
    const k = defaultRing()
    const devices = ['alice/phone', 'bob/phone', 'carol/phone']
    for (let t = T0; t < T0 + 365 * DAY_MS; t += 6 * HOUR_MS) {
      for (const device of devices) route(k, 'ana', 'gps_tracker', device, t)
      const held = k.heldEpochs('ana', 'gps_tracker')
      const newest = Math.max(...devices.map((d) => Math.floor((t - k.phaseMs('ana', 'gps_tracker', d)) / DAY_MS)))
      expect(held.length).toBeLessThanOrEqual(3)
      // An epoch's key goes when a device enters the epoch after next: at most one epoch after its last use.
      expect(Math.min(...held)).toBeGreaterThanOrEqual(newest - 1)
      expect(Math.min(...held)).toBeGreaterThanOrEqual(Math.floor(t / DAY_MS) - 2)
    }
  })
})
