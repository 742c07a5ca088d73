import { describe, expect, it } from 'vitest'
import { backoffDelay } from './bridge.ts'

describe('reconnect backoff', () => {
  const reconnect = { minMs: 500, maxMs: 30_000 }

  it('doubles its ceiling from minMs up to maxMs', () => {
    const ceilings = Array.from({ length: 10 }, (_, attempt) => backoffDelay(attempt, reconnect, () => 1))
    expect(ceilings).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000])
  })

  it('waits between half the ceiling and the ceiling, spread by the random source', () => {
    expect(backoffDelay(3, reconnect, () => 0)).toBe(2000)
    const spread = new Set(Array.from({ length: 200 }, () => backoffDelay(3, reconnect)))
    for (const d of spread) {
      expect(d).toBeGreaterThanOrEqual(2000)
      expect(d).toBeLessThanOrEqual(4000)
    }
    expect(spread.size).toBeGreaterThan(50)
  })

  it('stays finite after very many attempts', () => {
    expect(backoffDelay(10_000, reconnect, () => 0.5)).toBe(22500)
  })
})
