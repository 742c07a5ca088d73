/**
 * A/B of section (b) for tuning: two Veil source trees (a baseline checkout and this one) each as its own
 * `veil start` with its own upstream mosquitto, QoS 1 flat out, runs alternating A B B A ... so that both see the
 * same background load. Prints each run and the medians.
 * Usage: node --import tsx bench/veil-ab.ts <baseline root> [pairs=3] [seconds=4] [rate=0]
 * VEIL_AB_NODE_FLAGS (space-separated) gives B's node process extra flags; with this tree as the baseline root too,
 * that compares a node or V8 setting alone.
 */
import { readFileSync } from 'node:fs'
import { tempDir } from '../test/helpers/gateway.ts'
import { benchPolicies, e2eMessages, E2E_QUICK } from './e2e.ts'
import { MAX_SEQ, type LoadConfig, type LoadResult } from './loadgen.ts'
import { ROOT, runChild, startMosquitto, startVeil, type Started } from './processes.ts'
import { median } from './stats.ts'

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  return Number(fields[11]) + Number(fields[12])
}

const baseline = process.argv[2]
if (baseline === undefined) throw new Error('usage: bench/veil-ab.ts <baseline root> [pairs] [seconds] [rate]')
const pairs = Number(process.argv[3] ?? 3)
const seconds = Number(process.argv[4] ?? 4)
const rate = Number(process.argv[5] ?? 0)
const dir = tempDir('veil-bench-policies-')
const policies = benchPolicies(dir.path)
const sides: {
  name: string
  upstream: Started
  veil: Started
  rates: number[]
  p99: number[]
  cpu: number[]
  usPerMsg: number[]
}[] = []
try {
  const flagsB = (process.env.VEIL_AB_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '')
  for (const [name, root, nodeFlags] of [
    ['A (baseline)', baseline, []],
    [`B (this tree${flagsB.length > 0 ? ` ${flagsB.join(' ')}` : ''})`, ROOT, flagsB],
  ] as const) {
    const upstream = await startMosquitto()
    const veil = await startVeil({ upstreamPort: upstream.port, policies, root, nodeFlags })
    sides.push({ name, upstream, veil, rates: [], p99: [], cpu: [], usPerMsg: [] })
  }
  const messages = e2eMessages(E2E_QUICK.devices)
  let run = 0
  for (let pair = 0; pair < pairs; pair++) {
    const order = pair % 2 === 0 ? sides : [...sides].reverse()
    for (const side of order) {
      const config: LoadConfig = {
        devices: { host: '127.0.0.1', port: side.veil.port },
        consumer: { host: '127.0.0.1', port: side.upstream.port },
        subscribe: 'veil/svc/#',
        qos: 1,
        messages,
        rate,
        warmupMs: 500,
        durationMs: seconds * 1000,
        window: E2E_QUICK.window,
        settleMs: 1500,
        seqBase: (run++ % 24) * MAX_SEQ,
      }
      const before = cpuTicks(side.veil.pid)
      const started = process.hrtime.bigint()
      const result = await runChild<LoadResult>('bench/loadgen.ts', config, seconds * 1000 + 30_000)
      const wallS = Number(process.hrtime.bigint() - started) / 1e9
      const cpuS = (cpuTicks(side.veil.pid) - before) / 100
      const cpu = cpuS / wallS
      // CPU time per message received: what a change saves, whatever share of a core the shared machine left Veil.
      const usPerMsg = result.received === 0 ? Number.NaN : (cpuS * 1e6) / result.received
      side.usPerMsg.push(usPerMsg)
      const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0]
      side.rates.push(result.receivedPerSec)
      side.p99.push(result.p99Ms)
      side.cpu.push(cpu)
      console.log(
        `${side.name}: ${result.receivedPerSec} msg/s, p50 ${result.p50Ms?.toFixed(1)} ms, p99 ${result.p99Ms?.toFixed(1)} ms, lost ${result.lost}, behind ${result.behind}, veil CPU ${(cpu * 100).toFixed(0)} %, ${usPerMsg.toFixed(0)} µs CPU/msg, load ${load}`,
      )
    }
  }
  for (const s of sides)
    console.log(
      `${s.name}: median ${median(s.rates)} msg/s, p99 ${median(s.p99).toFixed(1)} ms, veil CPU ${(median(s.cpu) * 100).toFixed(0)} %, ${median(s.usPerMsg).toFixed(0)} µs CPU/msg  [${s.rates.join(' ')}] [${s.usPerMsg.map((u) => u.toFixed(0)).join(' ')} µs]`,
    )
} finally {
  for (const s of sides) {
    await s.veil.stop()
    await s.upstream.stop()
  }
  dir.remove()
}
