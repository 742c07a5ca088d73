/** Connection-level limits, as mosquitto's max_connections and EMQX's connection rate and flapping settings. */
export interface ConnectionLimits {
  /** Open connections across all listeners beyond which new sockets are closed at once. */
  readonly maxConnections: number
  /** New connections per address per second (token bucket refill rate). */
  readonly ratePerSecond: number
  /** Connections an address may open at once before the rate applies. */
  readonly burst: number
  /** A client that has not completed CONNECT by then is disconnected. */
  readonly connectTimeoutMs: number
  /** Delay before refusing a failed login; doubles with each further failure from the address, up to the maximum. */
  readonly failedLoginDelayMs: number
  readonly failedLoginMaxDelayMs: number
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConnections: 10_000,
  ratePerSecond: 10,
  burst: 50,
  connectTimeoutMs: 10_000,
  failedLoginDelayMs: 500,
  failedLoginMaxDelayMs: 30_000,
}

/** Bounds the per-address tables: a spoofed-address flood evicts old entries instead of growing memory. */
const MAX_TRACKED_ADDRESSES = 10_000
/** Failures older than this are forgotten. */
const FAILURE_MEMORY_MS = 15 * 60_000

interface Bucket {
  tokens: number
  at: number
}

export type ConnectionRefusal = 'max_connections' | 'rate_limited'

/**
 * Decides about new sockets (before any MQTT byte is read) and remembers failed logins per address. One instance
 * is shared by every listener, so the limits hold across TCP, TLS and WebSocket.
 */
export class ConnectionGuard {
  readonly limits: ConnectionLimits
  readonly #buckets = new Map<string, Bucket>()
  readonly #failures = new Map<string, { count: number; at: number }>()
  #open = 0

  constructor(limits: ConnectionLimits = DEFAULT_CONNECTION_LIMITS) {
    this.limits = limits
  }

  get open(): number {
    return this.#open
  }

  /** Call for each accepted socket; when it returns a refusal the caller closes the socket, else calls `closed()` later. */
  admit(address: string, now = Date.now()): ConnectionRefusal | undefined {
    if (this.#open >= this.limits.maxConnections) return 'max_connections'
    let bucket = this.#buckets.get(address)
    if (bucket === undefined) {
      bucket = { tokens: this.limits.burst, at: now }
      remember(this.#buckets, address, bucket)
    } else {
      bucket.tokens = Math.min(
        this.limits.burst,
        bucket.tokens + ((now - bucket.at) / 1000) * this.limits.ratePerSecond,
      )
      bucket.at = now
    }
    if (bucket.tokens < 1) return 'rate_limited'
    bucket.tokens -= 1
    this.#open++
    return undefined
  }

  closed(): void {
    this.#open--
  }

  /** Records a failed login and returns how long to wait before answering it. */
  failedLogin(address: string, now = Date.now()): number {
    const previous = this.#failures.get(address)
    const count = previous === undefined || now - previous.at > FAILURE_MEMORY_MS ? 1 : previous.count + 1
    remember(this.#failures, address, { count, at: now })
    return Math.min(this.limits.failedLoginMaxDelayMs, this.limits.failedLoginDelayMs * 2 ** Math.min(count - 1, 30))
  }

  succeededLogin(address: string): void {
    this.#failures.delete(address)
  }
}

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key)
  if (map.size >= MAX_TRACKED_ADDRESSES) {
    const oldest = map.keys().next().value
    if (oldest !== undefined) map.delete(oldest)
  }
  map.set(key, value)
}
