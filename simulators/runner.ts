/**
 * Drives simulated devices against a real MQTT broker: one mqtt.js client per device, identified the way the real
 * firmware identifies itself, publishing `start()` then `tick()` messages through one shared pacer so the total
 * rate stays under `ratePerSecond`.
 */
import { setMaxListeners } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { connect } from 'mqtt'
import type { IClientOptions, MqttClient } from 'mqtt'
import { checkDeviceCount } from './canary.ts'
import { registry } from './registry.ts'
import type { ClientIdentity, SimDevice, SimMessage } from './types.ts'

export interface RunOptions {
  /** Broker URL, e.g. `mqtt://127.0.0.1:1883`. */
  url: string
  /** Profile names (keys of `profiles`); duplicates are ignored. */
  profiles: string[]
  /** Devices per profile. */
  devices: number
  /** Upper bound on messages per second across all devices, `start()` messages included. */
  ratePerSecond: number
  /** Default 1. The same seed replays the same payload sequence per device. */
  seed?: number
  /** Stop after this long (ms). */
  durationMs?: number
  /** Stop after this many acknowledged publishes; `published` then equals it exactly. */
  maxMessages?: number
  username?: string
  password?: string
  /** Per-device credentials (a broker with one account per device); wins over `username`/`password`. */
  credentialsFor?: (profile: string, device: SimDevice) => { username: string; password: string } | undefined
  /** Called after each publish completes (PUBACK for QoS 1, written to the socket for QoS 0). */
  onPublish?: (m: SimMessage) => void
  /** Connection and publish errors. Default: one stderr line per distinct error and device. */
  onError?: (error: Error, deviceId: string) => void
  signal?: AbortSignal
}

export interface RunResult {
  /** Publishes that completed (see `onPublish`). */
  published: number
}

export interface SimulatorRun {
  /** Resolves once every device has stopped and every client is closed; never rejects. */
  done: Promise<RunResult>
  /** Idempotent; resolves when `done` does. */
  stop(): Promise<void>
}

/** How long in-flight publishes may still complete after a stop before they are abandoned. */
const STOP_GRACE_MS = 2_000
/** How long a graceful DISCONNECT may take before the socket is destroyed. */
const CLOSE_TIMEOUT_MS = 2_000
const RECONNECT_PERIOD_MS = 1_000
const BROKER_PROTOCOLS = ['mqtt:', 'mqtts:', 'tcp:', 'tls:', 'ws:', 'wss:']

interface PlannedDevice {
  readonly profile: string
  readonly device: SimDevice
  readonly identity: (device: SimDevice, nowMs: number) => ClientIdentity
}

/**
 * Starts the simulators. Throws synchronously on invalid options, including an unknown profile name (the error
 * lists the valid ones); everything after that (refused connections, broker restarts) is reported via `onError`.
 */
export function runSimulators(opts: RunOptions): SimulatorRun {
  validate(opts)
  const run = new Run(opts, planDevices(opts))
  return { done: run.done, stop: () => run.stop() }
}

function validate(opts: RunOptions): void {
  const unknown = opts.profiles.filter((name) => !Object.hasOwn(registry, name))
  if (unknown.length > 0 || opts.profiles.length === 0) {
    const valid = Object.keys(registry).join(', ')
    throw new Error(`Unknown simulator profile(s): ${unknown.join(', ') || '(none given)'}; valid profiles: ${valid}`)
  }
  if (!URL.canParse(opts.url) || !BROKER_PROTOCOLS.includes(new URL(opts.url).protocol)) {
    throw new Error(`runSimulators: url must be a broker URL (${BROKER_PROTOCOLS.join(' ')}), got ${opts.url}`)
  }
  checkDeviceCount('runSimulators', opts.devices)
  if (opts.devices < 1) throw new RangeError('runSimulators: devices must be at least 1')
  if (!(Number.isFinite(opts.ratePerSecond) && opts.ratePerSecond > 0)) {
    throw new RangeError(`runSimulators: ratePerSecond must be a positive number, got ${opts.ratePerSecond}`)
  }
  if (opts.durationMs !== undefined && !(opts.durationMs >= 0)) {
    throw new RangeError(`runSimulators: durationMs must be >= 0, got ${opts.durationMs}`)
  }
  if (opts.maxMessages !== undefined && !(Number.isInteger(opts.maxMessages) && opts.maxMessages >= 0)) {
    throw new RangeError(`runSimulators: maxMessages must be an integer >= 0, got ${opts.maxMessages}`)
  }
}

function planDevices(opts: RunOptions): PlannedDevice[] {
  const seed = opts.seed ?? 1
  return [...new Set(opts.profiles)].flatMap((name) => {
    const entry = registry[name]
    if (entry === undefined) return []
    return entry.profile
      .createDevices(opts.devices, seed)
      .map((device) => ({ profile: name, device, identity: entry.identity }))
  })
}

/**
 * Hands out publish slots `intervalMs` apart, first come first served, shared by all devices. Slots closer than
 * 1 ms are granted at once because timers cannot wait less; the average rate still holds.
 */
class Pacer {
  #next = 0

  constructor(readonly intervalMs: number) {}

  async wait(signal: AbortSignal): Promise<boolean> {
    const now = performance.now()
    const slot = Math.max(now, this.#next)
    this.#next = slot + this.intervalMs
    if (slot - now < 1) return !signal.aborted
    try {
      await sleep(slot - now, undefined, { signal })
      return true
    } catch {
      return false
    }
  }
}

class Run {
  readonly done: Promise<RunResult>
  readonly #opts: RunOptions
  readonly #pacer: Pacer
  /** Aborted on stop: no new publishes start. */
  readonly #stopping = new AbortController()
  /** Aborted STOP_GRACE_MS after stop: in-flight publishes and pacer waits give up. */
  readonly #abandon = new AbortController()
  readonly #clients: MqttClient[] = []
  readonly #reported = new Map<string, string>()
  #graceTimer: NodeJS.Timeout | undefined
  #reserved = 0
  #published = 0

  constructor(opts: RunOptions, devices: readonly PlannedDevice[]) {
    this.#opts = opts
    this.#pacer = new Pacer(1000 / opts.ratePerSecond)
    // Every device waits on these signals at once (connect, pacer, publish): one listener each is expected.
    setMaxListeners(0, this.#stopping.signal, this.#abandon.signal)
    const disarm = this.#armStopConditions()
    this.done = Promise.allSettled(devices.map((planned) => this.#runDevice(planned)))
      .then((results) => this.#reportFailures(results, devices))
      .then(() => Promise.all(this.#clients.map(closeClient)))
      .then(() => {
        disarm()
        clearTimeout(this.#graceTimer)
        return { published: this.#published }
      })
  }

  async stop(): Promise<void> {
    this.#requestStop()
    await this.done
  }

  #requestStop(): void {
    if (this.#stopping.signal.aborted) return
    this.#stopping.abort()
    this.#graceTimer = setTimeout(() => this.#abandon.abort(), STOP_GRACE_MS)
  }

  /** Duration timer and external signal; returns a function that removes them once the run is over. */
  #armStopConditions(): () => void {
    const stop = (): void => this.#requestStop()
    const { durationMs, signal } = this.#opts
    const timer = durationMs === undefined ? undefined : setTimeout(stop, durationMs)
    if (signal?.aborted) stop()
    signal?.addEventListener('abort', stop, { once: true })
    if (this.#opts.maxMessages === 0) stop()
    return () => {
      if (timer !== undefined) clearTimeout(timer)
      signal?.removeEventListener('abort', stop)
    }
  }

  /** One device's lifetime; the loop ends when the run stops or the message budget is used up. */
  async #runDevice({ profile, device, identity }: PlannedDevice): Promise<void> {
    if (this.#stopping.signal.aborted) return
    const client = this.#connect(device, identity(device, Date.now()), this.#opts.credentialsFor?.(profile, device))
    if (!(await this.#whenConnected(client))) return
    if (!(await this.#publishBatch(client, device, device.start(Date.now())))) return
    while (!this.#stopping.signal.aborted) {
      const batch = device.tick(Date.now())
      // A quiet period still takes a slot, so a device with nothing to say cannot spin.
      const ok =
        batch.length === 0
          ? await this.#pacer.wait(this.#stopping.signal)
          : await this.#publishBatch(client, device, batch)
      if (!ok) return
    }
  }

  #connect(
    device: SimDevice,
    identity: ClientIdentity,
    credentials: { username: string; password: string } | undefined,
  ): MqttClient {
    const { url } = this.#opts
    const username = credentials?.username ?? this.#opts.username
    const password = credentials?.password ?? this.#opts.password
    const options: IClientOptions = {
      clientId: identity.clientId,
      clean: identity.clean,
      protocolVersion: 4,
      reconnectPeriod: RECONNECT_PERIOD_MS,
      connectTimeout: 10_000,
    }
    if (identity.will !== undefined) options.will = { ...identity.will }
    if (username !== undefined) options.username = username
    if (password !== undefined) options.password = password
    const client = connect(url, options)
    // mqtt.js keeps reconnecting on its own; errors are only reported, never thrown.
    client.on('error', (error) => this.#report(error, device.id))
    this.#clients.push(client)
    return client
  }

  #whenConnected(client: MqttClient): Promise<boolean> {
    if (client.connected) return Promise.resolve(true)
    const signal = this.#stopping.signal
    return new Promise((resolve) => {
      const finish = (ok: boolean): void => {
        client.off('connect', onConnect)
        signal.removeEventListener('abort', onAbort)
        resolve(ok)
      }
      const onConnect = (): void => finish(true)
      const onAbort = (): void => finish(false)
      client.once('connect', onConnect)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Publishes a batch in order, one pacer slot per message; false once the run should end. */
  async #publishBatch(client: MqttClient, device: SimDevice, batch: readonly SimMessage[]): Promise<boolean> {
    for (const message of batch) {
      if (!this.#reserve()) return false
      if (!(await this.#pacer.wait(this.#stopping.signal))) return false
      if (await this.#publish(client, device, message)) this.#onPublished(message, device)
    }
    return true
  }

  /** Claims one message of the budget before waiting, so concurrent devices never overshoot maxMessages. */
  #reserve(): boolean {
    const max = this.#opts.maxMessages
    if (this.#stopping.signal.aborted || (max !== undefined && this.#reserved >= max)) return false
    this.#reserved++
    return true
  }

  #publish(client: MqttClient, device: SimDevice, m: SimMessage): Promise<boolean> {
    const signal = this.#abandon.signal
    return new Promise((resolve) => {
      const onAbandon = (): void => resolve(false)
      signal.addEventListener('abort', onAbandon, { once: true })
      client.publish(m.topic, m.payload, { qos: m.qos, retain: m.retain }, (error) => {
        signal.removeEventListener('abort', onAbandon)
        if (error) this.#report(error, device.id)
        resolve(!error)
      })
    })
  }

  #onPublished(message: SimMessage, device: SimDevice): void {
    this.#published++
    try {
      this.#opts.onPublish?.(message)
    } catch (error) {
      this.#report(toError(error), device.id)
    }
    const max = this.#opts.maxMessages
    if (max !== undefined && this.#published >= max) this.#requestStop()
  }

  #reportFailures(results: readonly PromiseSettledResult<void>[], devices: readonly PlannedDevice[]): void {
    results.forEach((result, i) => {
      if (result.status === 'rejected') this.#report(toError(result.reason), devices[i]?.device.id ?? '?')
    })
  }

  /** Reconnect loops repeat the same error every second; report each distinct one once per device. */
  #report(error: Error, deviceId: string): void {
    if (this.#reported.get(deviceId) === error.message) return
    this.#reported.set(deviceId, error.message)
    if (this.#opts.onError !== undefined) this.#opts.onError(error, deviceId)
    else process.stderr.write(`simulator ${deviceId}: ${error.message}\n`)
  }
}

/** Graceful DISCONNECT (so the broker does not fire the will); destroys the socket if that stalls. */
async function closeClient(client: MqttClient): Promise<void> {
  // A client whose CONNECT is on the wire but not yet acknowledged would, if destroyed now, make the broker fire
  // its will: let it finish connecting (bounded), then disconnect cleanly.
  if (!client.connected && socketOpen(client)) await connectedWithin(client, CLOSE_TIMEOUT_MS)
  if (!client.connected) {
    await client.endAsync(true)
    return
  }
  const timeout = new AbortController()
  const graceful = client.endAsync(false).then(
    () => 'closed' as const,
    () => 'timeout' as const,
  )
  const timer = sleep(CLOSE_TIMEOUT_MS, 'timeout' as const, { signal: timeout.signal }).catch(() => 'closed' as const)
  const outcome = await Promise.race([graceful, timer])
  timeout.abort()
  if (outcome === 'timeout') client.stream.destroy()
}

function socketOpen(client: MqttClient): boolean {
  const stream = client.stream as { destroyed?: boolean; readyState?: string } | undefined
  return stream !== undefined && stream.destroyed !== true && stream.readyState === 'open'
}

function connectedWithin(client: MqttClient, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      client.off('connect', done)
      client.off('close', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    client.once('connect', done)
    client.once('close', done)
  })
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value))
}
