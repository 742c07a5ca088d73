import type { EventEmitter } from 'node:events'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { AddressInfo } from 'node:net'
import type { SecureContextOptions, TlsOptions } from 'node:tls'
import { Aedes, type Client, type PublishPacket } from 'aedes'
import type { AccessControl } from '../auth/access.ts'
import type { Authenticator } from '../auth/authenticate.ts'
import type { ConnectionGuard } from '../auth/guard.ts'
import type { Account } from '../auth/store.ts'
import type { Logger } from '../telemetry/log.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import {
  authenticate,
  authorizeForward,
  authorizePublish,
  authorizeSubscribe,
  clientDisconnected,
  clientReady,
  FILTERED_PREFIX,
  isFilteredOnly,
  newHookState,
  preConnect,
  type HookContext,
  type RawPublishHandler,
} from './hooks.ts'
import { DEFAULT_INFLIGHT_PER_CLIENT, limitPacketSize, packetLimitFor, type IngestLimits } from './limits.ts'
import { DEFAULT_LIMITS } from '../pipeline/pipeline.ts'
import { openListener, type ListenerSpec, type OpenListener } from './listeners.ts'

export { listen } from './listeners.ts'
export { isFilteredOnly, type RawPublishHandler } from './hooks.ts'

export interface BrokerOptions {
  readonly host: string
  readonly port: number
  readonly flag: string
  readonly logger: Logger
  readonly metrics: Metrics
  readonly onRawPublish: RawPublishHandler
  /** Per-connection message limits; defaults when absent. */
  readonly limits?: IngestLimits
  /**
   * Called when a packet is refused before the pipeline sees it, and the connection closed: one over
   * `limits.packetBytes` (by the parser), or a publish whose topic has more levels than aedes' ceiling of 100.
   */
  readonly onPacketRefused?: (reason: 'packet_too_large' | 'too_many_topic_levels') => void
  readonly security: BrokerSecurity
}

/** Who may connect and what each client may do; see gateway/src/auth/README.md. */
export interface BrokerSecurity {
  readonly authenticator: Authenticator
  readonly access: AccessControl
  readonly guard: ConnectionGuard
  /** Listeners beside the primary TCP one (`host`/`port`): TLS, WebSocket, secure WebSocket. */
  readonly listeners: readonly ListenerSpec[]
  readonly tls: (TlsOptions & SecureContextOptions) | undefined
  /** A publish that was acknowledged but dropped because its client may not publish there. */
  readonly onPublishRefused: () => void
}

/** aedes 1.2's error for a PUBLISH topic over its maxTopicLevels (lib/handlers/publish.js). */
const AEDES_TOO_MANY_LEVELS = 'topic has too many levels'
/**
 * True for a subscription filter that could match some topic of the filtered namespace: first level `veil`, `+` or
 * `#`. Wider than what the access rules grant today (a raw-topic filter of auth.localRawTopics may start with `+`),
 * so a grant added later cannot make {@link LocalSubscriptions} skip a copy someone would receive.
 */
export function mayMatchFiltered(filter: string): boolean {
  if (isFilteredOnly(filter)) return true
  const c = filter.charCodeAt(0)
  return c === 0x2b || c === 0x23
}

/**
 * The subscriptions that could receive a filtered copy, per client id, so that `publishFiltered` can skip aedes'
 * publish path (a packet, its persistence lookup for offline sessions, mqemitter and qlobber: three publishes per
 * device message with two domains) when no local client could receive it. Kept from aedes' events:
 * - 'subscribe' adds the granted filters (after aedes added them to its matcher);
 * - 'unsubscribe' removes them; aedes emits it for an UNSUBSCRIBE and for every filter of a clean session when it
 *   ends (after it removed them from its matcher), never when a persistent session's connection ends: those
 *   subscriptions stay, aedes queues QoS > 0 copies for them while the client is away and restores them, without a
 *   'subscribe' event, when it returns, so they stay counted here too;
 * - 'client' (a connection registered) with a clean session: aedes has dropped that id's stored subscriptions
 *   (and closed any earlier connection of the id) before, so the id starts empty.
 * Any doubt errs towards publishing: a filter that is never removed only costs the publish it would have saved.
 */
export class LocalSubscriptions {
  readonly #byClient = new Map<string, Set<string>>()
  /** Filters naming one domain (`veil/<domain>/...`), by that domain; the rest could match any domain's copies. */
  readonly #byDomain = new Map<string, number>()
  #anyDomain = 0
  #count = 0

  /** Whether a client (connected, or a persistent session away) holds a filter that could match `domain`'s copies. */
  mayReceive(domain: string): boolean {
    return this.#anyDomain > 0 || (this.#byDomain.get(domain) ?? 0) > 0
  }

  get count(): number {
    return this.#count
  }

  subscribed(clientId: string, filters: readonly { topic: string; qos: number }[]): void {
    for (const f of filters) {
      // 128: refused by authorizeSubscribe (aedes reports refused filters in the same event).
      if (f.qos === 128 || !mayMatchFiltered(f.topic)) continue
      let set = this.#byClient.get(clientId)
      if (set === undefined) this.#byClient.set(clientId, (set = new Set()))
      if (!set.has(f.topic)) {
        set.add(f.topic)
        this.#add(f.topic, 1)
      }
    }
  }

  unsubscribed(clientId: string, filters: readonly string[]): void {
    const set = this.#byClient.get(clientId)
    if (set === undefined) return
    for (const f of filters) if (set.delete(f)) this.#add(f, -1)
    if (set.size === 0) this.#byClient.delete(clientId)
  }

  /** A clean session began under `clientId`: whatever that id held before is gone from aedes. */
  cleanSession(clientId: string): void {
    const set = this.#byClient.get(clientId)
    if (set === undefined) return
    for (const f of set) this.#add(f, -1)
    this.#byClient.delete(clientId)
  }

  #add(filter: string, delta: 1 | -1): void {
    this.#count += delta
    const domain = domainOf(filter)
    if (domain === undefined) this.#anyDomain += delta
    else {
      const n = (this.#byDomain.get(domain) ?? 0) + delta
      if (n === 0) this.#byDomain.delete(domain)
      else this.#byDomain.set(domain, n)
    }
  }
}

/** The domain a filter names as its second level under `veil/`, or undefined when it could match several. */
function domainOf(filter: string): string | undefined {
  if (!filter.startsWith(FILTERED_PREFIX)) return undefined
  const end = filter.indexOf('/', FILTERED_PREFIX.length)
  const level = end < 0 ? filter.slice(FILTERED_PREFIX.length) : filter.slice(FILTERED_PREFIX.length, end)
  return level === '+' || level === '#' ? undefined : level
}

/**
 * The device-facing broker. Everything aedes-specific lives here so the move to aedes 2 (MQTT 5) touches one file.
 *
 * Raw containment: aedes runs a publish as storeRetained -> emitPacket -> published, so raw data must be stopped
 * before it is stored or delivered, not in `published`:
 * - authorizePublish runs the pipeline and clears `retain` on every device publish: the broker never stores a
 *   raw retained copy;
 * - authorizeSubscribe grants each account's filters only (auth/access.ts): `veil/` for consumers (their domain),
 *   local and anonymous clients, command topics for devices;
 * - authorizeForward delivers to network clients packets Veil published itself under `veil/` (aedes stamps a
 *   device's packets with its clientId in emitPacket), which also catches `#`; a client's own packet only where
 *   the access rules allow it (a command to its device, a raw topic named in auth.localRawTopics), decided again
 *   from the publisher's account, so a publish refused in authorizePublish reaches nobody.
 *
 * Message limits (limits.ts): the parser refuses a packet far over the payload limit as soon as its header is read,
 * and at most `inflightPerClient` publishes of one client are in the pipeline at once.
 */
export class DeviceBroker {
  readonly aedes: Aedes
  readonly #listeners: readonly OpenListener[]
  readonly #options: BrokerOptions
  readonly #accounts: WeakMap<Client, Account>
  readonly #subscriptions: LocalSubscriptions
  readonly #handle: (stream: Duplex) => void

  private constructor(
    aedes: Aedes,
    listeners: readonly OpenListener[],
    options: BrokerOptions,
    accounts: WeakMap<Client, Account>,
    subscriptions: LocalSubscriptions,
    handle: (stream: Duplex) => void,
  ) {
    this.aedes = aedes
    this.#listeners = listeners
    this.#options = options
    this.#accounts = accounts
    this.#subscriptions = subscriptions
    this.#handle = handle
  }

  static async start(options: BrokerOptions): Promise<DeviceBroker> {
    const { logger, metrics, security } = options
    const limits = options.limits ?? {
      inflightPerClient: DEFAULT_INFLIGHT_PER_CLIENT,
      packetBytes: packetLimitFor(DEFAULT_LIMITS),
    }
    const state = newHookState(limits.inflightPerClient)
    // Set once aedes exists; no publish reaches a hook before then.
    let created: Aedes | undefined
    const context: HookContext = {
      logger,
      metrics,
      authenticator: security.authenticator,
      access: security.access,
      onRawPublish: options.onRawPublish,
      onPublishRefused: security.onPublishRefused,
      incomingGetPacket: (client, packet) =>
        created === undefined
          ? Promise.reject(new Error('broker not started'))
          : persistenceOf(created).incomingGetPacket(client, packet),
    }
    const aedes = await Aedes.createBroker({
      id: 'veil',
      connectTimeout: security.guard.limits.connectTimeoutMs,
      maxClientsIdLength: 128,
      preConnect: (client, packet, callback) => preConnect(state, client, packet, callback),
      authenticate: (client, username, password, callback) =>
        authenticate(context, state, client, username, password, callback),
      authorizePublish: (client, packet, callback) => authorizePublish(context, state, client, packet, callback),
      authorizeSubscribe: (client, subscription, callback) =>
        authorizeSubscribe(context, state, client, subscription, callback),
      authorizeForward: (client, packet) => authorizeForward(context, state, client, packet),
    })
    created = aedes
    // aedes reports persistence failures and refused will replays as 'error'; without a listener they would crash.
    ;(aedes as EventEmitter).on('error', (err: Error) =>
      logger.error({ event: 'broker_error', err: err.message }, 'broker error'),
    )
    const subscriptions = new LocalSubscriptions()
    aedes.on('subscribe', (subs, client) => subscriptions.subscribed(client.id, subs))
    aedes.on('unsubscribe', (unsubs, client) => subscriptions.unsubscribed(client.id, unsubs))
    aedes.on('client', (client) => {
      metrics.clientsConnected.inc()
      if (client.clean) subscriptions.cleanSession(client.id)
    })
    aedes.on('clientReady', (client) => clientReady(state, client))
    aedes.on('clientDisconnect', (client) => {
      metrics.clientsConnected.dec()
      clientDisconnected(state, client)
    })
    aedes.on('clientError', (_client, err) => {
      // aedes refuses a publish past its 100 topic levels (qlobber's ceiling) by closing the connection, before
      // authorizePublish: count it here, as the pipeline counts one past limits.topicLevels.
      if (err.message === AEDES_TOO_MANY_LEVELS) options.onPacketRefused?.('too_many_topic_levels')
      logger.debug({ event: 'client_error', err: err.message }, 'client error')
    })

    // Every listener hands its connections here: the packet size limit applies to TCP, TLS and WebSocket alike.
    const handle = (stream: Duplex, request?: IncomingMessage): void => {
      const client = aedes.handle(stream, request)
      if (!limitPacketSize(client, limits.packetBytes, () => options.onPacketRefused?.('packet_too_large'))) {
        logger.error(
          { event: 'packet_limit_unavailable' },
          'cannot install the MQTT packet size limit; refusing the connection',
        )
        stream.destroy()
      }
    }
    const specs: ListenerSpec[] = [
      { kind: 'mqtt', host: options.host, port: options.port, flag: options.flag },
      ...security.listeners,
    ]
    const listeners: OpenListener[] = []
    const onRefused = (reason: string): void => {
      metrics.authRefusals.labels('connection', reason).inc()
    }
    try {
      for (const spec of specs)
        listeners.push(await openListener(spec, handle, security.guard, security.tls, onRefused))
    } catch (err) {
      await Promise.all(listeners.map((l) => l.stop()))
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
      throw err
    }
    return new DeviceBroker(aedes, listeners, options, state.accounts, subscriptions, handle)
  }

  /**
   * Serves one MQTT connection over any duplex stream, as the listeners do (packet size limit included): tests
   * connect a client through an in-memory pair (test/helpers/duplex.ts) instead of a socket.
   */
  handle(stream: Duplex): void {
    this.#handle(stream)
  }

  /**
   * After the accounts were reloaded: disconnects every client whose account was removed or replaced (a new
   * password), so `veil device remove` and a reload lock a device out at once. Returns how many were closed.
   */
  disconnectRevoked(current: (name: string) => Account | undefined): number {
    let closed = 0
    const clients = (this.aedes as unknown as { clients: Record<string, Client> }).clients
    for (const client of Object.values(clients)) {
      const account = this.#accounts.get(client)
      if (account === undefined) continue
      const now = current(account.name)
      if (now === undefined || now.created !== account.created || now.role !== account.role) {
        client.close()
        closed++
      }
    }
    return closed
  }

  /** The primary (TCP) listener's address. */
  get address(): AddressInfo {
    return (this.#listeners[0] as OpenListener).address()
  }

  /** Every listener's kind and address, in the order they were configured. */
  get addresses(): { kind: string; address: AddressInfo }[] {
    return this.#listeners.map((l) => ({ kind: l.spec.kind, address: l.address() }))
  }

  /**
   * Publishes `domain`'s filtered copy (`veil/<domain>/...`) to local subscribers. Never retained. Returns undefined,
   * without publishing, when no client holds a subscription that could match (see {@link LocalSubscriptions});
   * otherwise a promise that resolves once aedes has handed the copy on (queued it for offline sessions included).
   */
  publishFiltered(topic: string, payload: Buffer, domain: string): Promise<void> | undefined {
    if (!this.#subscriptions.mayReceive(domain)) return undefined
    const packet: PublishPacket = { cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }
    return new Promise((resolve) => this.aedes.publish(packet, () => resolve()))
  }

  /** Subscriptions that could receive a filtered copy (connected clients and persistent sessions away). */
  get localSubscriptions(): number {
    return this.#subscriptions.count
  }

  /**
   * A net server's close callback waits for every connection to end, and only aedes ends them: stop listening
   * first, close aedes (which closes its clients), then wait for the server.
   */
  async close(): Promise<void> {
    const serversClosed = Promise.all(this.#listeners.map((l) => l.stop()))
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()))
    await serversClosed
  }

  /** Stops accepting connections immediately (in-flight clients keep their sockets until close()). */
  stopAccepting(): void {
    for (const l of this.#listeners) l.server.close()
  }

  get options(): BrokerOptions {
    return this.#options
  }
}

/** aedes' persistence, which its typings leave as `any`: only the call Veil makes. */
function persistenceOf(aedes: Aedes): { incomingGetPacket(client: Client, packet: PublishPacket): Promise<unknown> } {
  return (
    aedes as unknown as { persistence: { incomingGetPacket(client: Client, packet: PublishPacket): Promise<unknown> } }
  ).persistence
}
