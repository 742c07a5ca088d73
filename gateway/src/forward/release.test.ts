import { describe, expect, it } from 'vitest'
import type { Output } from '../pipeline/envelope.ts'
import { ReleaseSchedule, type HeldCopy } from './release.ts'
import { ConsentBook } from '../consent/book.ts'

const HOUSEHOLD = ConsentBook.household().household

const T0 = Date.UTC(2025, 0, 1)
const copy = (topic: string, releaseMs: number): HeldCopy => ({
  out: {
    domain: 'ana',
    doc: {},
    payload: Buffer.from(topic),
    topic,
    contentType: 'application/json',
    releaseMs,
    subject: HOUSEHOLD,
    purposeBit: 0,
  } satisfies Output,
  category: 'camera',
  version: 'v1',
})

describe('ReleaseSchedule', () => {
  it('holds copies until the next aligned boundary (plus at most 2 s), then releases them in order', () => {
    const r = new ReleaseSchedule(() => 0.999)
    r.hold(copy('a', 60_000), T0 + 1_000)
    r.hold(copy('b', 60_000), T0 + 59_999)
    r.hold(copy('c', 60_000), T0 + 60_000)
    expect(r.held).toBe(3)
    expect(r.due(T0 + 59_999)).toEqual([])
    expect(r.due(T0 + 60_000 + 2_000).map((c) => c.out.topic)).toEqual(['a', 'b'])
    expect(r.due(T0 + 120_000)).toEqual([])
    expect(r.due(T0 + 122_000).map((c) => c.out.topic)).toEqual(['c'])
    expect(r.held).toBe(0)
  })

  it('jitter stays within a tenth of the interval', () => {
    const r = new ReleaseSchedule(() => 0.999)
    r.hold(copy('a', 5_000), T0 + 1)
    expect(r.due(T0 + 5_000 + 498)).toEqual([])
    expect(r.due(T0 + 5_000 + 499)).toHaveLength(1)
  })

  it('releases older boundaries first across intervals, and drains everything at shutdown', () => {
    const r = new ReleaseSchedule(() => 0)
    r.hold(copy('hour', 3_600_000), T0 + 10)
    r.hold(copy('minute', 60_000), T0 + 20)
    r.hold(copy('minute2', 60_000), T0 + 61_000)
    expect(r.due(T0 + 3_600_000).map((c) => c.out.topic)).toEqual(['minute', 'minute2', 'hour'])
    r.hold(copy('x', 60_000), T0 + 3_600_001)
    expect(r.drain().map((c) => c.out.topic)).toEqual(['x'])
    expect(r.held).toBe(0)
  })

  it('refuses a copy when full instead of growing without bound', () => {
    const r = new ReleaseSchedule(() => 0, 2)
    expect(r.hold(copy('a', 1000), T0)).toBe(true)
    expect(r.hold(copy('b', 1000), T0)).toBe(true)
    expect(r.hold(copy('c', 1000), T0)).toBe(false)
    expect(r.held).toBe(2)
  })
})
