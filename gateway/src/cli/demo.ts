import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { join, resolve } from 'node:path'
import { Aedes } from 'aedes'
import mqtt from 'mqtt'
import { DEMO_PROFILES, profiles, runSimulators } from '../../../simulators/index.ts'
import { CredentialStore } from '../auth/store.ts'
import { builtinPlugins } from '../builtins.ts'
import { resolveConfig, upstreamConfig, type GatewayConfig } from '../config/config.ts'
import { VeilError } from '../errors.ts'
import { Gateway } from '../gateway.ts'
import { listen } from '../ingest/broker.ts'
import { createLogger } from '../telemetry/log.ts'
import { parse } from './args.ts'

const tty = process.stdout.isTTY === true
const DEMO_SEED = 1
const paint = (code: number, text: string): string => (tty ? `\u001b[${code}m${text}\u001b[0m` : text)
const dim = (t: string): string => paint(2, t)

/**
 * `npm start`: Veil with an embedded stand-in for the cloud (a second aedes), one simulated device per category
 * (DEMO_PROFILES; all thirteen simulators at 4 msg/s would leave each device a tick a minute), and a consumer on the upstream that prints each filtered message on one line. Raw messages are shown as topic
 * and size only. Ports default to 1884 (devices), 1885 (upstream) and 9464 (metrics); a busy port falls back to
 * a free one, so the demo runs beside a mosquitto on 1883.
 */
export async function demo(args: readonly string[]): Promise<number> {
  const { values } = parse(args, {
    duration: { type: 'string' },
    rate: { type: 'string' },
    'data-dir': { type: 'string' },
  })
  const durationMs = values.duration === undefined ? undefined : Number(values.duration) * 1000
  const dataDir = resolve(values['data-dir'] ?? '.veil-demo')
  prepareDemoDataDir(dataDir, values['data-dir'] === undefined)

  const upstream = await Aedes.createBroker({ id: 'demo-cloud' })
  const upstreamServer = createServer(upstream.handle)
  const upstreamPort = await listenFallback(upstreamServer, 1885)
  const upstreamUrl = `mqtt://127.0.0.1:${upstreamPort}`

  // Veil refuses anonymous clients: the demo gives each simulated device an account of its own profile (the
  // simulators' names are the profiles' names), created afresh each run and never printed.
  const store = CredentialStore.open(dataDir)
  const credentials = new Map<string, { username: string; password: string }>()
  for (const name of DEMO_PROFILES) {
    for (const device of profiles[name]?.createDevices(1, DEMO_SEED) ?? []) {
      credentials.set(device.id, {
        username: device.id,
        password: await store.add({ name: device.id, role: 'device', profile: name }, { replace: true }),
      })
    }
  }

  const logger = createLogger('warn', process.stderr)
  let gateway: Gateway | undefined
  for (const [listenPort, httpPort] of [
    [1884, 9464],
    [0, 0],
  ] as const) {
    const base = resolveConfig(builtinPlugins, {
      listen: `mqtt://127.0.0.1:${listenPort}`,
      http: `127.0.0.1:${httpPort}`,
      dataDir,
    })
    const config: GatewayConfig = { ...base, domains: withUpstream(base, upstreamUrl) }
    try {
      gateway = await Gateway.start(config, builtinPlugins, logger)
      break
    } catch (err) {
      if ((err as { code?: string }).code !== 'VEIL_ERR_PORT_IN_USE' || listenPort === 0) throw err
    }
  }
  if (gateway === undefined) return 1
  const gw = gateway
  const deviceUrl = `mqtt://127.0.0.1:${gw.broker.address.port}`

  console.log(`Veil demo: devices -> ${deviceUrl} -> Veil -> cloud ${upstreamUrl}`)
  console.log(
    `  metrics http://127.0.0.1:${gw.http.address.port}/metrics   policy ${gw.policyVersion}   data ${dataDir}`,
  )
  console.log(`  watch it yourself: mosquitto_sub -h 127.0.0.1 -p ${upstreamPort} -t 'veil/#' -v     Ctrl-C stops.`)
  console.log('')

  gw.onProcessed((topic, size, result) => {
    const fate =
      result.dropped !== undefined
        ? paint(33, `dropped (${result.dropped.stage}: ${result.dropped.reason})`)
        : `${result.outputs.length} out${result.domainDrops.length > 0 ? `, ${result.domainDrops.length} withheld (${[...new Set(result.domainDrops.map((d) => `${d.domain}: ${d.reason}`))].join(', ')})` : ''}`
    console.log(`${paint(36, 'in ')}  ${topic}  ${dim(`${size} B`)}  ${dim('->')} ${fate}`)
  })

  // Subscribed before the first device publishes, so the consumer sees every filtered message of the run.
  const consumer = await mqtt.connectAsync(upstreamUrl, { clientId: 'demo-consumer', protocolVersion: 4 })
  await consumer.subscribeAsync('veil/#', { qos: 1 })
  consumer.on('message', (topic, payload) => {
    console.log(`${paint(32, 'out')}  ${topic}  ${payload.toString('utf8')}`)
  })

  const controller = new AbortController()
  const run = runSimulators({
    url: deviceUrl,
    profiles: [...DEMO_PROFILES],
    devices: 1,
    seed: DEMO_SEED,
    credentialsFor: (_profile, device) => credentials.get(device.id),
    ratePerSecond: values.rate === undefined ? 4 : Number(values.rate),
    durationMs,
    signal: controller.signal,
  })

  await new Promise<void>((done) => {
    process.once('SIGINT', () => done())
    process.once('SIGTERM', () => done())
    run.done.then(
      () => done(),
      () => done(),
    )
  })
  controller.abort()
  await run.stop()
  await new Promise<void>((done) => consumer.end(false, {}, () => done()))
  await gw.close(1000)
  await new Promise<void>((done) => upstreamServer.close(() => done()))
  await new Promise<void>((done) => upstream.close(() => done()))
  console.log(dim(`\nstopped; the audit log of dropped messages is ${join(dataDir, 'audit.jsonl')}`))
  return 0
}

/** Marks a data directory as the demo's own: only there does the demo discard a queue. */
export const DEMO_MARKER = '.veil-demo-data'

/**
 * The demo's stand-in cloud starts empty each run, so copies queued for the last run's cloud have no recipient, and
 * delivered to this run's they would show up as stale `out` lines before the first device publishes: the queue is
 * discarded. Only in the demo's own directory (the default `.veil-demo`, or a new or empty one it marked): any other
 * `--data-dir` may be a real gateway's, whose backlog must never be thrown away, so the demo refuses it.
 */
export function prepareDemoDataDir(dataDir: string, isDefault: boolean): void {
  const marker = join(dataDir, DEMO_MARKER)
  const queue = join(dataDir, 'queue')
  // Only a new or empty directory becomes the demo's: marking one that holds anything else (keys, accounts, a
  // gateway's data yet without a queue) would let a later demo run discard a real gateway's backlog.
  if (!isDefault && !existsSync(marker) && existsSync(dataDir) && readdirSync(dataDir).length > 0) {
    throw new VeilError(
      'VEIL_ERR_USAGE',
      `demo: ${dataDir} (--data-dir) is not empty and not a demo data directory (the demo discards its queue at each start); give the demo a new or empty directory`,
    )
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  writeFileSync(marker, 'made by veil demo: its upstream queue is discarded at each start\n', { mode: 0o600 })
  rmSync(queue, { recursive: true, force: true })
}

function withUpstream(config: GatewayConfig, url: string): GatewayConfig['domains'] {
  const domains = new Map(config.domains)
  for (const [domain, c] of domains) {
    domains.set(domain, {
      ...c,
      // The embedded cloud is aedes 1.x, which speaks MQTT 3.1.1 only.
      upstream: upstreamConfig(url, { protocolVersion: 4 }),
    })
  }
  return domains
}

async function listenFallback(server: Server, port: number): Promise<number> {
  try {
    await listen(server, '127.0.0.1', port, 'the demo')
  } catch {
    await listen(server, '127.0.0.1', 0, 'the demo')
  }
  return (server.address() as AddressInfo).port
}
