import { describe, expect, it } from 'vitest'
import { SUPPRESS } from '#veil/sdk'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import jobArea from './index.ts'

const MIN = 60_000
const T0 = Date.UTC(2026, 2, 1, 9)
const env = compileEnv({ category: 'robot_vacuum' })

/** Readings (cm²) at minute offsets, through one compiled operator; what leaves, with its minute. */
function run(
  readings: readonly (readonly [number, number])[],
  config: unknown = {},
  deviceId = 'robot-1',
): [number, unknown][] {
  const fn = compileOperator(jobArea, config, env)
  const out: [number, unknown][] = []
  for (const [minute, cm2] of readings) {
    const result = fn(cm2, opContext({ category: 'robot_vacuum', deviceId, nowMs: T0 + minute * MIN }))
    if (result !== SUPPRESS) out.push([minute, result])
  }
  return out
}

/** One job as Valetudo reports it: the running total every minute while it cleans, then the total while docked. */
function job(startMinute: number, m2PerMinute: number, minutes: number, docked = 60): [number, number][] {
  const readings: [number, number][] = [[startMinute, 0]]
  for (let i = 1; i <= minutes; i++) readings.push([startMinute + i, i * m2PerMinute * 10_000])
  for (let i = 1; i <= docked; i++) readings.push([startMinute + minutes + i, minutes * m2PerMinute * 10_000])
  return readings
}

describe('job_area', () => {
  it('reports a job once, settle_s after its area stopped growing, in 5 m² steps; nothing while it grows', () => {
    // 43 m² in 43 minutes, then docked for an hour with the same reading every minute.
    expect(run(job(0, 1, 43))).toEqual([[43 + 30, { cleaned_m2: 45 }]])
  })

  it('reports an unreported job when the next one starts (the reading falls back to zero)', () => {
    const readings = [...job(0, 1, 43, 5), ...job(100, 2, 10, 0)]
    expect(run(readings)).toEqual([[100, { cleaned_m2: 45 }]])
    expect(run([...job(0, 1, 43, 40), ...job(100, 2, 10, 40)])).toEqual([
      [73, { cleaned_m2: 45 }],
      [140, { cleaned_m2: 20 }],
    ])
  })

  it('keeps the first reading after a start unreported until it is confirmed, and 0 is no job', () => {
    expect(run([[0, 430_000]])).toEqual([])
    expect(
      run([
        [0, 430_000],
        [31, 430_000],
      ]),
    ).toEqual([[31, { cleaned_m2: 45 }]])
    expect(
      run([
        [0, 0],
        [40, 0],
        [80, 0],
      ]),
    ).toEqual([])
  })

  it('the same job gives the same output whatever the size of the home: the home does not reach the statistic', () => {
    // A small flat and a large house: the same 25 m² job (kitchen and hall). Only the job's readings enter.
    expect(run(job(0, 1, 25), {}, 'flat-robot')).toEqual(run(job(0, 1, 25), {}, 'house-robot'))
  })

  it('keeps each device apart and rounds with the configured step', () => {
    const fn = compileOperator(jobArea, { area_step_m2: 10, settle_s: 600 }, env)
    const at = (deviceId: string, minute: number, cm2: number) =>
      fn(cm2, opContext({ category: 'robot_vacuum', deviceId, nowMs: T0 + minute * MIN }))
    expect(at('a', 0, 100_000)).toBe(SUPPRESS)
    expect(at('b', 0, 560_000)).toBe(SUPPRESS)
    expect(at('a', 11, 100_000)).toEqual({ cleaned_m2: 10 })
    expect(at('b', 11, 560_000)).toEqual({ cleaned_m2: 60 })
    expect(at('a', 12, 100_000)).toBe(SUPPRESS)
  })

  it('throws on a reading that is not an area, and refuses bad settings at compile time', () => {
    const fn = compileOperator(jobArea, {}, env)
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, '430000', null, { area: 1 }])
      expect(() => fn(bad, opContext())).toThrow(/cm²/)
    expect(() => compileOperator(jobArea, { area_step_m2: 0 }, env)).toThrow(/area_step_m2/)
    expect(() => compileOperator(jobArea, { settle_s: 10 }, env)).toThrow(/settle_s/)
  })
})
