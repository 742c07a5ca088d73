/**
 * Seeded pseudo-random numbers for the simulators. Payload generation never uses Math.random so that a seed
 * reproduces a run byte for byte (tests, benchmarks and bug reports depend on it).
 */

/** mulberry32: 32-bit state, fast, good enough for test data (not for anything secret). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Combines a run seed with labels (profile name, device index) into an independent 32-bit seed, so device 3 of a
 * profile gets the same stream whether 4 or 400 devices are created.
 */
export function deriveSeed(seed: number, ...labels: (string | number)[]): number {
  let h = (seed ^ 0x9e3779b9) >>> 0
  for (const label of labels) {
    const text = String(label)
    for (let i = 0; i < text.length; i++) {
      h = Math.imul(h ^ text.charCodeAt(i), 0x85ebca6b) >>> 0
      h ^= h >>> 13
    }
    h = Math.imul(h ^ (h >>> 16), 0xc2b2ae35) >>> 0
  }
  return h
}

const ALNUM_LOWER = 'abcdefghijklmnopqrstuvwxyz0123456789'

/** Convenience wrapper over one mulberry32 stream. */
export class Rng {
  readonly #next: () => number

  constructor(seed: number) {
    this.#next = mulberry32(seed)
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.#next()
  }

  /** Uniform in [min, max). */
  float(min: number, max: number): number {
    return min + (max - min) * this.#next()
  }

  /** Uniform integer in [min, max] (both inclusive). */
  int(min: number, max: number): number {
    return min + Math.floor(this.#next() * (max - min + 1))
  }

  chance(probability: number): boolean {
    return this.#next() < probability
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.#next() * items.length)]
    if (item === undefined) throw new Error('Rng.pick: empty list')
    return item
  }

  /** Normal distribution (Box-Muller); used for sensor noise. */
  gaussian(mean: number, sd: number): number {
    const u = 1 - this.#next()
    const v = this.#next()
    return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  }

  bytes(length: number): Buffer {
    const out = Buffer.allocUnsafe(length)
    for (let i = 0; i < length; i++) out[i] = Math.floor(this.#next() * 256)
    return out
  }

  /** Lower-case letters and digits, e.g. the random suffix of a Frigate event id. */
  alnum(length: number): string {
    let out = ''
    for (let i = 0; i < length; i++) out += ALNUM_LOWER[Math.floor(this.#next() * ALNUM_LOWER.length)]
    return out
  }

  /** RFC 4122 version-4 layout, e.g. Valetudo's map nonce. */
  uuid(): string {
    const hex = this.bytes(16)
    hex[6] = ((hex[6] ?? 0) & 0x0f) | 0x40
    hex[8] = ((hex[8] ?? 0) & 0x3f) | 0x80
    const s = hex.toString('hex')
    return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`
  }
}
