/**
 * Bounded RSS soak with a stalled upstream. A real `veil start` child process bridges to an aedes upstream that
 * accepts the connection and never acknowledges a publish (its authorizePublish never calls back, so it also stops
 * reading: the TCP connection backs up). Simulated plugs publish QoS 1 as fast as Veil acknowledges them, each with
 * a bounded number of publishes outstanding. Every `sampleMs` it prints Veil's RSS (/proc/<pid>/status), the queue
 * on disk, the in-flight window, evictions and connected devices; the run ends by itself after `seconds`.
 *
 *   npx tsx test/soak/stalled-upstream.ts [seconds=60] [devices=4]
 *
 * What it shows: memory does not follow the backlog (the queue is on disk, mqtt.js holds only the window, aedes
 * reads a device's next packet only after the previous one is queued), the queue stays within maxBytes by evicting
 * the oldest, and devices are slowed (their PUBACKs wait for the disk) but never disconnected.
 */
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Aedes } from 'aedes'
import mqtt, { type MqttClient } from 'mqtt'
import { VEIL } from '../helpers/cli.ts'
import { TEST_POLICIES, tempDir } from '../helpers/gateway.ts'
import { freePort } from '../helpers/mosquitto.ts'

export interface SoakOptions {
  readonly seconds: number
  readonly devices: number
  readonly sampleMs: number
  /** Outstanding QoS 1 publishes per device. */
  readonly inflightPerDevice: number
  readonly queueMaxBytes: number
  readonly payloadBytes: number
  /**
   * Caps the gateway's V8 old space (`--max-old-space-size`): a leak then ends the process, which the devices see
   * as a disconnect, within seconds, where RSS alone still moves with the heap's own sizing (it grows for the first
   * seconds of a flood and settles: see the long run).
   */
  readonly maxOldSpaceMiB?: number
  readonly log?: (line: string) => void
}

export interface SoakSample {
  readonly t: number
  readonly rssMiB: number
  readonly acked: number
  readonly queueBytes: number
  readonly queueDepth: number
  readonly inflight: number
  readonly evicted: number
  readonly clients: number
}

export interface SoakResult {
  readonly samples: SoakSample[]
  readonly disconnects: number
  readonly publishErrors: number
  readonly maxPending: number
}

const MAX_PENDING = 1000

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN)
  return Math.round((kb / 1024) * 10) / 10
}

function metric(text: string, pattern: RegExp): number {
  let sum = 0
  for (const m of text.matchAll(pattern)) sum += Number(m[1])
  return sum
}

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`))
  const dir = tempDir('veil-soak-')
  // The stalled upstream: CONNACK, then no PUBACK ever.
  const upstream = await Aedes.createBroker({ id: 'stalled', authorizePublish: () => {} })
  const server = createServer(upstream.handle)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const upstreamPort = (server.address() as AddressInfo).port

  const configFile = join(dir.path, 'veil.json')
  writeFileSync(
    configFile,
    JSON.stringify({
      domains: {
        svc: { upstream: { url: `mqtt://127.0.0.1:${upstreamPort}`, protocolVersion: 4, maxPending: MAX_PENDING } },
      },
      queue: { maxBytes: options.queueMaxBytes, segmentBytes: Math.max(65536, Math.floor(options.queueMaxBytes / 16)) },
    }),
  )
  const httpPort = await freePort()
  const listenPort = await freePort()
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('VEIL_')) env[k] = v
  const heapFlags = options.maxOldSpaceMiB === undefined ? [] : [`--max-old-space-size=${options.maxOldSpaceMiB}`]
  const child = spawn(
    process.execPath,
    [
      ...heapFlags,
      VEIL,
      'start',
      '--allow-anonymous',
      '--listen',
      `mqtt://127.0.0.1:${listenPort}`,
      '--http',
      `127.0.0.1:${httpPort}`,
      '--data-dir',
      join(dir.path, 'data'),
      '--policies',
      TEST_POLICIES,
      '--config',
      configFile,
      '--log-level',
      'error',
    ],
    { stdio: ['ignore', 'inherit', 'inherit'], env },
  )
  const hardStop = setTimeout(() => child.kill('SIGKILL'), (options.seconds + 60) * 1000)
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  const clients: MqttClient[] = []
  let stopping = false
  let disconnects = 0
  let publishErrors = 0
  let acked = 0
  const samples: SoakSample[] = []
  try {
    const base = `http://127.0.0.1:${httpPort}`
    const deadline = Date.now() + 20_000
    for (;;) {
      try {
        if ((await fetch(`${base}/healthz`)).ok) break
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline || child.exitCode !== null) throw new Error('veil did not start')
      await new Promise((r) => setTimeout(r, 100))
    }
    const filler = 'x'.repeat(Math.max(0, options.payloadBytes - 60))
    for (let d = 0; d < options.devices; d++) {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${listenPort}`, {
        clientId: `DVES_50A${String(d).padStart(3, '0')}`,
        reconnectPeriod: 0,
        connectTimeout: 5000,
      })
      c.on('close', () => {
        if (!stopping) disconnects++
      })
      clients.push(c)
      let k = 0
      const next = (): void => {
        if (stopping) return
        k++
        c.publish(
          `tele/tasmota_50A${d}/SENSOR`,
          `{"ENERGY":{"Yesterday":${k},"Total":1.5},"Pad":"${filler}"}`,
          { qos: 1 },
          (err) => {
            if (err) {
              if (!stopping) publishErrors++
            } else acked++
            next()
          },
        )
      }
      for (let i = 0; i < options.inflightPerDevice; i++) next()
    }

    const t0 = Date.now()
    log('   t_s  rss_MiB    acked  queue_MiB  queue_depth  inflight   evicted  clients')
    while (Date.now() - t0 < options.seconds * 1000) {
      await new Promise((r) => setTimeout(r, options.sampleMs))
      const text = await (await fetch(`${base}/metrics`)).text()
      const s: SoakSample = {
        t: Math.round((Date.now() - t0) / 100) / 10,
        rssMiB: rssMiB(child.pid as number),
        acked,
        queueBytes: metric(text, /^veil_upstream_queue_bytes\{domain="svc"\} (\S+)$/gm),
        queueDepth: metric(text, /^veil_upstream_queue_depth\{domain="svc"\} (\S+)$/gm),
        inflight: metric(text, /^veil_upstream_inflight\{domain="svc"\} (\S+)$/gm),
        evicted: metric(
          text,
          /^veil_messages_dropped_total\{stage="forward",category="[a-z_]+",reason="evicted"\} (\S+)$/gm,
        ),
        clients: metric(text, /^veil_clients_connected (\S+)$/gm),
      }
      samples.push(s)
      log(
        `${s.t.toFixed(1).padStart(6)} ${s.rssMiB.toFixed(1).padStart(8)} ${String(s.acked).padStart(8)} ${(s.queueBytes / 1048576).toFixed(1).padStart(10)} ${String(s.queueDepth).padStart(12)} ${String(s.inflight).padStart(9)} ${String(s.evicted).padStart(9)} ${String(s.clients).padStart(8)}`,
      )
    }
  } finally {
    stopping = true
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
    child.kill('SIGTERM')
    await exited
    clearTimeout(hardStop)
    await new Promise<void>((resolve) => upstream.close(() => resolve()))
    await new Promise<void>((resolve) => server.close(() => resolve()))
    dir.remove()
  }
  return { samples, disconnects, publishErrors, maxPending: MAX_PENDING }
}

/** RSS growth (MiB per minute) over the second half of the run: a least-squares slope. */
export function secondHalfSlope(samples: readonly SoakSample[]): number {
  const half = samples.slice(Math.floor(samples.length / 2))
  if (half.length < 2) return 0
  const n = half.length
  const mx = half.reduce((a, s) => a + s.t, 0) / n
  const my = half.reduce((a, s) => a + s.rssMiB, 0) / n
  const num = half.reduce((a, s) => a + (s.t - mx) * (s.rssMiB - my), 0)
  const den = half.reduce((a, s) => a + (s.t - mx) ** 2, 0)
  return den === 0 ? 0 : (num / den) * 60
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const seconds = Math.min(600, Math.max(5, Number(process.argv[2] ?? 60)))
  const devices = Math.min(50, Math.max(1, Number(process.argv[3] ?? 4)))
  const result = await runSoak({
    seconds,
    devices,
    sampleMs: 2000,
    inflightPerDevice: 20,
    queueMaxBytes: 8 * 1024 * 1024,
    payloadBytes: 400,
  })
  const rss = result.samples.map((s) => s.rssMiB)
  const last = result.samples.at(-1)
  process.stdout.write(
    `\nRSS MiB: first ${rss[0]}, max ${Math.max(...rss)}, last ${rss.at(-1)}; second-half slope ${secondHalfSlope(result.samples).toFixed(2)} MiB/min\n` +
      `acked ${last?.acked} messages (${Math.round((last?.acked ?? 0) / seconds)}/s), evicted ${last?.evicted}, device disconnects ${result.disconnects}, publish errors ${result.publishErrors}\n`,
  )
}
