/**
 * Real `veil start` processes (bin/veil.js) with an in-process aedes upstream and QoS 1 devices, for the crash and
 * shutdown tests in test/integration (crash.test.ts, and crash.slow.test.ts for the wall-clock bound).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { join } from 'node:path'
import { Aedes } from 'aedes'
import type { MqttClient } from 'mqtt'
import { VEIL } from './cli.ts'
import { TEST_POLICIES, connect } from './gateway.ts'
import { until } from './poll.ts'
import { freePort } from './mosquitto.ts'

export interface Upstream {
  port: number
  close(): Promise<void>
}

export interface Veil {
  child: ChildProcess
  listenPort: number
  httpPort: number
  output(): string
  exited: Promise<{ code: number | null; signal: string | null }>
}

/**
 * Steady QoS 1 publishers (one per device, each sending its next reading once the last one's PUBACK arrived, as
 * firmware does; no pause of its own, so the pace is the gateway's) until `stop()`. `acked`
 * holds the values whose PUBACK a device received.
 */
export function publish(clients: MqttClient[]): { acked: number[]; stop(): void } {
  const acked: number[] = []
  let stopped = false
  clients.forEach((client, d) => {
    void (async () => {
      for (let k = 1; !stopped && k < 10_000; k++) {
        const value = (d + 1) * 10_000 + k
        try {
          await client.publishAsync(
            `tele/tasmota_CA11A${d}/SENSOR`,
            JSON.stringify({ ENERGY: { Yesterday: value, Power: 12 } }),
            { qos: 1 },
          )
        } catch {
          return
        }
        if (stopped) return
        acked.push(value)
      }
    })()
  })
  return { acked, stop: () => (stopped = true) }
}

/** The process helpers of one test file; each registers what closes it in `cleanups`, which the file's afterEach runs. */
export function veilProcesses(cleanups: (() => Promise<void> | void)[]): {
  upstreamOn(port: number, received: number[]): Promise<Upstream>
  startVeil(dataDir: string, upstreamPort: number): Promise<Veil>
  devices(veil: Veil, n: number): Promise<MqttClient[]>
} {
  /** An aedes upstream on `port` that records the ENERGY.Yesterday of every filtered message it receives. */
  async function upstreamOn(port: number, received: number[]): Promise<Upstream> {
    const aedes = await Aedes.createBroker({ id: 'crash-upstream' })
    aedes.on('publish', (packet, client) => {
      if (client === null) return
      const doc = JSON.parse(Buffer.from(packet.payload).toString('utf8')) as {
        data: { ENERGY: { Yesterday: number } }
      }
      received.push(doc.data.ENERGY.Yesterday)
    })
    const server: Server = createServer(aedes.handle)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', resolve)
    })
    let closing: Promise<void> | undefined
    const up = {
      port: (server.address() as AddressInfo).port,
      close: () =>
        (closing ??= (async () => {
          await new Promise<void>((resolve) => aedes.close(() => resolve()))
          await new Promise<void>((resolve) => server.close(() => resolve()))
        })()),
    }
    cleanups.push(up.close)
    return up
  }

  /** `veil start` on free loopback ports with `dataDir`; resolves once it logged "started". */
  async function startVeil(dataDir: string, upstreamPort: number): Promise<Veil> {
    const configFile = join(dataDir, '..', `veil-${upstreamPort}-${Date.now()}.json`)
    writeFileSync(
      configFile,
      JSON.stringify({
        domains: { svc: { upstream: { url: `mqtt://127.0.0.1:${upstreamPort}`, protocolVersion: 4 } } },
        reconnect: { minMs: 50, maxMs: 400 },
      }),
    )
    const httpPort = await freePort()
    const env: NodeJS.ProcessEnv = {}
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('VEIL_')) env[k] = v
    const child = spawn(
      process.execPath,
      [
        VEIL,
        'start',
        '--allow-anonymous',
        '--listen',
        'mqtt://127.0.0.1:0',
        '--http',
        `127.0.0.1:${httpPort}`,
        '--data-dir',
        dataDir,
        '--policies',
        TEST_POLICIES,
        '--config',
        configFile,
        '--log-level',
        'info',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env },
    )
    let out = ''
    child.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c))
    child.stderr?.setEncoding('utf8').on('data', (c: string) => (out += c))
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) =>
      child.once('exit', (code, signal) => r({ code, signal })),
    )
    const killer = setTimeout(() => child.kill('SIGKILL'), 150_000)
    void exited.then(() => clearTimeout(killer))
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL')
        await exited
      }
    })
    let started: { listen: { port: number } } | undefined
    await until(
      () => {
        const line = out.split('\n').find((l) => l.includes('"event":"started"'))
        if (line !== undefined) started = JSON.parse(line) as { listen: { port: number } }
        return started !== undefined || child.exitCode !== null
      },
      { timeoutMs: 45_000, what: `veil to start: ${out}` },
    )
    if (started === undefined) throw new Error(`veil exited before starting: ${out}`)
    return { child, listenPort: started.listen.port, httpPort, output: () => out, exited }
  }

  async function devices(veil: Veil, n: number): Promise<MqttClient[]> {
    const clients = await Promise.all(
      Array.from({ length: n }, (_, d) =>
        connect(`mqtt://127.0.0.1:${veil.listenPort}`, { clientId: `DVES_CA11A${d}` }),
      ),
    )
    for (const c of clients) cleanups.push(() => c.endAsync(true).catch(() => {}))
    return clients
  }

  return { upstreamOn, startVeil, devices }
}
