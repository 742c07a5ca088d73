/**
 * The five aedes hooks of the device-facing broker, one function per handler (as aedes itself is written), over a
 * small state object, so each can be called and tested without a socket or a broker. DeviceBroker.start binds them;
 * the reasons behind each decision (raw containment, backpressure) are in broker.ts's class comment.
 */
import { Socket } from 'node:net'
import type {
  AedesOptions,
  AedesPublishPacket,
  AuthenticateError,
  Client,
  ConnectPacket,
  PublishPacket,
  Subscription,
} from 'aedes'
import type { AccessControl, Principal } from '../auth/access.ts'
import type { Authenticator } from '../auth/authenticate.ts'
import type { Account } from '../auth/store.ts'
import { FILTERED_ROOT } from '../sdk/model.ts'
import type { Logger } from '../telemetry/log.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { InflightGate } from './limits.ts'

/** Called for every raw device publish; the device's PUBACK (and the next read from it) waits for the promise. */
export type RawPublishHandler = (topic: string, payload: Buffer) => Promise<void>

export const FILTERED_PREFIX = `${FILTERED_ROOT}/`
/** CONNACK return code 0x02; aedes declares it in an ambient const enum, which cannot be imported at run time. */
const IDENTIFIER_REJECTED = 2 as AuthenticateError['returnCode']
const SERVER_UNAVAILABLE = 3 as AuthenticateError['returnCode']
const SYS_PREFIX = '$SYS/'
const ANONYMOUS: Principal = { role: 'anonymous' }

/**
 * True for a subscription filter that can only ever match the filtered namespace. `#`, `+/...` and `$SYS/#` could
 * match raw device topics (or broker internals that carry client ids), so they are refused.
 */
export function isFilteredOnly(filter: string): boolean {
  return filter === FILTERED_ROOT || filter.startsWith(FILTERED_PREFIX)
}

/** What the hooks decide with: the gateway's services, fixed for the broker's life. */
export interface HookContext {
  readonly logger: Logger
  readonly metrics: Metrics
  /** Only the calls the hooks make, so a test can hand in its own. */
  readonly authenticator: Pick<Authenticator, 'login'>
  readonly access: Pick<AccessControl, 'decidePublish' | 'maySubscribe' | 'mayReceiveRaw'>
  readonly onRawPublish: RawPublishHandler
  /** A publish that was acknowledged but dropped because its client may not publish there. */
  readonly onPublishRefused: () => void
  /** aedes' lookup of a stored incoming QoS 2 packet: resolves when `packet` is a retransmission of one. */
  readonly incomingGetPacket: (client: Client, packet: PublishPacket) => Promise<unknown>
}

/** What the hooks remember about connections between calls. */
export interface HookState {
  /** Each client's principal, set once its login succeeded. */
  readonly principals: WeakMap<Client, Principal>
  /**
   * The principals by client id, for authorizeForward, which sees only the publisher's client id on a packet; a
   * takeover replaces the entry, and a disconnect removes only its own.
   */
  readonly byId: Map<string, Principal>
  /** Each client's account, for disconnectRevoked after a reload. */
  readonly accounts: WeakMap<Client, Account>
  /**
   * [MQTT-3.1.3-8] an empty client id requires a clean session; aedes 1.2.0 accepts it with a persistent one.
   * preConnect cannot answer with a return code, so it marks the client and authenticate answers CONNACK 0x02
   * (identifier rejected) before any session exists.
   */
  readonly emptyIdWithSession: WeakSet<Client>
  /** At most this many publishes of one client are in the pipeline at once (limits.ts). */
  readonly inflightPerClient: number
  readonly gates: WeakMap<Client, InflightGate>
}

export function newHookState(inflightPerClient: number): HookState {
  return {
    principals: new WeakMap(),
    byId: new Map(),
    accounts: new WeakMap(),
    emptyIdWithSession: new WeakSet(),
    inflightPerClient,
    gates: new WeakMap(),
  }
}

function gateOf(state: HookState, client: Client): InflightGate {
  let gate = state.gates.get(client)
  if (gate === undefined) state.gates.set(client, (gate = new InflightGate(state.inflightPerClient)))
  return gate
}

type Hook<K extends keyof AedesOptions> = Parameters<NonNullable<AedesOptions[K]>>

export function preConnect(
  state: HookState,
  client: Client,
  packet: ConnectPacket,
  callback: Hook<'preConnect'>[2],
): void {
  if ((packet.clientId ?? '') === '' && packet.clean === false) state.emptyIdWithSession.add(client)
  callback(null, true)
}

export function authenticate(
  context: HookContext,
  state: HookState,
  client: Client,
  username: string | undefined,
  password: Buffer | undefined,
  callback: Hook<'authenticate'>[3],
): void {
  const { metrics, logger } = context
  if (state.emptyIdWithSession.has(client)) {
    metrics.authRefusals.labels('login', 'identifier_rejected').inc()
    callback(Object.assign(new Error('identifier rejected'), { returnCode: IDENTIFIER_REJECTED }), false)
    return
  }
  context.authenticator.login(socketOf(client), username, password).then(
    (result) => {
      if (result.ok) {
        state.principals.set(client, result.principal)
        if (result.account !== undefined) state.accounts.set(client, result.account)
        return callback(null, true)
      }
      metrics.authRefusals.labels('login', result.reason).inc()
      // Never the user name, password or client id: a name may be a device id, a wrong password a near miss.
      logger.warn({ event: 'login_refused', reason: result.reason }, 'refused a login')
      callback(
        Object.assign(new Error(result.reason), { returnCode: result.returnCode as AuthenticateError['returnCode'] }),
        false,
      )
    },
    () => callback(Object.assign(new Error('login failed'), { returnCode: SERVER_UNAVAILABLE }), false),
  )
}

/**
 * The pipeline runs here, not in `published`: aedes writes a QoS 1 PUBACK before it calls `published`, but only
 * after this callback. Calling back once the filtered copies are handed on means the device's PUBACK follows the
 * pipeline, and aedes reads nothing more from that client meanwhile (per-client backpressure).
 */
export function authorizePublish(
  context: HookContext,
  state: HookState,
  client: Client | null,
  packet: PublishPacket,
  callback: Hook<'authorizePublish'>[2],
): void {
  const { logger, metrics } = context
  const topic = packet.topic
  if (isFilteredOnly(topic) || topic.startsWith('$')) {
    // A device writing into the filtered namespace or $SYS is impersonating Veil: refusing closes its
    // connection, as [MQTT-3.3.5-2] allows. Honest devices never publish there. A will replayed with no
    // client (aedes' _clearWills) is refused the same way; aedes reports that through 'error' (broker.ts logs it).
    logger.warn({ event: 'publish_refused', reason: 'reserved_topic' }, 'refused a publish to a reserved topic')
    return callback(new Error('reserved topic'))
  }
  // Every publish that reaches this hook is raw (Veil's own go through aedes.publish, which skips it),
  // including wills replayed with a null client: the broker never stores a raw retained copy.
  packet.retain = false
  // A will replayed with no client comes from a client that logged in when it stored the will.
  const principal = client === null ? ANONYMOUS : state.principals.get(client)
  const decision = principal === undefined ? 'refuse' : context.access.decidePublish(principal, topic)
  if (decision !== 'pipeline') {
    // Refused: acknowledged and dropped, as mosquitto and EMQX do for MQTT 3.1.1, which has no code to say
    // so; authorizeForward makes the same decision again, so no subscriber gets the packet. Commands
    // (a local or admin client to a device) skip the pipeline: they never leave the gateway.
    if (decision === 'refuse') {
      metrics.authRefusals.labels('publish', principal?.role ?? 'unknown').inc()
      context.onPublishRefused()
      logger.debug({ event: 'publish_refused', reason: 'not_authorized', role: principal?.role }, 'refused a publish')
    }
    return callback(null)
  }
  const handOn = (): Promise<void> => context.onRawPublish(topic, packet.payload as Buffer)
  // The pipeline never rejects; if it ever did, the message is dropped and the client stays connected.
  const acknowledge = (): void => callback(null)
  const run = (): void => {
    // A will replayed after its client left has no client to wait on: it runs at once, one per connection.
    if (client === null) handOn().then(acknowledge, acknowledge)
    else gateOf(state, client).runThen(handOn, acknowledge)
  }
  // aedes checks for a QoS 2 retransmission only after this hook: look first, so a resent message is not
  // filtered and forwarded twice (and does not count twice in windows and rate limits).
  if (client !== null && packet.qos === 2 && packet.dup) {
    context.incomingGetPacket(client, packet).then(
      () => callback(null),
      () => run(),
    )
    return
  }
  run()
}

export function authorizeSubscribe(
  context: HookContext,
  state: HookState,
  client: Client,
  subscription: Subscription,
  callback: Hook<'authorizeSubscribe'>[2],
): void {
  const principal = state.principals.get(client)
  if (principal !== undefined && context.access.maySubscribe(principal, subscription.topic))
    return callback(null, subscription)
  context.metrics.authRefusals.labels('subscribe', principal?.role ?? 'unknown').inc()
  context.logger.debug({ event: 'subscribe_refused', role: principal?.role }, 'refused a subscription')
  callback(null, null)
}

export function authorizeForward(
  context: HookContext,
  state: HookState,
  client: Client,
  packet: AedesPublishPacket,
): AedesPublishPacket | null {
  const publisher = publisherOf(packet)
  if (publisher === undefined) {
    if (packet.topic.startsWith(FILTERED_PREFIX)) return packet
    // aedes' own $SYS messages name clients: the operator only.
    return packet.topic.startsWith(SYS_PREFIX) && state.principals.get(client)?.role === 'admin' ? packet : null
  }
  const receiver = state.principals.get(client)
  if (receiver === undefined || typeof publisher !== 'string') return null
  return context.access.mayReceiveRaw(receiver, state.byId.get(publisher), packet.topic) ? packet : null
}

/** aedes' 'clientReady': the connection's id now names its principal for authorizeForward. */
export function clientReady(state: HookState, client: Client): void {
  const principal = state.principals.get(client)
  if (principal !== undefined) state.byId.set(client.id, principal)
}

/** aedes' 'clientDisconnect': forgets the id unless a takeover already put another connection's principal there. */
export function clientDisconnected(state: HookState, client: Client): void {
  if (state.byId.get(client.id) === state.principals.get(client)) state.byId.delete(client.id)
}

/** aedes' emitPacket stamps a client's publishes with its id; its typings do not declare the field. */
function publisherOf(packet: AedesPublishPacket): unknown {
  return (packet as AedesPublishPacket & { clientId?: string }).clientId
}

/** The TCP or TLS socket under a client's stream: the stream itself, or for WebSocket the upgrade request's. */
function socketOf(client: Client): Socket | undefined {
  const fromRequest = client.req?.socket
  if (fromRequest instanceof Socket) return fromRequest
  return client.conn instanceof Socket ? client.conn : undefined
}
