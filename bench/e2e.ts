import { cpSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseDocument } from 'yaml'
import { DEFAULT_POLICIES } from '../gateway/src/config/config.ts'
import { registry } from '../simulators/registry.ts'
import { tempDir } from '../test/helpers/gateway.ts'
import { MARKER_PLACEHOLDER, MAX_SEQ, type LoadConfig, type LoadResult } from './loadgen.ts'
import {
  cpuTicks,
  startAedesBridge,
  startMosquitto,
  startVeil,
  runChild,
  TICKS_PER_SECOND,
  type Started,
} from './processes.ts'
import { round } from './stats.ts'

export interface E2eOptions {
  readonly devices: number
  readonly window: number
  readonly warmupMs: number
  readonly durationMs: number
  readonly settleMs: number
  /** The fixed rate at which latency is compared (issue 8: 5k msg/s). */
  readonly latencyRate: number
}

export const E2E_FULL: E2eOptions = {
  devices: 10,
  window: 32,
  warmupMs: 2000,
  durationMs: 10_000,
  settleMs: 5000,
  latencyRate: 5000,
}
export const E2E_QUICK: E2eOptions = {
  devices: 10,
  window: 32,
  warmupMs: 400,
  durationMs: 1200,
  settleMs: 1500,
  latencyRate: 5000,
}

export type TargetName = 'mosquitto' | 'aedes bridge' | 'veil'
export const TARGETS: readonly TargetName[] = ['mosquitto', 'aedes bridge', 'veil']

export interface E2eRow {
  readonly target: TargetName
  readonly qos: 0 | 1
  readonly mode: 'flat out' | 'fixed rate'
  readonly rate: number
  readonly result: LoadResult
  /** receivedPerSec over mosquitto's for the same QoS and mode. */
  readonly throughputRatio: number
  /** p99 minus mosquitto's p99 for the same QoS and mode, ms. */
  readonly addedP99Ms: number
  /**
   * CPU time (user + system, from /proc) per message sent, µs, over the whole run: the broker under test, the
   * upstream mosquitto Veil and the aedes bridge forward to (undefined where mosquitto is the target itself), and the
   * load generator with its consumer. What each design costs per message, whatever the two cores' contention.
   */
  readonly cpuUsPerMessage: {
    readonly target: number
    readonly upstream: number | undefined
    readonly generator: number
  }
}

/** The stream of section (b): Frigate's event updates, 1.9 kB of JSON, each giving one filtered copy upstream (svc). */
export const E2E_TOPIC = 'frigate/events'

/**
 * One Frigate event update per device (camera `bench_cam_<i>`), its `after.id` replaced by the sequence marker.
 * Frigate event ids are opaque strings, so the marker is a realistic value for the field.
 */
export function e2eMessages(devices: number): { topic: string; payload: string }[] {
  const frigate = registry.frigate
  if (frigate === undefined) throw new Error('no frigate simulator')
  const [device] = frigate.profile.createDevices(1, 7)
  if (device === undefined) throw new Error('no frigate device')
  const t0 = Date.UTC(2026, 1, 2, 2, 40)
  const messages = [...device.start(t0), ...device.tick(t0 + 1000), ...device.tick(t0 + 2000)]
  const event = messages.filter((m) => m.topic === E2E_TOPIC).at(-1)
  if (event === undefined) throw new Error('the frigate simulator sent no event')
  const doc = JSON.parse(event.payload.toString('utf8')) as {
    before?: { camera?: string }
    after: { id: string; camera: string }
  }
  return Array.from({ length: devices }, (_, i) => {
    doc.after.id = MARKER_PLACEHOLDER
    doc.after.camera = `bench_cam_${i}`
    if (doc.before !== undefined) doc.before.camera = `bench_cam_${i}`
    return { topic: E2E_TOPIC, payload: JSON.stringify(doc) }
  })
}

/**
 * The shipped policies with one change, stated in BENCHMARKS.md: svc's allowlist for frigate/events also keeps
 * `after.id`, which carries the sequence number (no field of the default policy survives unchanged: times are
 * floored, scores rounded). Every operator of the default policy still runs on every message.
 */
export function benchPolicies(dir: string): string {
  cpSync(DEFAULT_POLICIES, dir, { recursive: true })
  const file = join(dir, 'camera.yaml')
  const doc = parseDocument(readFileSync(file, 'utf8'))
  const allow = doc.getIn(['domains', 'svc', 'streams', 'frigate/events', 'allow']) as
    | { items: unknown[]; add(v: unknown): void }
    | undefined
  if (allow === undefined) throw new Error(`${file}: no svc allowlist for frigate/events`)
  allow.add('after.id')
  writeFileSync(file, doc.toString())
  return dir
}

async function withTarget<T>(
  name: TargetName,
  policies: string,
  work: (target: Started, upstream: Started) => Promise<T>,
): Promise<T> {
  const upstream = await startMosquitto()
  let target: Started | undefined
  try {
    target =
      name === 'mosquitto'
        ? upstream
        : name === 'aedes bridge'
          ? await startAedesBridge(upstream.port)
          : await startVeil({ upstreamPort: upstream.port, policies })
    return await work(target, upstream)
  } finally {
    if (target !== undefined && target !== upstream) await target.stop()
    await upstream.stop()
  }
}

/** Section (b): the same generator and consumer against mosquitto alone, an unfiltered aedes bridge and Veil. */
export async function runE2e(options: E2eOptions, log: (line: string) => void = () => {}): Promise<E2eRow[]> {
  const dir = tempDir('veil-bench-policies-')
  const raw: Omit<E2eRow, 'throughputRatio' | 'addedP99Ms'>[] = []
  const perMessage = (ticks: number, sent: number): number =>
    sent === 0 ? Number.NaN : round((ticks / TICKS_PER_SECOND / sent) * 1e6, 1)
  try {
    const policies = benchPolicies(dir.path)
    const messages = e2eMessages(options.devices)
    let run = 0
    for (const name of TARGETS) {
      await withTarget(name, policies, async (target, upstream) => {
        for (const qos of [0, 1] as const) {
          for (const rate of [options.latencyRate, 0]) {
            const config: LoadConfig = {
              devices: { host: '127.0.0.1', port: target.port },
              consumer: { host: '127.0.0.1', port: upstream.port },
              subscribe: name === 'veil' ? 'veil/svc/#' : E2E_TOPIC,
              qos,
              messages,
              rate,
              warmupMs: options.warmupMs,
              durationMs: options.durationMs,
              window: options.window,
              settleMs: options.settleMs,
              seqBase: (run++ % 24) * MAX_SEQ,
            }
            const timeout = options.warmupMs + options.durationMs + options.settleMs + 30_000
            const bridged = target.pid !== upstream.pid
            const targetBefore = cpuTicks(target.pid)
            const upstreamBefore = bridged ? cpuTicks(upstream.pid) : 0
            const result = await runChild<LoadResult>('bench/loadgen.ts', config, timeout)
            const cpuUsPerMessage = {
              target: perMessage(cpuTicks(target.pid) - targetBefore, result.sent),
              upstream: bridged ? perMessage(cpuTicks(upstream.pid) - upstreamBefore, result.sent) : undefined,
              generator: round((result.cpuMs * 1000) / Math.max(1, result.sent), 1),
            }
            const mode = rate === 0 ? 'flat out' : 'fixed rate'
            log(
              `  ${name} qos ${qos} ${mode}: ${result.receivedPerSec} msg/s received, p50 ${ms(result.p50Ms)} ms, p99 ${ms(result.p99Ms)} ms, lost ${result.lost}`,
            )
            raw.push({ target: name, qos, mode, rate, result, cpuUsPerMessage })
          }
        }
      })
    }
  } finally {
    dir.remove()
  }
  return raw.map((row) => {
    const base = raw.find((r) => r.target === 'mosquitto' && r.qos === row.qos && r.mode === row.mode)
    return {
      ...row,
      throughputRatio:
        base === undefined || base.result.receivedPerSec === 0
          ? Number.NaN
          : round(row.result.receivedPerSec / base.result.receivedPerSec, 2),
      addedP99Ms: base === undefined ? Number.NaN : round(row.result.p99Ms - base.result.p99Ms, 2),
    }
  })
}

/** A latency for the progress log; NaN (nothing received) crosses the child-process JSON as null. */
function ms(value: number | null): string {
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(2) : '–'
}
