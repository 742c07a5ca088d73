// The HTTP endpoint of an in-process gateway: /healthz, /readyz (listener and required upstreams), /metrics, and
// nothing else.
import { createServer, type AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { connect, startGateway, startUpstream, type TestGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'

/** A fixed allowlist-only smart plug policy (svc and ana: ENERGY.Yesterday), independent of the shipped policies. */
const PLUG = join(dirname(fileURLToPath(import.meta.url)), '../cli/testdata/policies-plug')

const cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

async function gateway(options: Parameters<typeof startGateway>[0] = {}): Promise<TestGateway> {
  const gw = await startGateway(options)
  cleanup.push(() => gw.close())
  return gw
}

/** A loopback port nothing listens on: bound, read, closed. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((r) => server.close(() => r()))
  return port
}

describe('HTTP endpoints', () => {
  it('/healthz answers 200 with JSON, also with a query string and for HEAD', async () => {
    const gw = await gateway()
    const res = await fetch(`${gw.httpUrl}/healthz`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/json')
    expect(await res.json()).toEqual({ status: 'ok' })
    expect((await fetch(`${gw.httpUrl}/healthz?verbose=1`)).status).toBe(200)
    const head = await fetch(`${gw.httpUrl}/healthz`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(await head.text()).toBe('')
  })

  it('/readyz answers 200 when no upstream is configured', async () => {
    const gw = await gateway()
    const res = await fetch(`${gw.httpUrl}/readyz`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/json')
    expect(await res.json()).toEqual({ status: 'ready', checks: { listener: true } })
  })

  it('/readyz answers 503 and names the check while a required upstream is down', async () => {
    const gw = await gateway({ upstreams: { svc: `mqtt://127.0.0.1:${await closedPort()}` } })
    const res = await fetch(`${gw.httpUrl}/readyz`)
    expect(res.status).toBe(503)
    expect(await res.json()).toEqual({
      status: 'not ready',
      checks: { listener: true, upstream_svc: false },
      // The durable queue keeps taking messages meanwhile: its state is shown next to the checks.
      upstreams: {
        svc: {
          state: expect.stringMatching(/^(connecting|backoff)$/),
          required: true,
          queued: 0,
          queuedBytes: 0,
          oldestSeconds: 0,
          inflight: 0,
        },
      },
    })
    // Liveness is not readiness: the process still serves.
    expect((await fetch(`${gw.httpUrl}/healthz`)).status).toBe(200)
  })

  it('/readyz turns 200 once the required upstream connects', async () => {
    const upstream = await startUpstream()
    cleanup.push(() => upstream.close())
    const gw = await gateway({ upstreams: { svc: upstream.url } })
    await until(() => gw.gateway.bridges.get('svc')?.connected === true, {
      timeoutMs: 5000,
      what: 'the svc bridge to connect',
    })
    const res = await fetch(`${gw.httpUrl}/readyz`)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({
      status: 'ready',
      checks: { listener: true, upstream_svc: true },
      upstreams: {
        svc: { state: 'connected', required: true, queued: 0, queuedBytes: 0, oldestSeconds: 0, inflight: 0 },
      },
    })
  })

  it('/metrics serves the Prometheus text format with Veil, policy and Node default families', async () => {
    const gw = await gateway({ policies: PLUG })
    // One message through the pipeline and one drop, so the labelled families have samples. A local subscriber,
    // since a filtered copy is published (and counted as forwarded locally) only when some client could receive it.
    const consumer = await connect(gw.url, { clientId: 'metrics-consumer' })
    cleanup.push(() => consumer.endAsync())
    await consumer.subscribeAsync('veil/#', { qos: 1 })
    const device = await connect(gw.url, { clientId: 'tasmota_CA11A7' })
    cleanup.push(() => device.endAsync())
    await device.publishAsync('tele/tasmota_CA11A7/SENSOR', JSON.stringify({ ENERGY: { Yesterday: 1.5, Power: 12 } }), {
      qos: 1,
    })
    await device.publishAsync('tele/tasmota_CA11A7/NOPE', 'x', { qos: 1 })

    const res = await fetch(`${gw.httpUrl}/metrics`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = await res.text()
    for (const family of [
      'veil_stage_in_total',
      'veil_stage_out_total',
      'veil_messages_dropped_total',
      'veil_messages_forwarded_total',
      'veil_pipeline_duration_seconds',
      'veil_policy_info',
      'veil_clients_connected',
      'process_cpu_user_seconds_total',
      'nodejs_heap_size_total_bytes',
    ]) {
      expect(text).toMatch(new RegExp(`^# TYPE ${family} `, 'm'))
    }
    expect(text).toMatch(new RegExp(`^veil_policy_info\\{version="${gw.gateway.policyVersion}"\\} 1$`, 'm'))
    expect(text).toMatch(/^veil_stage_out_total\{stage="route",category="smart_plug"\} 1$/m)
    expect(text).toMatch(
      /^veil_messages_dropped_total\{stage="classify",category="unclassified",reason="unknown_topic"\} 1$/m,
    )
    expect(text).toMatch(/^veil_messages_forwarded_total\{category="smart_plug",domain="svc",target="local"\} 1$/m)
    expect(text.toLowerCase()).not.toContain('ca11a7')
  })

  it('answers 404 for an unknown path and 405 with Allow for a method other than GET or HEAD', async () => {
    const gw = await gateway()
    const [notFound, root, post, postMetrics, put, del] = await Promise.all([
      fetch(`${gw.httpUrl}/metricsz`),
      fetch(`${gw.httpUrl}/`),
      fetch(`${gw.httpUrl}/healthz`, { method: 'POST', body: '{}' }),
      fetch(`${gw.httpUrl}/metrics`, { method: 'POST' }),
      fetch(`${gw.httpUrl}/readyz`, { method: 'PUT' }),
      fetch(`${gw.httpUrl}/nowhere`, { method: 'DELETE' }),
    ])
    expect(notFound.status).toBe(404)
    expect(notFound.headers.get('content-type')).toBe('application/json')
    expect(await notFound.json()).toEqual({ error: 'not found' })
    expect(root.status).toBe(404)
    for (const res of [post, postMetrics, put, del]) {
      expect(res.status).toBe(405)
      expect(res.headers.get('allow')).toBe('GET, HEAD')
    }
  })
})
