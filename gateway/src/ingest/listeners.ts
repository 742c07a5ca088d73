import { readFileSync } from 'node:fs'
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { createServer as createTlsServer, type SecureContextOptions, type TlsOptions } from 'node:tls'
import { WebSocketServer, createWebSocketStream } from 'ws'
import { VeilError } from '../errors.ts'
import type { ConnectionGuard, ConnectionRefusal } from '../auth/guard.ts'

export type ListenerKind = 'mqtt' | 'mqtts' | 'ws' | 'wss'

export interface ListenerSpec {
  readonly kind: ListenerKind
  readonly host: string
  readonly port: number
  /** The flag or configuration key that sets it, named when the port is busy. */
  readonly flag: string
}

export interface TlsFiles {
  readonly cert: string
  readonly key: string
  /** CA bundle for client certificates; with it, clients may log in with a certificate (mutual TLS). */
  readonly ca?: string | undefined
  /** Refuse TLS clients without a certificate signed by `ca`. */
  readonly requireClientCert?: boolean | undefined
}

/** Why a socket was closed before MQTT: the guard's reasons, or a failed TLS handshake. */
export type RefusalReason = ConnectionRefusal | 'tls_handshake'

export type ConnectionHandler = (stream: Duplex, request?: IncomingMessage) => void

export interface OpenListener {
  readonly spec: ListenerSpec
  readonly server: Server | HttpServer
  address(): AddressInfo
  /** Stops accepting; `closed` resolves once every connection ended. */
  stop(): Promise<void>
}

/** WebSocket frames larger than this are refused by `ws` before they are buffered: MQTT packets of Veil's devices are far smaller. */
const WS_MAX_PAYLOAD = 16 * 1024 * 1024

/** Reads the certificate files once at start; a missing or unreadable file stops the start with its key and path. */
export function tlsContext(files: TlsFiles): TlsOptions & SecureContextOptions {
  const read = (key: string, path: string): Buffer => {
    try {
      return readFileSync(path)
    } catch (err) {
      throw new VeilError('VEIL_ERR_CONFIG', `tls.${key}: ${path}: ${(err as Error).message}`)
    }
  }
  const options: TlsOptions = {
    cert: read('cert', files.cert),
    key: read('key', files.key),
    minVersion: 'TLSv1.2',
    // Ask for a certificate whenever a CA is configured; whether one is required is the operator's choice.
    requestCert: files.ca !== undefined,
    rejectUnauthorized: files.ca !== undefined && files.requireClientCert === true,
  }
  if (files.ca !== undefined) options.ca = read('ca', files.ca)
  return options
}

/**
 * Opens one listener. Every accepted socket passes the connection guard first (maximum connections, rate per
 * address) and is closed before a byte is read if it is refused; WebSocket connections are counted at their TCP
 * socket, before the upgrade.
 */
export async function openListener(
  spec: ListenerSpec,
  handle: ConnectionHandler,
  guard: ConnectionGuard,
  tls: (TlsOptions & SecureContextOptions) | undefined,
  onRefused: (reason: RefusalReason) => void,
): Promise<OpenListener> {
  if ((spec.kind === 'mqtts' || spec.kind === 'wss') && tls === undefined) {
    throw new VeilError(
      'VEIL_ERR_CONFIG',
      `${spec.flag}: ${spec.kind}:// needs tls.cert and tls.key (--tls-cert, --tls-key)`,
    )
  }
  const guarded = (socket: Socket): boolean => {
    const refusal = guard.admit(socket.remoteAddress ?? 'unknown')
    if (refusal !== undefined) {
      onRefused(refusal)
      socket.destroy()
      return false
    }
    socket.once('close', () => guard.closed())
    return true
  }

  // aedes' CONNECT timeout starts once it has a stream; the TLS handshake and the WebSocket upgrade come first and
  // get the same budget, so a client that opens a socket and stalls holds a connection slot no longer.
  const budget = guard.limits.connectTimeoutMs
  const tlsOptions = { ...tls, handshakeTimeout: budget }
  let server: Server | HttpServer
  let wss: WebSocketServer | undefined
  switch (spec.kind) {
    case 'mqtt':
      server = createNetServer((socket) => handle(socket))
      break
    case 'mqtts':
      // The guard must see the raw TCP socket before the handshake costs anything: 'connection' fires first.
      server = createTlsServer(tlsOptions, (socket) => handle(socket))
      break
    case 'ws':
    case 'wss': {
      // Plain HTTP requests get 426: the listener speaks MQTT over WebSocket only.
      const upgradeOnly = (_req: IncomingMessage, res: import('node:http').ServerResponse): void =>
        void res.writeHead(426, { connection: 'close' }).end()
      server = spec.kind === 'ws' ? createHttpServer(upgradeOnly) : createHttpsServer(tlsOptions, upgradeOnly)
      wss = new WebSocketServer({ server: server as HttpServer, perMessageDeflate: false, maxPayload: WS_MAX_PAYLOAD })
      wss.on('connection', (ws, request) => {
        // Upgraded: from here aedes' CONNECT timeout and keep-alive apply.
        request.socket.setTimeout(0)
        const stream = createWebSocketStream(ws)
        // A socket error after the upgrade must not crash the process; aedes sees the stream end.
        stream.on('error', () => stream.destroy())
        handle(stream, request)
      })
      wss.on('error', () => {})
      break
    }
  }
  server.on('connection', (socket: Socket) => {
    if (!guarded(socket)) return
    socket.on('error', () => {})
    // Until the WebSocket upgrade, an idle socket is closed after the CONNECT budget (Node's own HTTP timeouts do
    // not count a connection that never sends a byte). The timer goes on the socket the upgrade request arrives on
    // (for wss the TLS socket, after the handshake, which handshakeTimeout bounds), so the upgrade can clear it.
    if (spec.kind === 'ws') socket.setTimeout(budget, () => socket.destroy())
  })
  if (spec.kind === 'wss')
    server.on('secureConnection', (socket: Socket) => socket.setTimeout(budget, () => socket.destroy()))
  if (spec.kind === 'mqtts' || spec.kind === 'wss') {
    // A failed handshake (wrong CA, TLS 1.1) is the client's problem: it is counted, never thrown.
    server.on('tlsClientError', () => onRefused('tls_handshake'))
  }
  await listen(server, spec.host, spec.port, spec.flag)
  return {
    spec,
    server,
    address: () => server.address() as AddressInfo,
    stop: () =>
      new Promise<void>((resolve) => {
        if (wss !== undefined) for (const ws of wss.clients) ws.terminate()
        if (!server.listening) return resolve()
        server.close(() => resolve())
      }),
  }
}

/** Listens, turning EADDRINUSE into a one-line error that names the port and the flag that changes it. */
export function listen(server: Server | HttpServer, host: string, port: number, flag: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening)
      if (err.code === 'EADDRINUSE') {
        reject(
          new VeilError(
            'VEIL_ERR_PORT_IN_USE',
            `port ${port} on ${host} is already in use; choose another with ${flag}`,
          ),
        )
      } else if (err.code === 'EACCES') {
        reject(
          new VeilError(
            'VEIL_ERR_PORT_IN_USE',
            `no permission to listen on ${host}:${port}; choose another port with ${flag}`,
          ),
        )
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
