import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { listen } from '../ingest/broker.ts'
import type { Metrics } from '../telemetry/metrics.ts'

export interface UpstreamStatus {
  state: string
  required: boolean
  queued: number
  queuedBytes: number
  oldestSeconds: number
  inflight: number
}

/** POST /-/reload: enabled only when a token is configured. */
export interface ReloadEndpoint {
  readonly token: string
  readonly reload: () => { ok: true; version: string } | { ok: false; error: string }
}

export interface Readiness {
  ready: boolean
  checks: Record<string, boolean>
  /** Each upstream's connection state and durable queue, present when upstreams are configured. */
  upstreams?: Record<string, UpstreamStatus>
}

/**
 * /metrics (Prometheus text), /healthz (the process serves requests) and /readyz (the listener is up and every
 * required upstream is connected). Bound to loopback unless the operator says otherwise.
 */
export class HttpEndpoint {
  readonly #server: Server

  private constructor(server: Server) {
    this.#server = server
  }

  static async start(
    host: string,
    port: number,
    metrics: Metrics,
    readiness: () => Readiness,
    reload?: ReloadEndpoint,
    api?: (req: IncomingMessage, res: ServerResponse, path: string) => void,
  ): Promise<HttpEndpoint> {
    const tokenDigest = reload === undefined ? undefined : digest(reload.token)
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/'
      if (path === '/-/reload' && reload !== undefined && tokenDigest !== undefined) {
        handleReload(req, res, reload, tokenDigest)
        return
      }
      if (path.startsWith('/api/')) {
        if (api !== undefined) api(req, res, path)
        else
          res
            .writeHead(404, { 'content-type': 'application/json' })
            .end('{"error":{"code":"not_found","message":"the API is disabled: no API token is configured"}}\n')
        return
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end()
        return
      }
      if (path === '/metrics') {
        metrics.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
          () => res.writeHead(500).end(),
        )
      } else if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}\n')
      } else if (path === '/readyz') {
        const r = readiness()
        const body =
          r.upstreams === undefined
            ? { status: r.ready ? 'ready' : 'not ready', checks: r.checks }
            : { status: r.ready ? 'ready' : 'not ready', checks: r.checks, upstreams: r.upstreams }
        res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`)
      } else {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}\n')
      }
    })
    await listen(server, host, port, '--http')
    return new HttpEndpoint(server)
  }

  get address(): AddressInfo {
    return this.#server.address() as AddressInfo
  }

  close(): Promise<void> {
    this.#server.closeAllConnections()
    return new Promise((resolve) => this.#server.close(() => resolve()))
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/**
 * The only endpoint that changes state. Bearer token compared in constant time (as SHA-256 digests, so the length
 * of the token does not show either); the token and the request never reach a log.
 */
function handleReload(req: IncomingMessage, res: ServerResponse, reload: ReloadEndpoint, tokenDigest: Buffer): void {
  if (req.method !== 'POST') {
    res.writeHead(405, { allow: 'POST' }).end()
    return
  }
  const match = /^Bearer ([^\s]+)$/.exec(req.headers.authorization ?? '')
  if (match === null || !timingSafeEqual(digest(match[1] as string), tokenDigest)) {
    res
      .writeHead(401, { 'www-authenticate': 'Bearer', 'content-type': 'application/json' })
      .end('{"error":"unauthorized"}\n')
    return
  }
  const result = reload.reload()
  if (result.ok)
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(`${JSON.stringify({ status: 'reloaded', policy: result.version })}\n`)
  else
    res
      .writeHead(422, { 'content-type': 'application/json' })
      .end(`${JSON.stringify({ status: 'rejected', error: result.error })}\n`)
}
