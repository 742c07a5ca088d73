/**
 * Crash and shutdown of a real `veil start` process (bin/veil.js) with a durable queue:
 * - SIGKILL mid-stream, with a backlog on disk because the upstream went away first: after a restart on the same
 *   data directory, every message whose PUBACK a device received reaches the upstream (at least once).
 * - SIGTERM mid-stream: the process exits 0 within a bound, and every acknowledged message is in the queue on disk.
 * The upstream is an in-process aedes (MQTT 3.1.1, so the configuration sets protocolVersion 4).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { join } from 'node:path'
import { Aedes } from 'aedes'
import type { MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { DEFAULT_QUEUE, UpstreamQueue } from '../../gateway/src/forward/queue/upstream-queue.ts'
import { VEIL } from '../helpers/cli.ts'
import { TEST_POLICIES, connect, sleep, tempDir } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'
import { freePort } from '../helpers/mosquitto.ts'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

interface Upstream {
  port: number
  close(): Promise<void>
}

/** An aedes upstream on `port` that records the ENERGY.Yesterday of every filtered message it receives. */
async function upstreamOn(port: number, received: number[]): Promise<Upstream> {
  const aedes = await Aedes.createBroker({ id: 'crash-upstream' })
  aedes.on('publish', (packet, client) => {
    if (client === null) return
    const doc = JSON.parse(Buffer.from(packet.payload).toString('utf8')) as { data: { ENERGY: { Yesterday: number } } }
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

interface Veil {
  child: ChildProcess
  listenPort: number
  httpPort: number
  output(): string
  exited: Promise<{ code: number | null; signal: string | null }>
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
    [VEIL, 'start', '--allow-anonymous', '--listen', 'mqtt://127.0.0.1:0', '--http', `127.0.0.1:${httpPort}`, '--data-dir', dataDir, '--policies', TEST_POLICIES, '--config', configFile, '--log-level', 'info'],
    { stdio: ['ignore', 'pipe', 'pipe'], env },
  )
  let out = ''
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c))
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (out += c))
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })))
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  void exited.then(() => clearTimeout(killer))
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  let started: { listen: { port: number } } | undefined
  await until(() => {
    const line = out.split('\n').find((l) => l.includes('"event":"started"'))
    if (line !== undefined) started = JSON.parse(line) as { listen: { port: number } }
    return started !== undefined || child.exitCode !== null
  }, { timeoutMs: 20_000, what: `veil to start: ${out}` })
  if (started === undefined) throw new Error(`veil exited before starting: ${out}`)
  return { child, listenPort: started.listen.port, httpPort, output: () => out, exited }
}

/**
 * Steady QoS 1 publishers (one per device, each waiting for its PUBACK as firmware does) until `stop()`. `acked`
 * holds the values whose PUBACK a device received.
 */
function publish(clients: MqttClient[], intervalMs: number): { acked: number[]; stop(): void } {
  const acked: number[] = []
  let stopped = false
  clients.forEach((client, d) => {
    void (async () => {
      for (let k = 1; !stopped && k < 10_000; k++) {
        const value = (d + 1) * 10_000 + k
        try {
          await client.publishAsync(`tele/tasmota_CA11A${d}/SENSOR`, JSON.stringify({ ENERGY: { Yesterday: value, Power: 12 } }), { qos: 1 })
        } catch {
          return
        }
        if (stopped) return
        acked.push(value)
        await sleep(intervalMs)
      }
    })()
  })
  return { acked, stop: () => (stopped = true) }
}

async function devices(veil: Veil, n: number): Promise<MqttClient[]> {
  const clients = await Promise.all(Array.from({ length: n }, (_, d) => connect(`mqtt://127.0.0.1:${veil.listenPort}`, { clientId: `DVES_CA11A${d}` })))
  for (const c of clients) cleanups.push(() => c.endAsync(true).catch(() => {}))
  return clients
}

// Each test runs one or two `veil start` processes; typical runs take 4 to 8 s, the 60 s limits are for a loaded machine.
describe('veil start: durability across SIGKILL and SIGTERM', () => {
  it('SIGKILL mid-stream with a backlog on disk: after a restart every acknowledged message reaches the upstream', async () => {
    const dir = tempDir('veil-crash-')
    cleanups.push(() => dir.remove())
    const dataDir = join(dir.path, 'data')
    const received: number[] = []
    let up = await upstreamOn(0, received)
    const port = up.port

    const first = await startVeil(dataDir, port)
    await until(() => first.output().includes('"event":"upstream_connected"'), { timeoutMs: 10_000, what: 'bridge connected' })
    const run = publish(await devices(first, 2), 3)
    await until(() => run.acked.length >= 60, { timeoutMs: 20_000, what: '60 messages acknowledged' })
    // The upstream goes away: what devices publish now waits on Veil's disk only.
    await up.close()
    await until(() => run.acked.length >= 200, { timeoutMs: 20_000, what: '200 messages acknowledged' })
    first.child.kill('SIGKILL')
    expect((await first.exited).signal).toBe('SIGKILL')
    run.stop()
    const acked = [...run.acked]
    const before = new Set(received)
    expect(acked.filter((v) => !before.has(v)).length, 'a backlog existed only on disk when Veil was killed').toBeGreaterThan(30)

    up = await upstreamOn(port, received)
    const second = await startVeil(dataDir, port)
    const have = (): Set<number> => new Set(received)
    await until(() => acked.every((v) => have().has(v)), { timeoutMs: 30_000, what: `all ${acked.length} acknowledged messages upstream` })
    expect(second.output()).toMatch(/"event":"queue_recovered"/)
    const duplicates = received.length - have().size
    console.info(`SIGKILL: ${acked.length} acknowledged before the kill, ${acked.length - before.size} of them only on disk; ${received.length} arrivals, ${duplicates} duplicates`)
    // Nothing arrives that no device sent.
    for (const v of received) expect(v % 10_000).toBeGreaterThan(0)
  }, 60_000)

  it('SIGTERM mid-stream exits 0 within the bound and leaves every acknowledged message in the durable queue', async () => {
    const dir = tempDir('veil-term-')
    cleanups.push(() => dir.remove())
    const dataDir = join(dir.path, 'data')
    // An upstream that is down for the whole run: everything acknowledged must be on disk at exit.
    const veil = await startVeil(dataDir, await freePort())
    const run = publish(await devices(veil, 3), 2)
    await until(() => run.acked.length >= 150, { timeoutMs: 20_000, what: '150 messages acknowledged' })
    const t0 = Date.now()
    veil.child.kill('SIGTERM')
    const exit = await veil.exited
    const ms = Date.now() - t0
    run.stop()
    const acked = [...run.acked]
    expect(exit).toEqual({ code: 0, signal: null })
    expect(ms).toBeLessThan(8000)
    expect(veil.output()).toMatch(/"event":"stopped"/)

    const queue = new UpstreamQueue(join(dataDir, 'queue', 'svc'), DEFAULT_QUEUE, () => {})
    cleanups.push(() => queue.close())
    const queued: number[] = []
    for (let t = queue.take(); t !== undefined; t = queue.take()) {
      const doc = JSON.parse(t.message.payload.toString('utf8')) as { data: { ENERGY: Record<string, unknown> } }
      // The queue holds filtered messages only: Power is not in the policy's allowlist.
      expect(Object.keys(doc.data.ENERGY)).toEqual(['Yesterday'])
      expect(t.message.topic).toMatch(/^veil\/svc\/smart_plug\/[a-z2-7]{26}\/sensor$/)
      queued.push(doc.data.ENERGY.Yesterday as number)
    }
    const inQueue = new Set(queued)
    expect(acked.filter((v) => !inQueue.has(v))).toEqual([])
    expect(queued.length).toBe(inQueue.size)
    console.info(`SIGTERM: exited 0 after ${ms} ms; ${acked.length} acknowledged, ${queued.length} in the queue`)
  }, 60_000)
})
