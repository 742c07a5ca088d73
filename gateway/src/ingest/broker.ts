import type { EventEmitter } from 'node:events'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { Socket, type AddressInfo } from 'node:net'
import type { SecureContextOptions, TlsOptions } from 'node:tls'
import { Aedes, type AedesPublishPacket, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes'
import type { AccessControl, Principal } from '../auth/access.ts'
import type { Authenticator } from '../auth/authenticate.ts'
import type { ConnectionGuard } from '../auth/guard.ts'
import type { Account } from '../auth/store.ts'
import { FILTERED_ROOT } from '../sdk/model.ts'
import type { Logger } from '../telemetry/log.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { DEFAULT_INFLIGHT_PER_CLIENT, InflightGate, limitPacketSize, packetLimitFor, type IngestLimits } from './limits.ts'
import { DEFAULT_LIMITS } from '../pipeline/pipeline.ts'
import { openListener, type ListenerSpec, type OpenListener } from './listeners.ts'

export { listen } from './listeners.ts'

/** Called for every raw device publish; the device's PUBACK (and the next read from it) waits for the promise. */
export type RawPublishHandler = (topic: string, payload: Buffer) => Promise<void>

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

const FILTERED_PREFIX = `${FILTERED_ROOT}/`
/** aedes 1.2's error for a PUBLISH topic over its maxTopicLevels (lib/handlers/publish.js). */
const AEDES_TOO_MANY_LEVELS = 'topic has too many levels'
/** CONNACK return code 0x02; aedes declares it in an ambient const enum, which cannot be imported at run time. */
const IDENTIFIER_REJECTED = 2 as AuthenticateError['returnCode']
const SYS_PREFIX = '$SYS/'

/**
 * True for a subscription filter that can only ever match the filtered namespace. `#`, `+/...` and `$SYS/#` could
 * match raw device topics (or broker internals that carry client ids), so they are refused.
 */
export function isFilteredOnly(filter: string): boolean {
  return filter === FILTERED_ROOT || filter.startsWith(FILTERED_PREFIX)
}

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

  private constructor(aedes: Aedes, listeners: readonly OpenListener[], options: BrokerOptions, accounts: WeakMap<Client, Account>, subscriptions: LocalSubscriptions) {
    this.aedes = aedes
    this.#listeners = listeners
    this.#options = options
    this.#accounts = accounts
    this.#subscriptions = subscriptions
  }

  static async start(options: BrokerOptions): Promise<DeviceBroker> {
    const { logger, metrics, security } = options
    const { access, authenticator } = security
    // Each client's principal, set once its login succeeded. By id as well, for authorizeForward, which sees only the
    // publisher's client id on a packet; a takeover replaces the entry, and a disconnect removes only its own.
    const principals = new WeakMap<Client, Principal>()
    const byId = new Map<string, Principal>()
    const accounts = new WeakMap<Client, Account>()
    // [MQTT-3.1.3-8] an empty client id requires a clean session; aedes 1.2.0 accepts it with a persistent one.
    // preConnect cannot answer with a return code, so it marks the client and authenticate answers
    // CONNACK 0x02 (identifier rejected) before any session exists.
    const emptyIdWithSession = new WeakSet<Client>()
    const limits = options.limits ?? { inflightPerClient: DEFAULT_INFLIGHT_PER_CLIENT, packetBytes: packetLimitFor(DEFAULT_LIMITS) }
    const gates = new WeakMap<Client, InflightGate>()
    const gateOf = (client: Client): InflightGate => {
      let gate = gates.get(client)
      if (gate === undefined) gates.set(client, (gate = new InflightGate(limits.inflightPerClient)))
      return gate
    }
    const aedes = await Aedes.createBroker({
      id: 'veil',
      connectTimeout: security.guard.limits.connectTimeoutMs,
      maxClientsIdLength: 128,
      preConnect(client, packet, callback) {
        if ((packet.clientId ?? '') === '' && packet.clean === false) emptyIdWithSession.add(client)
        callback(null, true)
      },
      authenticate(client, username, password, callback) {
        if (emptyIdWithSession.has(client)) {
          metrics.authRefusals.labels('login', 'identifier_rejected').inc()
          callback(Object.assign(new Error('identifier rejected'), { returnCode: IDENTIFIER_REJECTED }), false)
          return
        }
        authenticator.login(socketOf(client), username, password).then(
          (result) => {
            if (result.ok) {
              principals.set(client, result.principal)
              if (result.account !== undefined) accounts.set(client, result.account)
              return callback(null, true)
            }
            metrics.authRefusals.labels('login', result.reason).inc()
            // Never the user name, password or client id: a name may be a device id, a wrong password a near miss.
            logger.warn({ event: 'login_refused', reason: result.reason }, 'refused a login')
            callback(Object.assign(new Error(result.reason), { returnCode: result.returnCode as AuthenticateError['returnCode'] }), false)
          },
          () => callback(Object.assign(new Error('login failed'), { returnCode: 3 as AuthenticateError['returnCode'] }), false),
        )
      },
      // The pipeline runs here, not in `published`: aedes writes a QoS 1 PUBACK before it calls `published`, but
      // only after this callback. Calling back once the filtered copies are handed on means the device's PUBACK
      // follows the pipeline, and aedes reads nothing more from that client meanwhile (per-client backpressure).
      authorizePublish(client, packet, callback) {
        const topic = packet.topic
        if (isFilteredOnly(topic) || topic.startsWith('$')) {
          // A device writing into the filtered namespace or $SYS is impersonating Veil: refusing closes its
          // connection, as [MQTT-3.3.5-2] allows. Honest devices never publish there. A will replayed with no
          // client (aedes' _clearWills) is refused the same way; aedes reports that through 'error', logged below.
          logger.warn({ event: 'publish_refused', reason: 'reserved_topic' }, 'refused a publish to a reserved topic')
          return callback(new Error('reserved topic'))
        }
        // Every publish that reaches this hook is raw (Veil's own go through aedes.publish, which skips it),
        // including wills replayed with a null client: the broker never stores a raw retained copy.
        packet.retain = false
        // A will replayed with no client comes from a client that logged in when it stored the will.
        const principal = client === null ? ANONYMOUS : principals.get(client)
        const decision = principal === undefined ? 'refuse' : access.decidePublish(principal, topic)
        if (decision !== 'pipeline') {
          // Refused: acknowledged and dropped, as mosquitto and EMQX do for MQTT 3.1.1, which has no code to say
          // so; authorizeForward makes the same decision again, so no subscriber gets the packet. Commands
          // (a local or admin client to a device) skip the pipeline: they never leave the gateway.
          if (decision === 'refuse') {
            metrics.authRefusals.labels('publish', principal?.role ?? 'unknown').inc()
            security.onPublishRefused()
            logger.debug({ event: 'publish_refused', reason: 'not_authorized', role: principal?.role }, 'refused a publish')
          }
          return callback(null)
        }
        const handOn = (): Promise<void> => options.onRawPublish(topic, packet.payload as Buffer)
        // The pipeline never rejects; if it ever did, the message is dropped and the client stays connected.
        const acknowledge = (): void => callback(null)
        const run = (): void => {
          // A will replayed after its client left has no client to wait on: it runs at once, one per connection.
          if (client === null) handOn().then(acknowledge, acknowledge)
          else gateOf(client).runThen(handOn, acknowledge)
        }
        // aedes checks for a QoS 2 retransmission only after this hook: look first, so a resent message is not
        // filtered and forwarded twice (and does not count twice in windows and rate limits).
        if (client !== null && packet.qos === 2 && packet.dup) {
          persistenceOf(aedes).incomingGetPacket(client, packet).then(
            () => callback(null),
            () => run(),
          )
          return
        }
        run()
      },
      authorizeSubscribe(client: Client, subscription: Subscription, callback) {
        const principal = principals.get(client)
        if (principal !== undefined && access.maySubscribe(principal, subscription.topic)) return callback(null, subscription)
        metrics.authRefusals.labels('subscribe', principal?.role ?? 'unknown').inc()
        logger.debug({ event: 'subscribe_refused', role: principal?.role }, 'refused a subscription')
        callback(null, null)
      },
      authorizeForward(client: Client, packet: AedesPublishPacket) {
        const publisher = publisherOf(packet)
        if (publisher === undefined) {
          if (packet.topic.startsWith(FILTERED_PREFIX)) return packet
          // aedes' own $SYS messages name clients: the operator only.
          return packet.topic.startsWith(SYS_PREFIX) && principals.get(client)?.role === 'admin' ? packet : null
        }
        const receiver = principals.get(client)
        if (receiver === undefined || typeof publisher !== 'string') return null
        return access.mayReceiveRaw(receiver, byId.get(publisher), packet.topic) ? packet : null
      },
    })
    // aedes reports persistence failures and refused will replays as 'error'; without a listener they would crash.
    ;(aedes as EventEmitter).on('error', (err: Error) => logger.error({ event: 'broker_error', err: err.message }, 'broker error'))
    const subscriptions = new LocalSubscriptions()
    aedes.on('subscribe', (subs, client) => subscriptions.subscribed(client.id, subs))
    aedes.on('unsubscribe', (unsubs, client) => subscriptions.unsubscribed(client.id, unsubs))
    aedes.on('client', (client) => {
      metrics.clientsConnected.inc()
      if (client.clean) subscriptions.cleanSession(client.id)
    })
    aedes.on('clientReady', (client) => {
      const principal = principals.get(client)
      if (principal !== undefined) byId.set(client.id, principal)
    })
    aedes.on('clientDisconnect', (client) => {
      metrics.clientsConnected.dec()
      if (byId.get(client.id) === principals.get(client)) byId.delete(client.id)
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
        logger.error({ event: 'packet_limit_unavailable' }, 'cannot install the MQTT packet size limit; refusing the connection')
        stream.destroy()
      }
    }
    const specs: ListenerSpec[] = [{ kind: 'mqtt', host: options.host, port: options.port, flag: options.flag }, ...security.listeners]
    const listeners: OpenListener[] = []
    const onRefused = (reason: string): void => {
      metrics.authRefusals.labels('connection', reason).inc()
    }
    try {
      for (const spec of specs) listeners.push(await openListener(spec, handle, security.guard, security.tls, onRefused))
    } catch (err) {
      await Promise.all(listeners.map((l) => l.stop()))
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
      throw err
    }
    return new DeviceBroker(aedes, listeners, options, accounts, subscriptions)
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
  return (aedes as unknown as { persistence: { incomingGetPacket(client: Client, packet: PublishPacket): Promise<unknown> } }).persistence
}

/** aedes' emitPacket stamps a client's publishes with its id; its typings do not declare the field. */
function publisherOf(packet: AedesPublishPacket): unknown {
  return (packet as AedesPublishPacket & { clientId?: string }).clientId
}

const ANONYMOUS: Principal = { role: 'anonymous' }

/** The TCP or TLS socket under a client's stream: the stream itself, or for WebSocket the upgrade request's. */
function socketOf(client: Client): Socket | undefined {
  const fromRequest = client.req?.socket
  if (fromRequest instanceof Socket) return fromRequest
  return client.conn instanceof Socket ? client.conn : undefined
}
