/**
 * Per-device state of a stateful operator (energy windows, downsampling, noise caches). Bounded: past `limit`
 * devices the least recently used entry is evicted, so an attacker inventing device ids cannot grow memory.
 * One instance per compiled operator, so domains never share state.
 *
 * Recency is kept in the Map's insertion order, and marking an entry as used means deleting and re-inserting it:
 * 240 ns, against 5 ns for the lookup, on every message of every stateful operator. So an entry is moved only once
 * more than `limit / 2` entries have been moved or added since it last was: until then it sits in the newer half of
 * the order, where eviction cannot reach it. The bound this keeps: an entry used since the last `limit / 2` moves
 * is never evicted; past that, eviction is least recently moved first, close to least recently used.
 */
export class DeviceState<T> {
  readonly #entries = new Map<string, Slot<T>>()
  readonly #limit: number
  readonly #stale: number
  /** Moves and insertions so far: each slot remembers the count at its own last move. */
  #clock = 0

  constructor(limit = 10_000) {
    this.#limit = limit
    this.#stale = Math.floor(limit / 2)
    // Known to forgetDevices, without keeping a recompiled policy's old state alive.
    const ref = new WeakRef<DeviceState<unknown>>(this)
    LIVE.add(ref)
    RELEASED.register(this, ref)
  }

  get(deviceId: string): T | undefined {
    const slot = this.#entries.get(deviceId)
    if (slot === undefined) return undefined
    if (this.#clock - slot.moved > this.#stale) this.#move(deviceId, slot)
    return slot.value
  }

  set(deviceId: string, value: T): void {
    const slot = this.#entries.get(deviceId)
    if (slot !== undefined) {
      slot.value = value
      if (this.#clock - slot.moved > this.#stale) this.#move(deviceId, slot)
      return
    }
    this.#entries.set(deviceId, { value, moved: ++this.#clock })
    if (this.#entries.size > this.#limit) {
      const oldest = this.#entries.keys().next().value
      if (oldest !== undefined) this.#entries.delete(oldest)
    }
  }

  #move(deviceId: string, slot: Slot<T>): void {
    this.#entries.delete(deviceId)
    this.#entries.set(deviceId, slot)
    slot.moved = ++this.#clock
  }

  /** Whether a device has state, without marking it as used. */
  has(deviceId: string): boolean {
    return this.#entries.has(deviceId)
  }

  delete(deviceId: string): void {
    this.#entries.delete(deviceId)
  }

  /** Every entry, oldest move first, without marking any as used: for scheduled operators' ticks. */
  *entries(): IterableIterator<[string, T]> {
    for (const [id, slot] of this.#entries) yield [id, slot.value]
  }

  get size(): number {
    return this.#entries.size
  }
}

interface Slot<T> {
  value: T
  moved: number
}

const LIVE = new Set<WeakRef<DeviceState<unknown>>>()
const RELEASED = new FinalizationRegistry<WeakRef<DeviceState<unknown>>>((ref) => LIVE.delete(ref))

/**
 * Erasure: deletes the entries of these device ids from every operator's device state in the process (energy
 * windows, noise caches, rate limits, learned places), so nothing learned from a forgotten person's devices stays.
 * An id another profile shares loses its state too: state is rebuilt from the next message, never leaked.
 * Returns how many entries were deleted.
 */
export function forgetDevices(deviceIds: Iterable<string>): number {
  const ids = [...deviceIds]
  let deleted = 0
  for (const ref of LIVE) {
    const state = ref.deref()
    if (state === undefined) {
      LIVE.delete(ref)
      continue
    }
    for (const id of ids) {
      if (state.has(id)) {
        state.delete(id)
        deleted++
      }
    }
  }
  return deleted
}
