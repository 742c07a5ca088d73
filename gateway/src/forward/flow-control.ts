/**
 * Flow control while an upstream is connected and acknowledging: once more than one in-flight window
 * (`maxPending`) of messages waits unsent in the queue, new device publishes wait (before the pipeline) until half a
 * window is left. Without it ingestion, which only has to reach the disk, outruns the pump on a busy core, and the
 * backlog grows past the queue's in-memory tail and is read back from disk: seconds of latency.
 */
export const BACKLOG_HIGH_WINDOWS = 1
export const BACKLOG_LOW_WINDOWS = 0.5
/** An upstream that acknowledged nothing for this long is stalled: store and forward, nobody waits for it. */
export const STALL_MS = 1000

/** What flow control reads of its bridge at a device publish. */
export interface Backlog {
  /** Connected and not stopping. */
  readonly live: boolean
  /** Messages handed to the upstream and awaiting their PUBACK. */
  readonly outstanding: number
  /** Messages in the queue, outstanding ones included. */
  readonly depth: number
}

/**
 * One upstream's pacing of device publishes. The bridge reports progress (an acknowledgement, a new connection)
 * and refills; the gateway awaits catchUp() before running a device publish through the pipeline.
 */
export class FlowControl {
  readonly #enabled: boolean
  /** The upstream's in-flight window, `maxPending`. */
  readonly #window: number
  readonly #now: () => number
  /** Set by stop() at shutdown: flow control never makes anyone wait again. */
  #off = false
  /** When the upstream last acknowledged a message (or the connection came up). */
  #lastProgress = 0
  /** Resolves the devices waiting for the backlog to shrink; undefined when none wait. */
  #waiting: { readonly done: Promise<void>; readonly resolve: () => void; readonly timer: NodeJS.Timeout } | undefined

  constructor(enabled: boolean, window: number, now: () => number = Date.now) {
    this.#enabled = enabled
    this.#window = window
    this.#now = now
  }

  /** The upstream acknowledged a message, or a connection came up. */
  progressed(): void {
    this.#lastProgress = this.#now()
  }

  /**
   * Undefined unless the upstream is live, acknowledging, and more than BACKLOG_HIGH_WINDOWS in-flight windows of
   * messages wait unsent; then a promise (shared by every caller) that resolves once BACKLOG_LOW_WINDOWS or less
   * wait (refilled), the connection is lost or closed (release), or the upstream has acknowledged nothing for
   * STALL_MS.
   */
  catchUp(backlog: Backlog): Promise<void> | undefined {
    if (this.#waiting !== undefined) return this.#waiting.done
    if (!this.#enabled || this.#off) return undefined
    // Cheap test first: a backlog over the bound means the pump has filled the window.
    if (!backlog.live || backlog.outstanding < this.#window) return undefined
    if (this.#stalled()) return undefined
    if (backlog.depth - backlog.outstanding <= BACKLOG_HIGH_WINDOWS * this.#window) return undefined
    let resolve!: () => void
    const done = new Promise<void>((r) => (resolve = r))
    // Checks for a stall while devices wait: no acknowledgement for STALL_MS lets them through.
    const timer = setInterval(() => {
      if (this.#stalled()) this.release()
    }, STALL_MS / 4)
    timer.unref()
    this.#waiting = { done, resolve, timer }
    return done
  }

  /** After the pump refilled the window: lets the waiting devices through once the backlog is down to the low mark. */
  refilled(unsent: number): void {
    if (this.#waiting !== undefined && unsent <= BACKLOG_LOW_WINDOWS * this.#window) this.release()
  }

  /** Lets every waiting device through (the connection was lost, or the bridge closes). */
  release(): void {
    const waiting = this.#waiting
    if (waiting === undefined) return
    this.#waiting = undefined
    clearInterval(waiting.timer)
    waiting.resolve()
  }

  /** At shutdown: nobody waits for this upstream any more. */
  stop(): void {
    this.#off = true
    this.release()
  }

  #stalled(): boolean {
    return this.#now() - this.#lastProgress > STALL_MS
  }
}
