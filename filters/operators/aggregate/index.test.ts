import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type Emission, isScheduled, SUPPRESS } from '#veil/sdk'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import { MAX_RELEASE_DELAY_MS, MIN_RELEASE_DELAY_MS } from '../schedule.ts'
import aggregate from './index.ts'

const H = 3_600_000
const T0 = Date.UTC(2025, 0, 1)
const AFTER = MAX_RELEASE_DELAY_MS

function agg(config: unknown) {
  const fn = compileOperator(aggregate, config, compileEnv({ category: 'camera', domain: 'ana' }))
  if (!isScheduled(fn)) throw new Error('aggregate must be scheduled')
  return {
    send: (doc: unknown, nowMs: number, deviceId = 'cam-1'): unknown =>
      fn(doc, opContext({ category: 'camera', domain: 'ana', deviceId, nowMs })),
    tick: (nowMs: number, drain = false): readonly Emission[] => fn.tick(nowMs, drain),
  }
}

describe('aggregate', () => {
  it('suppresses every message and releases one record per window 5-30 s after it ends', () => {
    const a = agg({ values: { battery: { path: 'batt', reduce: 'mean', step: 10 } } })
    for (const [min, batt] of [
      [1, 81],
      [20, 77],
      [59, 70],
    ] as const)
      expect(a.send({ batt }, T0 + min * 60_000)).toBe(SUPPRESS)
    expect(a.tick(T0 + H + MIN_RELEASE_DELAY_MS - 1)).toEqual([])
    expect(a.tick(T0 + H + AFTER)).toEqual([
      { deviceId: 'cam-1', doc: { window_start: T0 / 1000, window_s: 3600, battery: 80 } },
    ])
    expect(a.tick(T0 + 2 * H + AFTER)).toEqual([])
  })

  it('counts labels per window; unknown-looking labels and labels past max_labels count as other', () => {
    const a = agg({ count_by: 'after.label', max_labels: 2 })
    for (const label of ['person', 'car', 'person', 'dog', 'AA:BB:CC:DD:EE:FF', 'person'])
      a.send({ after: { label } }, T0 + 1000)
    a.send({ after: {} }, T0 + 2000)
    const [record] = a.tick(T0 + H + AFTER)
    expect(record?.doc).toEqual({ window_start: T0 / 1000, window_s: 3600, counts: { car: 1, other: 2, person: 3 } })
  })

  it('counts only the messages that match when (one per Frigate event, not its updates)', () => {
    const a = agg({ count_by: 'after.label', when: { path: 'type', in: ['new'] } })
    for (const type of ['new', 'update', 'update', 'end', 'new']) a.send({ type, after: { label: 'car' } }, T0 + 1000)
    expect(a.tick(T0 + H + AFTER)[0]?.doc).toEqual({ window_start: T0 / 1000, window_s: 3600, counts: { car: 2 } })
  })

  it('min, max, rounding, and count only when asked for', () => {
    const a = agg({
      values: { lo: { path: 'v', reduce: 'min', step: 0.5 }, hi: { path: 'v', reduce: 'max', step: 0.5 } },
      count: true,
    })
    for (const v of [1.2, 3.9, 2.2]) a.send({ v }, T0)
    a.send({ v: 'x' }, T0)
    expect(a.tick(T0 + H + AFTER)[0]?.doc).toEqual({ window_start: T0 / 1000, window_s: 3600, lo: 1, hi: 4, count: 4 })
  })

  it('skips values outside minimum..maximum (Traccar: -1 is an unknown battery)', () => {
    const a = agg({ values: { battery: { path: 'b', step: 0.1, minimum: 0, maximum: 1 } } })
    for (const b of [1, 1, -1, 0.8, 7]) a.send({ b }, T0)
    expect(a.tick(T0 + H + AFTER)[0]?.doc).toEqual({ window_start: T0 / 1000, window_s: 3600, battery: 0.9 })
    const only = agg({ values: { battery: { path: 'b', minimum: 0 } }, count: true })
    only.send({ b: -1 }, T0)
    expect(only.tick(T0 + H + AFTER)[0]?.doc).toEqual({ window_start: T0 / 1000, window_s: 3600, count: 1 })
  })

  it('a window without messages gives no record; devices are apart; a stale message is ignored', () => {
    const a = agg({ values: { b: { path: 'b' } } })
    a.send({ b: 1 }, T0, 'x')
    a.send({ b: 5 }, T0 + 2 * H, 'y')
    expect(a.send({ b: 100 }, T0 - H, 'x')).toBe(SUPPRESS)
    const out = [...a.tick(T0 + H + AFTER), ...a.tick(T0 + 2 * H + AFTER), ...a.tick(T0 + 3 * H + AFTER)]
    expect(out).toEqual([
      { deviceId: 'x', doc: { window_start: T0 / 1000, window_s: 3600, b: 1 } },
      { deviceId: 'y', doc: { window_start: T0 / 1000 + 7200, window_s: 3600, b: 5 } },
    ])
  })

  it('drain releases the open window at once', () => {
    const a = agg({ count: true })
    a.send({}, T0)
    expect(a.tick(T0 + 1, true).map((e) => e.doc)).toEqual([{ window_start: T0 / 1000, window_s: 3600, count: 1 }])
  })

  it('refuses settings that report nothing or windows not aligned to the day', () => {
    const env = compileEnv()
    expect(() => compileOperator(aggregate, {}, env)).toThrow(/nothing/)
    expect(() => compileOperator(aggregate, { count: true, window_s: 7000 }, env)).toThrow(/86400/)
  })

  it('issue 13.4: the rate and moments of messages do not show: at most one record per device per window, the same for any number of identical messages at any times', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3 * H - 1 }), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 1, max: 20 }),
        (times, repeat) => {
          const a = agg({ values: { battery: { path: 'batt', step: 10 } }, count_by: 'label' })
          const b = agg({ values: { battery: { path: 'batt', step: 10 } }, count_by: 'label' })
          const sorted = [...times].sort((p, q) => p - q)
          for (const t of sorted) a.send({ batt: 55, label: 'person' }, T0 + t)
          // b: one message in each window that a had any in, repeated.
          const windows = [...new Set(sorted.map((t) => Math.floor(t / H)))]
          for (const w of windows)
            for (let i = 0; i < repeat; i++) b.send({ batt: 55, label: 'person' }, T0 + w * H + 7)
          const collect = (x: typeof a) => {
            const out: Emission[] = []
            for (let t = T0; t <= T0 + 4 * H; t += 10_000) out.push(...x.tick(t))
            return out.map((e) => e.doc as { window_start: number; battery: number; counts: Record<string, number> })
          }
          const ra = collect(a)
          const rb = collect(b)
          expect(new Set(ra.map((r) => r.window_start)).size).toBe(ra.length)
          expect(ra.map((r) => [r.window_start, r.battery])).toEqual(rb.map((r) => [r.window_start, r.battery]))
        },
      ),
      { seed: 13, numRuns: 100 },
    )
  })
})
