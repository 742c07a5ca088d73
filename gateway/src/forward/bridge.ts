import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import mqtt, { type IClientOptions, type IClientPublishOptions, type MqttClient } from 'mqtt'
import type { Category, Domain } from '../model.ts'
import type { Logger } from '../telemetry/log.ts'
import type { Metrics } from '../telemetry/metrics.ts'

export interface UpstreamConfig {
  readonly url: string
  /** 5 stamps outputs with MQTT 5 user properties; 4 (3.1.1) for brokers such as aedes 1.x. */
  readonly protocolVersion: 4 | 5
  readonly topicPrefix: string
  readonly required: boolean
  readonly username?: string | undefined
  readonly password?: string | undefined
  /** Messages awaiting PUBACK beyond which new ones are dropped and counted, keeping memory bounded. */
  readonly maxPending: number
  readonly maxPendingBytes: number
  /** PEM file of the CA that signs the upstream's certificate (a private CA); the system's CAs otherwise. */
  readonly ca?: string | undefined
  /** Verify the upstream's certificate and host name; true unless the configuration says otherwise. */
  readonly rejectUnauthorized?: boolean | undefined
}

export type EnqueueResult = 'queued' | 'queue_full'

/**
 * One recipient domain's upstream: an mqtt.js client publishing filtered messages at QoS 1. mqtt.js keeps every
 * unacknowledged QoS 1 packet in its outgoing store and resends it after a reconnect, so nothing is lost while the
 * process runs; the durable on-disk queue arrives with the store-and-forward work. What is pending is bounded by
 * count and bytes: past either bound a message is dropped and counted, never held without limit.
 */
export class UpstreamBridge {
  readonly domain: Domain
  readonly config: UpstreamConfig
  readonly #client: MqttClient
  readonly #pendingGauge: { set(value: number): void }
  readonly #pendingBytesGauge: { set(value: number): void }
  #pending = 0
  #pendingBytes = 0
  #connected = false
  #closing = false
  readonly #drained: (() => void)[] = []

  constructor(domain: Domain, config: UpstreamConfig, metrics: Metrics, logger: Logger) {
    this.domain = domain
    this.config = config
    // Bound once: every enqueue and every PUBACK updates them.
    this.#pendingGauge = metrics.upstreamPending.labels(domain)
    this.#pendingBytesGauge = metrics.upstreamPendingBytes.labels(domain)
    const options: IClientOptions = {
      protocolVersion: config.protocolVersion,
      clientId: `veil-${domain}-${randomBytes(4).toString('hex')}`,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      // Queue QoS 1 publishes made while disconnected instead of failing them; bounded by maxPending above.
      queueQoSZero: false,
      username: config.username,
      password: config.password,
      // mqtts:// and wss://: an upstream whose certificate does not verify is never sent a message.
      rejectUnauthorized: config.rejectUnauthorized !== false,
    }
    if (config.ca !== undefined) options.ca = readFileSync(config.ca)
    const log = logger.child({ domain })
    metrics.upstreamConnected.labels(domain).set(0)
    this.#client = mqtt.connect(config.url, options)
    this.#client.on('connect', () => {
      this.#connected = true
      metrics.upstreamConnected.labels(domain).set(1)
      log.info({ event: 'upstream_connected' }, 'upstream connected')
    })
    this.#client.on('close', () => {
      if (this.#connected && !this.#closing) log.warn({ event: 'upstream_disconnected' }, 'upstream disconnected; reconnecting')
      this.#connected = false
      metrics.upstreamConnected.labels(domain).set(0)
    })
    // The URL may carry credentials: log the error class, never the URL.
    this.#client.on('error', (err) => log.warn({ event: 'upstream_error', err: err.message }, 'upstream error'))
  }

  get connected(): boolean {
    return this.#connected
  }

  get pending(): number {
    return this.#pending
  }

  /** Hands a filtered message to the upstream; `onSettled` runs after the PUBACK (or a final failure). */
  enqueue(topic: string, payload: Buffer, category: Category, policyVersion: string, onSettled?: (err?: Error) => void): EnqueueResult {
    if (this.#pending >= this.config.maxPending || this.#pendingBytes + payload.length > this.config.maxPendingBytes) {
      return 'queue_full'
    }
    this.#pending++
    this.#pendingBytes += payload.length
    this.#updateGauges()
    const options: IClientPublishOptions = { qos: 1, retain: false }
    if (this.config.protocolVersion === 5) {
      options.properties = { contentType: 'application/json', userProperties: { 'veil-policy': policyVersion, 'veil-category': category } }
    }
    this.#client.publish(`${this.config.topicPrefix}${topic}`, payload, options, (err) => {
      this.#pending--
      this.#pendingBytes -= payload.length
      this.#updateGauges()
      if (this.#pending === 0) for (const resolve of this.#drained.splice(0)) resolve()
      onSettled?.(err ?? undefined)
    })
    return 'queued'
  }

  #updateGauges(): void {
    this.#pendingGauge.set(this.#pending)
    this.#pendingBytesGauge.set(this.#pendingBytes)
  }

  /** Resolves once every pending message was acknowledged, or after `timeoutMs`. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.#pending === 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs)
      this.#drained.push(() => {
        clearTimeout(timer)
        resolve(true)
      })
    })
  }

  close(): Promise<void> {
    this.#closing = true
    return new Promise((resolve) => this.#client.end(false, {}, () => resolve()))
  }
}
