/**
 * Broker tests without a socket: aedes serves any Duplex (`handle(stream)`) and mqtt.js takes a stream builder, so
 * a pair of in-memory streams connects the two. No port, no loopback, no kernel buffers: what a test waits for is
 * the broker's work only.
 */
import { Duplex } from 'node:stream'
import { MqttClient, type IClientOptions } from 'mqtt'

/** Two Duplex streams, each reading what the other writes; ending or destroying one ends the other. */
export function duplexPair(): [Duplex, Duplex] {
  let a: Duplex
  let b: Duplex
  const side = (peer: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        peer().push(chunk)
        callback()
      },
      final(callback) {
        peer().push(null)
        callback()
      },
      destroy(err, callback) {
        const other = peer()
        if (!other.destroyed) other.destroy()
        callback(err)
      },
    })
  a = side(() => b)
  b = side(() => a)
  return [a, b]
}

/** What serves connections: DeviceBroker.handle, or an Aedes instance's handle. */
export interface StreamServer {
  handle(stream: Duplex): unknown
}

/**
 * An mqtt.js client of `server` over a fresh duplex pair, as `mqtt.connect` returns one: it connects on the next
 * tick, so handlers set now see everything (a persistent session's queued messages included). No reconnection.
 */
export function clientOverPair(server: StreamServer, options: IClientOptions = {}): MqttClient {
  return new MqttClient(
    () => {
      const [ours, theirs] = duplexPair()
      server.handle(theirs)
      return ours
    },
    { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, clean: true, keepalive: 60, ...options },
  )
}

/**
 * clientOverPair, resolved on CONNACK. Like `connect` of helpers/gateway.ts: a refused CONNECT rejects with
 * mqtt.js' error (its `code` the return code).
 */
export async function connectOverPair(server: StreamServer, options: IClientOptions = {}): Promise<MqttClient> {
  const client = clientOverPair(server, options)
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error): void => {
      client.end(true)
      reject(err)
    }
    client.once('connect', () => {
      client.off('error', fail)
      resolve()
    })
    client.once('error', fail)
  })
  return client
}
