import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SUPPRESS } from '#veil/sdk'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import eventSuppress, { type EventReport } from './index.ts'

const H = 3_600_000
const T0 = Date.UTC(2025, 0, 1)
const env = compileEnv({ category: 'smart_plug' })

function suppressor(config: unknown = {}) {
  const fn = compileOperator(eventSuppress, config, env)
  return (doc: unknown, nowMs: number, deviceId = 'plug-1'): unknown =>
    fn(doc, opContext({ category: 'smart_plug', deviceId, nowMs }))
}

describe('event_suppress', () => {
  it('suppresses every toggle and reports the count and last state of a window with the next window’s first event', () => {
    const s = suppressor()
    expect(s('ON', T0 + 1000)).toBe(SUPPRESS)
    expect(s('OFF', T0 + 60_000)).toBe(SUPPRESS)
    expect(s('ON', T0 + 30 * 60_000)).toBe(SUPPRESS)
    expect(s('OFF', T0 + 3 * H + 5)).toEqual({ window_start: T0 / 1000, window_s: 3600, events: 3, last: 'ON' })
    expect(s('ON', T0 + 4 * H)).toEqual({ window_start: T0 / 1000 + 3 * 3600, window_s: 3600, events: 1, last: 'OFF' })
  })

  it('reads the value at a path, and leaves out a value that is not a short scalar', () => {
    const s = suppressor({ value: 'POWER1' })
    s({ POWER1: 'ON' }, T0)
    expect(s({ POWER1: 'OFF' }, T0 + H)).toEqual({ window_start: T0 / 1000, window_s: 3600, events: 1, last: 'ON' })
    const t = suppressor()
    t({ PowerDelta: 120 }, T0)
    expect(t('x'.repeat(100), T0 + 1)).toBe(SUPPRESS)
    expect(t(true, T0 + H)).toEqual({ window_start: T0 / 1000, window_s: 3600, events: 2 })
    expect(t(42, T0 + 2 * H)).toEqual({ window_start: T0 / 1000 + 3600, window_s: 3600, events: 1, last: true })
  })

  it('keeps devices apart and validates window_s', () => {
    const s = suppressor({ window_s: 900 })
    s('ON', T0, 'a')
    s('ON', T0, 'b')
    s('OFF', T0 + 1, 'b')
    expect((s('OFF', T0 + 900_000, 'a') as EventReport).events).toBe(1)
    expect((s('ON', T0 + 900_000, 'b') as EventReport).events).toBe(2)
    expect(() => compileOperator(eventSuppress, { window_s: 1000 }, env)).toThrow(/86400/)
  })

  it('P8 style: no push between windows, one aligned report per window with events in it, counts add up', () => {
    const event = fc.record({ dtMs: fc.integer({ min: 0, max: 2 * H }), value: fc.constantFrom('ON', 'OFF', 'TOGGLE') })
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 86_400_000 }),
        fc.array(event, { minLength: 1, maxLength: 200 }),
        (offset, events) => {
          const s = suppressor()
          let now = T0 + offset
          let window = Math.floor(now / H)
          expect(s('ON', now)).toBe(SUPPRESS)
          let inWindow = 1
          let lastValue = 'ON'
          let reported = 0
          let lastStart = -Infinity
          for (const { dtMs, value } of events) {
            now += dtMs
            const w = Math.floor(now / H)
            const out = s(value, now)
            if (w === window) {
              expect(out).toBe(SUPPRESS)
              inWindow++
            } else {
              const report = out as EventReport
              expect(Object.keys(report).sort()).toEqual(['events', 'last', 'window_s', 'window_start'])
              expect(report.window_start % 3600).toBe(0)
              expect(report.window_start).toBe(window * 3600)
              expect(report.window_start).toBeGreaterThan(lastStart)
              expect(report.window_s).toBe(3600)
              expect(report.events).toBe(inWindow)
              expect(report.last).toBe(lastValue)
              lastStart = report.window_start
              reported += report.events
              window = w
              inWindow = 1
            }
            lastValue = value
          }
          expect(reported + inWindow).toBe(events.length + 1)
        },
      ),
      { seed: 42, numRuns: 500 },
    )
  })
})
