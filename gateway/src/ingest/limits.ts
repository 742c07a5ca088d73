import type { Client } from 'aedes'

/** Limits the broker enforces on each device connection, before the pipeline sees a message. */
export interface IngestLimits {
  /**
   * Raw publishes of one client inside the pipeline at once. aedes hands the hook every packet of one socket read
   * at the same time (thousands of small publishes fit in one read); beyond this many, a client's publishes wait
   * their turn, and aedes reads nothing more from that client until they are through.
   */
  readonly inflightPerClient: number
  /** Largest MQTT packet (remaining length) accepted; a larger one closes the connection once its header is read. */
  readonly packetBytes: number
}

/** Room for the fixed header, topic length, packet id and, in CONNECT, the client id, credentials and will topic. */
export const PACKET_OVERHEAD_BYTES = 4096

/**
 * The parser's packet limit follows the pipeline's: the largest payload on the longest topic, plus the header.
 * A payload a little over payloadBytes still reaches the pipeline and is dropped as `payload_too_large` (the
 * device stays connected); one far over it never gets buffered.
 */
export function packetLimitFor(limits: { payloadBytes: number; topicBytes: number }): number {
  return limits.payloadBytes + limits.topicBytes + PACKET_OVERHEAD_BYTES
}

export const DEFAULT_INFLIGHT_PER_CLIENT = 16

/**
 * At most `limit` tasks of one client at once, the rest in arrival order. The queue holds no more than what aedes
 * has already parsed from the client's socket: aedes reads the next chunk only once every packet of the current
 * one has been called back, so waiting here is TCP backpressure on that client and no one else.
 */
export class InflightGate {
  readonly #limit: number
  #active = 0
  #waiting: (() => void)[] = []
  #head = 0

  constructor(limit: number) {
    this.#limit = limit
  }

  get active(): number {
    return this.#active
  }

  get waiting(): number {
    return this.#waiting.length - this.#head
  }

  /** Runs `task` now or when a slot frees; resolves when it has finished, whether it resolved or rejected. */
  run(task: () => Promise<void>): Promise<void> {
    return new Promise((resolve) => this.runThen(task, resolve))
  }

  /**
   * As `run`, calling `after` instead of resolving a promise: the broker's hook runs this once per device publish,
   * and a promise per message more is garbage the whole gateway pays for.
   */
  runThen(task: () => Promise<void>, after: () => void): void {
    if (this.#active < this.#limit) this.#start(task, after)
    else this.#waiting.push(() => this.#start(task, after))
  }

  #start(task: () => Promise<void>, after: () => void): void {
    this.#active++
    // `after` first: a waiting task that fails at once must not be acknowledged before the one that finished.
    const done = (): void => {
      this.#active--
      try {
        after()
      } finally {
        this.#next()
      }
    }
    let running: Promise<void>
    try {
      running = task()
    } catch {
      done()
      return
    }
    running.then(done, done)
  }

  #next(): void {
    if (this.#head >= this.#waiting.length) return
    const start = this.#waiting[this.#head] as () => void
    this.#head++
    // Reset instead of shifting: a burst of thousands would otherwise shift the array thousands of times.
    if (this.#head === this.#waiting.length) {
      this.#waiting = []
      this.#head = 0
    }
    start()
  }
}

/** The two members of mqtt-packet 9's parser the packet limit hooks; aedes' Client holds the parser as `_parser`. */
interface LengthParser {
  packet: { length: number }
  _parseLength(): boolean
  _emitError(err: Error): void
}

/**
 * Makes the client's parser refuse a packet whose announced remaining length is over `maxBytes`, right after the
 * fixed header, before a byte of its body is buffered: mqtt-packet has no size limit of its own and would collect
 * up to 256 MiB per connection waiting for a packet to complete. The parser's error closes the connection (aedes'
 * client error handling). Returns false when the parser is not the one expected (an aedes or mqtt-packet upgrade
 * changed it): the caller then refuses the connection rather than run without the limit.
 */
export function limitPacketSize(client: Client, maxBytes: number, onRefused: () => void): boolean {
  const parser = (client as unknown as { _parser?: Partial<LengthParser> })._parser
  if (parser === undefined || typeof parser._parseLength !== 'function' || typeof parser._emitError !== 'function')
    return false
  const parseLength = parser._parseLength
  parser._parseLength = function (this: LengthParser): boolean {
    if (!parseLength.call(this)) return false
    if (this.packet.length <= maxBytes) return true
    onRefused()
    this._emitError(new Error(`packet of ${this.packet.length} bytes is over the limit of ${maxBytes}`))
    return false
  }
  return true
}
