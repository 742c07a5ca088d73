import { createServer, type Server } from 'node:http'
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

  static async start(host: string, port: number, metrics: Metrics, readiness: () => Readiness): Promise<HttpEndpoint> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]
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
        const body = r.upstreams === undefined ? { status: r.ready ? 'ready' : 'not ready', checks: r.checks } : { status: r.ready ? 'ready' : 'not ready', checks: r.checks, upstreams: r.upstreams }
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
