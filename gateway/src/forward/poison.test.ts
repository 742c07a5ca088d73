import { describe, expect, it } from 'vitest'
import { MAX_DELIVERY_ATTEMPTS, PoisonDetector } from './poison.ts'
import { BRIDGE_TRANSITIONS, mayTransition } from './bridge-state.ts'

describe('PoisonDetector', () => {
  it('probes one message at a time after a loss, and drops the one alone in flight on the bound-th loss in a row', () => {
    const d = new PoisonDetector()
    expect(d.window(8)).toBe(8)
    expect(d.lostUnacknowledged()).toEqual({ kind: 'probe' })
    expect(d.probing).toBe(true)
    expect(d.window(8)).toBe(1)
    d.sending('camera', 3)
    for (let i = 2; i < MAX_DELIVERY_ATTEMPTS; i++) {
      d.sending('camera', 3)
      expect(d.lostUnacknowledged()).toEqual({ kind: 'probe' })
    }
    expect(d.lostUnacknowledged()).toEqual({
      kind: 'drop',
      category: 'camera',
      seq: 3,
      attempts: MAX_DELIVERY_ATTEMPTS,
    })
  })

  it('holds a second suspect while nothing was acknowledged since a drop, reporting it once; an acknowledgement resets all', () => {
    const d = new PoisonDetector()
    d.lostUnacknowledged()
    d.sending('camera', 1)
    for (let i = 1; i < MAX_DELIVERY_ATTEMPTS; i++) d.lostUnacknowledged()
    d.sending('camera', 2)
    for (let i = 1; i < MAX_DELIVERY_ATTEMPTS - 1; i++) expect(d.lostUnacknowledged().kind).toBe('probe')
    expect(d.lostUnacknowledged()).toEqual({ kind: 'refuses_everything', first: true })
    expect(d.lostUnacknowledged()).toEqual({ kind: 'refuses_everything', first: false })
    d.acknowledged()
    expect(d.probing).toBe(false)
    expect(d.window(8)).toBe(8)
  })

  it('starts counting again for a different message', () => {
    const d = new PoisonDetector()
    d.lostUnacknowledged()
    d.sending('camera', 1)
    for (let i = 1; i < MAX_DELIVERY_ATTEMPTS - 1; i++) d.lostUnacknowledged()
    d.sending('smart_plug', 1)
    expect(d.lostUnacknowledged()).toEqual({ kind: 'probe' })
  })
})

describe('bridge states', () => {
  it('closed is final; backoff only leads to a new attempt; staying is always allowed', () => {
    expect(BRIDGE_TRANSITIONS.closed).toEqual([])
    expect(mayTransition('closed', 'connecting')).toBe(false)
    expect(mayTransition('backoff', 'connected')).toBe(false)
    expect(mayTransition('connected', 'connecting')).toBe(false)
    expect(mayTransition('connecting', 'connecting')).toBe(true)
    for (const from of Object.keys(BRIDGE_TRANSITIONS) as (keyof typeof BRIDGE_TRANSITIONS)[])
      expect(mayTransition(from, 'closed')).toBe(true)
  })
})
