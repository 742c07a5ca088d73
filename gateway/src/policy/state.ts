/**
 * Per-device state of a stateful operator (energy windows, downsampling, noise caches). Bounded: past `limit`
 * devices the least recently used entry is evicted, so an attacker inventing device ids cannot grow memory.
 * One instance per compiled operator, so domains never share state.
 */
export class DeviceState<T> {
  readonly #entries = new Map<string, T>()
  readonly #limit: number

  constructor(limit = 10_000) {
    this.#limit = limit
  }

  get(deviceId: string): T | undefined {
    const value = this.#entries.get(deviceId)
    if (value !== undefined) {
      // Re-insert to mark as most recently used (Map keeps insertion order).
      this.#entries.delete(deviceId)
      this.#entries.set(deviceId, value)
    }
    return value
  }

  set(deviceId: string, value: T): void {
    this.#entries.delete(deviceId)
    this.#entries.set(deviceId, value)
    if (this.#entries.size > this.#limit) {
      const oldest = this.#entries.keys().next().value
      if (oldest !== undefined) this.#entries.delete(oldest)
    }
  }

  get size(): number {
    return this.#entries.size
  }
}
