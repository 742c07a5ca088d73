import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DeviceState } from './state.ts'

describe('DeviceState', () => {
  it('keeps values per device and replaces them on set', () => {
    const state = new DeviceState<number>(4)
    state.set('a', 1)
    state.set('b', 2)
    state.set('a', 3)
    expect(state.get('a')).toBe(3)
    expect(state.get('b')).toBe(2)
    expect(state.get('c')).toBeUndefined()
    expect(state.size).toBe(2)
  })

  it('never holds more than its limit, and never evicts a device used since the last limit / 2 others', () => {
    // Few keys for the limits, so that reads hit and evictions happen often.
    const op = fc.record({ kind: fc.constantFrom('get', 'set'), key: fc.integer({ min: 0, max: 12 }) })
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.array(op, { maxLength: 300 }), (limit, ops) => {
        const state = new DeviceState<number>(limit)
        const model = new Map<string, number>()
        const recent: string[] = []
        for (const [i, { kind, key }] of ops.entries()) {
          const id = `dev${key}`
          if (kind === 'set') {
            state.set(id, i)
            model.set(id, i)
          } else {
            const got = state.get(id)
            // Present or evicted, never a wrong value.
            if (got !== undefined && got !== model.get(id)) return false
            if (got === undefined) continue
          }
          const at = recent.indexOf(id)
          if (at !== -1) recent.splice(at, 1)
          recent.push(id)
          if (state.size > limit) return false
          // The devices touched most recently: the newest floor(limit / 2) distinct ones must all still be held.
          for (const kept of recent.slice(recent.length - Math.floor(limit / 2))) if (!state.has(kept)) return false
        }
        return true
      }),
    )
  })

  it('evicts the least recently moved device first once the state is full', () => {
    const state = new DeviceState<number>(4)
    for (const id of ['a', 'b', 'c', 'd']) state.set(id, 0)
    state.set('e', 0)
    expect(state.get('a')).toBeUndefined()
    expect(state.size).toBe(4)
    // A read marks a device as used, once it is past the newer half of the order.
    state.get('b')
    state.set('f', 0)
    expect(state.has('b')).toBe(true)
    expect(state.has('c')).toBe(false)
  })
})
