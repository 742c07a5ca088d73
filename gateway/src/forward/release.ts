import type { Category } from '../sdk/model.ts'
import type { Output } from '../pipeline/envelope.ts'

/** A filtered copy held until its release, with what forwarding it needs. */
export interface HeldCopy {
  readonly out: Output
  readonly category: Category
  readonly version: string
}

interface Batch {
  readonly dueMs: number
  readonly copies: HeldCopy[]
}

/** Batches spread over up to 2 s after their boundary, so that many gateways do not all send at xx:00:00.000. */
const MAX_JITTER_MS = 2_000
/** Far above a busy home's hour of ana copies (a fleet's would be aggregated); past it a copy is dropped, not sent early. */
export const DEFAULT_MAX_HELD = 200_000

/**
 * The policies' release schedules (issue 13 part 3): a copy whose stream is batched waits here and leaves with the
 * others at the next aligned multiple of its interval (xx:00 for hourly, every minute for a 60 s floor), in the
 * order the copies were made, so the moment it reaches the local broker or an upstream says no more than its floored
 * times. Held copies live in memory only: a copy kept on the gateway is a liability, and one interval of batched
 * statistics is what a crash can lose (a clean shutdown hands them to the durable queues).
 */
export class ReleaseSchedule {
  readonly #batches = new Map<number, Batch>()
  readonly #random: () => number
  readonly #maxHeld: number
  #held = 0
  /** Earliest dueMs of any batch: due() returns at once before it. */
  #nextDueMs = Infinity

  constructor(random: () => number, maxHeld = DEFAULT_MAX_HELD) {
    this.#random = random
    this.#maxHeld = maxHeld
  }

  get held(): number {
    return this.#held
  }

  /** Holds a copy until the boundary after `nowMs`; false when the schedule is full (the caller drops it). */
  hold(copy: HeldCopy, nowMs: number): boolean {
    if (this.#held >= this.#maxHeld) return false
    const every = copy.out.releaseMs
    const boundary = (Math.floor(nowMs / every) + 1) * every
    let batch = this.#batches.get(boundary)
    if (batch === undefined) {
      batch = { dueMs: boundary + Math.floor(this.#random() * Math.min(MAX_JITTER_MS, every / 10)), copies: [] }
      this.#batches.set(boundary, batch)
      if (batch.dueMs < this.#nextDueMs) this.#nextDueMs = batch.dueMs
    }
    batch.copies.push(copy)
    this.#held++
    return true
  }

  /** The copies whose release has come, oldest boundary first and in order within it. */
  due(nowMs: number): HeldCopy[] {
    if (nowMs < this.#nextDueMs) return []
    return this.#take((batch) => batch.dueMs <= nowMs)
  }

  /** Everything held, for a clean shutdown. */
  drain(): HeldCopy[] {
    return this.#take(() => true)
  }

  #take(ready: (batch: Batch) => boolean): HeldCopy[] {
    const boundaries = [...this.#batches.keys()]
      .filter((b) => ready(this.#batches.get(b) as Batch))
      .sort((a, b) => a - b)
    const out: HeldCopy[] = []
    for (const boundary of boundaries) {
      const batch = this.#batches.get(boundary) as Batch
      this.#batches.delete(boundary)
      for (const copy of batch.copies) out.push(copy)
      this.#held -= batch.copies.length
    }
    let next = Infinity
    for (const batch of this.#batches.values()) if (batch.dueMs < next) next = batch.dueMs
    this.#nextDueMs = next
    return out
  }
}
