import type { EventEmitter } from 'node:events'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { Aedes, type AedesPublishPacket, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes'
import { VeilError } from '../errors.ts'
import { FILTERED_ROOT } from '../model.ts'
import type { Logger } from '../telemetry/log.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { DEFAULT_INFLIGHT_PER_CLIENT, InflightGate, limitPacketSize, packetLimitFor, type IngestLimits } from './limits.ts'
import { DEFAULT_LIMITS } from '../pipeline/pipeline.ts'

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
}

const FILTERED_PREFIX = `${FILTERED_ROOT}/`
/** aedes 1.2's error for a PUBLISH topic over its maxTopicLevels (lib/handlers/publish.js). */
const AEDES_TOO_MANY_LEVELS = 'topic has too many levels'
/** CONNACK return code 0x02; aedes declares it in an ambient const enum, which cannot be imported at run time. */
const IDENTIFIER_REJECTED = 2 as AuthenticateError['returnCode']

/**
 * True for a subscription filter that can only ever match the filtered namespace. `#`, `+/...` and `$SYS/#` could
 * match raw device topics (or broker internals that carry client ids), so they are refused.
 */
export function isFilteredOnly(filter: string): boolean {
  return filter === FILTERED_ROOT || filter.startsWith(FILTERED_PREFIX)
}

/**
 * The device-facing broker. Everything aedes-specific lives here so the move to aedes 2 (MQTT 5) touches one file.
 *
 * Raw containment: aedes runs a publish as storeRetained -> emitPacket -> published, so raw data must be stopped
 * before it is stored or delivered, not in `published`:
 * - authorizePublish runs the pipeline and clears `retain` on every device publish: the broker never stores a
 *   raw retained copy;
 * - authorizeSubscribe grants only filters inside `veil/`;
 * - authorizeForward delivers to network clients only packets Veil published itself under `veil/` (aedes stamps a
 *   device's packets with its clientId in emitPacket), which also catches `#`.
 *
 * Message limits (limits.ts): the parser refuses a packet far over the payload limit as soon as its header is read,
 * and at most `inflightPerClient` publishes of one client are in the pipeline at once.
 */
export class DeviceBroker {
  readonly aedes: Aedes
  readonly #server: Server
  readonly #options: BrokerOptions

  private constructor(aedes: Aedes, server: Server, options: BrokerOptions) {
    this.aedes = aedes
    this.#server = server
    this.#options = options
  }

  static async start(options: BrokerOptions): Promise<DeviceBroker> {
    const { logger, metrics } = options
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
      connectTimeout: 10_000,
      maxClientsIdLength: 128,
      preConnect(client, packet, callback) {
        if ((packet.clientId ?? '') === '' && packet.clean === false) emptyIdWithSession.add(client)
        callback(null, true)
      },
      authenticate(client, _username, _password, callback) {
        if (emptyIdWithSession.has(client)) {
          callback(Object.assign(new Error('identifier rejected'), { returnCode: IDENTIFIER_REJECTED }), false)
          return
        }
        callback(null, true)
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
        const handOn = (): Promise<void> => options.onRawPublish(topic, packet.payload as Buffer)
        const run = (): void => {
          // A will replayed after its client left has no client to wait on: it runs at once, one per connection.
          ;(client === null ? handOn() : gateOf(client).run(handOn)).then(
            () => callback(null),
            // The pipeline never rejects; if it ever did, the message is dropped and the client stays connected.
            () => callback(null),
          )
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
      authorizeSubscribe(_client: Client, subscription: Subscription, callback) {
        if (isFilteredOnly(subscription.topic)) return callback(null, subscription)
        logger.debug({ event: 'subscribe_refused' }, 'refused a subscription outside veil/')
        callback(null, null)
      },
      authorizeForward(_client: Client, packet: AedesPublishPacket) {
        if (publisherOf(packet) === undefined && packet.topic.startsWith(FILTERED_PREFIX)) return packet
        return null
      },
    })
    // aedes reports persistence failures and refused will replays as 'error'; without a listener they would crash.
    ;(aedes as EventEmitter).on('error', (err: Error) => logger.error({ event: 'broker_error', err: err.message }, 'broker error'))
    aedes.on('client', () => metrics.clientsConnected.inc())
    aedes.on('clientDisconnect', () => metrics.clientsConnected.dec())
    aedes.on('clientError', (_client, err) => {
      // aedes refuses a publish past its 100 topic levels (qlobber's ceiling) by closing the connection, before
      // authorizePublish: count it here, as the pipeline counts one past limits.topicLevels.
      if (err.message === AEDES_TOO_MANY_LEVELS) options.onPacketRefused?.('too_many_topic_levels')
      logger.debug({ event: 'client_error', err: err.message }, 'client error')
    })

    const server = createServer((conn) => {
      const client = aedes.handle(conn)
      if (!limitPacketSize(client, limits.packetBytes, () => options.onPacketRefused?.('packet_too_large'))) {
        logger.error({ event: 'packet_limit_unavailable' }, 'cannot install the MQTT packet size limit; refusing the connection')
        conn.destroy()
      }
    })
    try {
      await listen(server, options.host, options.port, options.flag)
    } catch (err) {
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
      throw err
    }
    return new DeviceBroker(aedes, server, options)
  }

  get address(): AddressInfo {
    return this.#server.address() as AddressInfo
  }

  /** Publishes a filtered message to local subscribers of the `veil/` namespace. Never retained. */
  publishFiltered(topic: string, payload: Buffer): Promise<void> {
    const packet: PublishPacket = { cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }
    return new Promise((resolve) => this.aedes.publish(packet, () => resolve()))
  }

  /**
   * A net server's close callback waits for every connection to end, and only aedes ends them: stop listening
   * first, close aedes (which closes its clients), then wait for the server.
   */
  async close(): Promise<void> {
    const serverClosed = new Promise<void>((resolve) => {
      if (!this.#server.listening) return resolve()
      this.#server.close(() => resolve())
    })
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()))
    await serverClosed
  }

  /** Stops accepting connections immediately (in-flight clients keep their sockets until close()). */
  stopAccepting(): void {
    this.#server.close()
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

/** Listens, turning EADDRINUSE into a one-line error that names the port and the flag that changes it. */
export function listen(server: Server | import('node:http').Server, host: string, port: number, flag: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening)
      if (err.code === 'EADDRINUSE') {
        reject(new VeilError('VEIL_ERR_PORT_IN_USE', `port ${port} on ${host} is already in use; choose another with ${flag}`))
      } else if (err.code === 'EACCES') {
        reject(new VeilError('VEIL_ERR_PORT_IN_USE', `no permission to listen on ${host}:${port}; choose another port with ${flag}`))
      } else {
        reject(new VeilError('VEIL_ERR_CONFIG', `cannot listen on ${host}:${port} (${flag}): ${err.message}`))
      }
    }
    const onListening = (): void => {
      server.off('error', onError)
      resolve()
    }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen(port, host)
  })
}
