import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import mqtt, { type IClientOptions, type IClientPublishOptions, type MqttClient } from 'mqtt'
import type { Category, Domain } from '../sdk/model.ts'
import type { Logger } from '../telemetry/log.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { mayTransition, type BridgeState } from './bridge-state.ts'
import { FlowControl } from './flow-control.ts'
import { PoisonDetector } from './poison.ts'
import type { ConsentDropReason } from '../consent/book.ts'
import type { FrameKeys } from './queue/frame.ts'
import { UpstreamQueue, type QueueConfig, type QueueDropReason, type Taken } from './queue/upstream-queue.ts'

export type { BridgeState } from './bridge-state.ts'
export { MAX_DELIVERY_ATTEMPTS } from './poison.ts'

export interface UpstreamConfig {
  readonly url: string
  /** 5 stamps outputs with MQTT 5 user properties; 4 (3.1.1) for brokers such as aedes 1.x. */
  readonly protocolVersion: 4 | 5
  readonly topicPrefix: string
  readonly required: boolean
  readonly username?: string | undefined
  readonly password?: string | undefined
  /**
   * The in-flight window: messages (and payload bytes) handed to the upstream connection and awaiting its PUBACK.
   * The backlog waits on disk; only this window is ever in memory.
   */
  readonly maxPending: number
  readonly maxPendingBytes: number
  /** PEM file of the CA that signs the upstream's certificate (a private CA); the system's CAs otherwise. */
  readonly ca?: string | undefined
  /** Verify the upstream's certificate and host name; true unless the configuration says otherwise. */
  readonly rejectUnauthorized?: boolean | undefined
  /** Where the upstream is, for subjects that limit their regions (`residency`); undefined: not declared. */
  readonly region?: string | undefined
}

/** The `reconnect` section: jittered exponential backoff between connection attempts to an upstream. */
export interface ReconnectConfig {
  readonly minMs: number
  readonly maxMs: number
}

export const DEFAULT_RECONNECT: ReconnectConfig = { minMs: 500, maxMs: 30_000 }

export interface BridgeOptions {
  readonly domain: Domain
  readonly config: UpstreamConfig
  readonly queue: QueueConfig
  readonly reconnect: ReconnectConfig
  readonly dataDir: string
  readonly metrics: Metrics
  readonly logger: Logger
  /** Messages that left the queue without reaching the upstream (expired, evicted, refused, unreadable, no consent). */
  readonly onDrop: (
    category: Category,
    reason: QueueDropReason | 'upstream_error' | ConsentDropReason,
    count: number,
  ) => void
  /**
   * Asked for each queued copy right before it is sent: why its subject's consent no longer lets it leave for this
   * domain (withdrawn, region, minor), or undefined. Such a copy is dropped, never sent.
   */
  readonly consentBlocks?: (category: Category, subject: string, purpose: string) => ConsentDropReason | undefined
  /** One message acknowledged by the upstream (PUBACK). */
  readonly onDelivered: (category: Category) => void
  /** The subjects' data keys: the queue is encrypted at rest under them (absent: in the clear, for tests). */
  readonly subjectKeys?: FrameKeys | undefined
}

/**
 * The wait before connection attempt `attempt + 1`: a ceiling doubling from `minMs` up to `maxMs`, with equal
 * jitter (at least half the ceiling), so a fleet of gateways does not hammer a recovering broker in step.
 */
export function backoffDelay(attempt: number, reconnect: ReconnectConfig, random: () => number = Math.random): number {
  const ceiling = Math.min(reconnect.maxMs, reconnect.minMs * 2 ** Math.min(attempt, 30))
  return Math.round(ceiling / 2 + random() * (ceiling / 2))
}

const MQTTJS_DEBUG = /mqttjs|^\*$|,\*/.test(process.env.DEBUG ?? '')
const noTrace = (): void => {}

/** A PUBACK reason code of 0x80 or more: the upstream refused the message, and sending it again would not help. */
function isRefusal(err: Error): boolean {
  const code = (err as Error & { code?: unknown }).code
  return typeof code === 'number' && code >= 0x80
}

/**
 * One recipient domain's upstream. Filtered messages are appended to a durable queue on disk
 * (`<dataDir>/queue/<domain>/`, see queue/README.md) before the device is acknowledged; the bridge sends from the
 * queue over mqtt.js at QoS 1, at most `maxPending` messages at a time, and a message leaves the queue only on the
 * upstream's PUBACK. Every new connection starts again from the acknowledgement cursor, in order, so delivery is
 * at least once and in order per device. mqtt.js never holds more than the window: it is handed messages only
 * while connected, and each connection is a fresh client, so nothing piles up in its offline queue or store.
 */
export class UpstreamBridge {
  readonly domain: Domain
  readonly config: UpstreamConfig
  readonly #options: BridgeOptions
  readonly #queue: UpstreamQueue
  readonly #log: Logger
  readonly #connectedGauge: { set(value: number): void }
  readonly #reconnects: { inc(): void }
  #client: MqttClient | undefined
  /** Bumped per connection: callbacks of an older connection's publishes are ignored. */
  #generation = 0
  /** Changed only through #enter; the states and transitions are in bridge-state.ts. */
  #state: BridgeState = 'connecting'
  readonly #poison = new PoisonDetector()
  readonly #flow: FlowControl
  #attempt = 0
  #retryTimer: NodeJS.Timeout | undefined
  #outstanding = 0
  #outstandingBytes = 0
  #pumpScheduled = false
  #stopping = false
  /** Acknowledgements on the current connection: a connection lost without one may have been closed by a message. */
  #ackedOnConnection = 0
  readonly #idle: (() => void)[] = []
  /** The queue batch enqueueBatched last saw: its write error is logged once, not once per message. */
  #lastBatch: Promise<Error | undefined> | undefined
  /** The upstream's private CA, read once at start: a missing file stops the start, not a reconnect. */
  readonly #ca: Buffer | undefined

  constructor(options: BridgeOptions) {
    this.domain = options.domain
    this.config = options.config
    this.#options = options
    this.#flow = new FlowControl(options.queue.flowControl, options.config.maxPending)
    this.#log = options.logger.child({ domain: options.domain })
    this.#ca = options.config.ca === undefined ? undefined : readFileSync(options.config.ca)
    const { metrics, domain } = options
    this.#queue = new UpstreamQueue(
      join(options.dataDir, 'queue', domain),
      options.queue,
      (category, reason, count) => {
        if (reason !== 'corrupt')
          this.#log.warn({ event: `queue_${reason}`, category, count }, `queued messages ${reason}`)
        else this.#log.error({ event: 'queue_corrupt', category, count }, 'unreadable queued messages skipped')
        options.onDrop(category, reason, count)
      },
      Date.now,
      options.subjectKeys === undefined ? undefined : { keys: options.subjectKeys, domain },
    )
    for (const r of this.#queue.recovered) {
      if (r.messages > 0 || r.truncatedBytes > 0)
        this.#log.info({ event: 'queue_recovered', ...r }, 'queued messages recovered from disk')
    }
    // Straight to the pump: appends reach the kernel in a setImmediate of their own (one per batch), and scheduling
    // another would hold every fresh message back a whole turn of the event loop, the device reads of that turn
    // included, before it goes upstream. PUBACKs, many per turn, still coalesce through #schedulePump.
    this.#queue.onAppended = () => this.#pump()
    this.#connectedGauge = metrics.upstreamConnected.labels(domain)
    this.#reconnects = metrics.upstreamReconnects.labels(domain)
    this.#connectedGauge.set(0)
    const depth = metrics.upstreamPending.labels(domain)
    const bytes = metrics.upstreamPendingBytes.labels(domain)
    const oldest = metrics.upstreamOldestSeconds.labels(domain)
    const inflight = metrics.upstreamInflight.labels(domain)
    // Gauges read at scrape time: nothing on the per-message path.
    metrics.onCollect(() => {
      depth.set(this.#queue.depth)
      bytes.set(this.#queue.bytes)
      oldest.set(this.#queue.oldestAgeMs / 1000)
      inflight.set(this.#outstanding)
    })
    this.#connect()
  }

  get connected(): boolean {
    return this.#state === 'connected'
  }

  get state(): BridgeState {
    return this.#state
  }

  /** Messages in the durable queue not yet acknowledged by the upstream. */
  get pending(): number {
    return this.#queue.depth
  }

  get queuedBytes(): number {
    return this.#queue.bytes
  }

  get oldestAgeMs(): number {
    return this.#queue.oldestAgeMs
  }

  get inflight(): number {
    return this.#outstanding
  }

  /**
   * Appends a filtered message to the durable queue, without a promise of its own per message: `queue_full` or
   * `queue_error` at once, else the promise of the queue's current batch (shared by every message appended in this turn), which
   * never rejects and resolves to undefined once the batch is with the kernel, or to the error that kept it from
   * the disk (logged here once per batch; the caller counts each message's drop).
   */
  enqueueBatched(
    topic: string,
    payload: Buffer,
    category: Category,
    policyVersion: string,
    contentType?: string,
    subject?: string,
    purpose?: string,
  ): 'queue_full' | 'queue_error' | Promise<Error | undefined> {
    let appended: 'queue_full' | Promise<Error | undefined>
    try {
      appended = this.#queue.appendSettled(category, topic, policyVersion, payload, contentType, subject, purpose)
    } catch (err) {
      this.#log.error(
        { event: 'queue_write_failed', category, err: (err as Error).message },
        'cannot write to the upstream queue',
      )
      return 'queue_error'
    }
    if (appended !== 'queue_full' && appended !== this.#lastBatch) {
      this.#lastBatch = appended
      appended.then((err) => {
        if (err !== undefined)
          this.#log.error(
            { event: 'queue_write_failed', category, err: err.message },
            'cannot write to the upstream queue',
          )
      })
    }
    return appended
  }

  /**
   * Undefined unless this upstream is connected, acknowledging, and more than BACKLOG_HIGH_WINDOWS in-flight
   * windows of messages wait unsent; then a promise (shared by every caller) that resolves once BACKLOG_LOW_WINDOWS
   * or less wait, the connection is lost or closed, or the upstream has acknowledged nothing for STALL_MS. The gateway
   * awaits it before running a device publish through the pipeline: the device's PUBACK, and so its next publish,
   * waits with it.
   */
  catchUp(): Promise<void> | undefined {
    return this.#flow.catchUp({
      live: this.#state === 'connected' && !this.#stopping,
      outstanding: this.#outstanding,
      depth: this.#queue.depth,
    })
  }

  /**
   * At shutdown, before the gateway drains its pipeline into the queues: nobody waits for this upstream any more,
   * so messages held by flow control reach the queue within the drain instead of meeting a closed one.
   */
  stopPacing(): void {
    this.#flow.stop()
  }

  /** Every change of state goes through here, so the gauge follows it and no transition is outside the table. */
  #enter(next: BridgeState): void {
    if (!mayTransition(this.#state, next))
      this.#log.error(
        { event: 'bridge_state_invalid', from: this.#state, to: next },
        'unexpected upstream bridge state change',
      )
    this.#state = next
    this.#connectedGauge.set(next === 'connected' ? 1 : 0)
  }

  #connect(): void {
    if (this.#stopping) return
    const generation = ++this.#generation
    this.#enter('connecting')
    const { config } = this
    const options: IClientOptions = {
      protocolVersion: config.protocolVersion,
      clientId: `veil-${this.domain}-${randomBytes(4).toString('hex')}`,
      clean: true,
      // Reconnection is ours (jittered backoff, a fresh client each time): see the class comment.
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      username: config.username,
      password: config.password,
      // mqtts:// and wss://: an upstream whose certificate does not verify is never sent a message.
      rejectUnauthorized: config.rejectUnauthorized !== false,
    }
    // mqtt.js traces every packet through `debug` (about ten calls per publish, each checking whether its namespace
    // is enabled: 2 % of the gateway's time flat out). Off unless DEBUG asks for it, as `debug` itself would be.
    if (!MQTTJS_DEBUG) options.log = noTrace
    if (this.#ca !== undefined) options.ca = this.#ca
    const client = mqtt.connect(config.url, options)
    this.#client = client
    client.on('connect', () => {
      if (generation !== this.#generation) return
      this.#enter('connected')
      this.#flow.progressed()
      // A connection that the upstream keeps closing before it acknowledges anything is no recovery: while probing,
      // the backoff keeps growing until a message is acknowledged.
      if (!this.#poison.probing) this.#attempt = 0
      this.#log.info({ event: 'upstream_connected', queued: this.#queue.depth }, 'upstream connected')
      this.#outstanding = 0
      this.#outstandingBytes = 0
      this.#ackedOnConnection = 0
      this.#queue.rewind()
      this.#pump()
    })
    client.on('close', () => {
      if (generation !== this.#generation) return
      this.#lost(client)
    })
    // The URL may carry credentials: log the error class, never the URL.
    client.on('error', (err) => this.#log.warn({ event: 'upstream_error', err: err.message }, 'upstream error'))
  }

  #lost(client: MqttClient): void {
    const wasConnected = this.#state === 'connected'
    if (wasConnected && this.#ackedOnConnection === 0 && this.#outstanding > 0) this.#lostUnacknowledged()
    this.#generation++
    this.#outstanding = 0
    this.#outstandingBytes = 0
    client.end(true)
    this.#flow.release()
    for (const resolve of this.#idle.splice(0)) resolve()
    if (this.#stopping) {
      this.#enter('closed')
      return
    }
    const delay = backoffDelay(this.#attempt, this.#options.reconnect)
    this.#attempt++
    this.#enter('backoff')
    if (wasConnected)
      this.#log.warn(
        { event: 'upstream_disconnected', queued: this.#queue.depth, retryMs: delay },
        'upstream disconnected; reconnecting',
      )
    else
      this.#log.debug(
        { event: 'upstream_retry', attempt: this.#attempt, retryMs: delay },
        'upstream unreachable; retrying',
      )
    this.#reconnects.inc()
    this.#retryTimer = setTimeout(() => this.#connect(), delay)
  }

  /** A connection was lost with messages in flight and none acknowledged: see PoisonDetector. */
  #lostUnacknowledged(): void {
    const verdict = this.#poison.lostUnacknowledged()
    if (verdict.kind === 'refuses_everything') {
      if (verdict.first) {
        this.#log.error(
          { event: 'upstream_refuses_everything', queued: this.#queue.depth },
          'the upstream closes the connection on every message; holding the queue until it takes one',
        )
      }
    } else if (verdict.kind === 'drop') {
      this.#log.error(
        { event: 'upstream_closes_on_message', category: verdict.category, attempts: verdict.attempts },
        'the upstream closed the connection on the same message every time it was sent; dropped it',
      )
      this.#queue.ack(verdict.category, verdict.seq)
      this.#options.onDrop(verdict.category, 'upstream_error', 1)
    }
  }

  #schedulePump(): void {
    if (this.#pumpScheduled || this.#state !== 'connected') return
    this.#pumpScheduled = true
    setImmediate(() => {
      this.#pumpScheduled = false
      this.#pump()
    })
  }

  /** Fills the in-flight window from the queue, oldest first. */
  #pump(): void {
    const client = this.#client
    if (this.#state !== 'connected' || this.#stopping || client === undefined) return
    const generation = this.#generation
    const window = this.#poison.window(this.config.maxPending)
    while (this.#outstanding < window && this.#outstandingBytes < this.config.maxPendingBytes) {
      const taken = this.#queue.take()
      if (taken === undefined) break
      const blocked = this.#options.consentBlocks?.(taken.category, taken.message.subject, taken.message.purpose)
      if (blocked !== undefined) {
        // Withdrawn while it waited: acknowledged locally, so it leaves the queue without ever being sent.
        this.#queue.ack(taken.category, taken.message.seq)
        this.#options.onDrop(taken.category, blocked, 1)
        continue
      }
      this.#poison.sending(taken.category, taken.message.seq)
      this.#send(client, generation, taken)
    }
    // Acknowledgements free the window before the pump refills it: the backlog is measured after the refill.
    this.#flow.refilled(this.#queue.depth - this.#outstanding)
  }

  #send(client: MqttClient, generation: number, { category, message }: Taken): void {
    const size = message.payload.length
    this.#outstanding++
    this.#outstandingBytes += size
    const options: IClientPublishOptions = { qos: 1, retain: false }
    if (this.config.protocolVersion === 5) {
      options.properties = {
        contentType: message.contentType,
        userProperties: { 'veil-policy': message.policy, 'veil-category': category },
      }
    }
    client.publish(`${this.config.topicPrefix}${message.topic}`, message.payload, options, (err) => {
      if (generation !== this.#generation) return
      this.#outstanding--
      this.#outstandingBytes -= size
      if (err === undefined || err === null) {
        this.#queue.ack(category, message.seq)
        this.#ackedOnConnection++
        // The upstream takes messages again: back to the full window, and the backoff starts over.
        this.#poison.acknowledged()
        this.#attempt = 0
        this.#options.onDelivered(category)
      } else if (isRefusal(err)) {
        // Retrying a refused message would block everything behind it: drop it, counted and audited.
        this.#log.warn({ event: 'upstream_refused', category, err: err.message }, 'upstream refused a message')
        this.#queue.ack(category, message.seq)
        this.#options.onDrop(category, 'upstream_error', 1)
      } else {
        // The connection failed under it: the next connection sends it again from the cursor.
        return
      }
      this.#flow.progressed()
      if (this.#outstanding === 0) for (const resolve of this.#idle.splice(0)) resolve()
      this.#schedulePump()
    })
  }

  /**
   * Stops sending, gives the upstream up to `graceMs` to acknowledge what is in flight (fewer duplicates after the
   * restart), then closes the connection and the queue (cursor written, files synced). The backlog stays on disk.
   */
  async close(graceMs = 2000): Promise<void> {
    if (this.#stopping) return
    this.#stopping = true
    this.#flow.release()
    clearTimeout(this.#retryTimer)
    if (this.#outstanding > 0 && this.#state === 'connected') {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs)
        this.#idle.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    this.#generation++
    this.#enter('closed')
    const client = this.#client
    if (client !== undefined) await new Promise<void>((resolve) => client.end(true, {}, () => resolve()))
    await this.#queue.close()
  }
}
