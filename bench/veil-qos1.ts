/**
 * A narrower section (b) for tuning: Veil alone at QoS 1 flat out, `rounds` runs of `seconds` each against one
 * `veil start` and one upstream mosquitto, with the gateway's and the generator's CPU time per run (from /proc),
 * so that a change to the forwarding path can be measured in under a minute and the generator shown not to be
 * the bottleneck. Usage: node --import tsx bench/veil-qos1.ts [rounds=3] [seconds=4]
 */
import { readFileSync } from 'node:fs'
import { tempDir } from '../test/helpers/gateway.ts'
import { benchPolicies, e2eMessages, E2E_QUICK } from './e2e.ts'
import { MAX_SEQ, type LoadConfig, type LoadResult } from './loadgen.ts'
import { cpuTicks, runChild, startMosquitto, startVeil } from './processes.ts'

const rounds = Number(process.argv[2] ?? 3)
const seconds = Number(process.argv[3] ?? 4)
const dir = tempDir('veil-bench-policies-')
const upstream = await startMosquitto()
const veil = await startVeil({ upstreamPort: upstream.port, policies: benchPolicies(dir.path) })
try {
  const messages = e2eMessages(E2E_QUICK.devices)
  for (let run = 0; run < rounds; run++) {
    const config: LoadConfig = {
      devices: { host: '127.0.0.1', port: veil.port },
      consumer: { host: '127.0.0.1', port: upstream.port },
      subscribe: 'veil/svc/#',
      qos: 1,
      messages,
      rate: 0,
      warmupMs: 500,
      durationMs: seconds * 1000,
      window: E2E_QUICK.window,
      settleMs: 1500,
      seqBase: run * MAX_SEQ,
    }
    const veilBefore = cpuTicks(veil.pid)
    const mosquittoBefore = cpuTicks(upstream.pid)
    const started = process.hrtime.bigint()
    const result = await runChild<LoadResult>('bench/loadgen.ts', config, seconds * 1000 + 30_000)
    const wallS = Number(process.hrtime.bigint() - started) / 1e9
    const veilCpu = (cpuTicks(veil.pid) - veilBefore) / 100 / wallS
    const mosquittoCpu = (cpuTicks(upstream.pid) - mosquittoBefore) / 100 / wallS
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0]
    console.log(
      `run ${run + 1}: ${result.receivedPerSec} msg/s received, p50 ${result.p50Ms?.toFixed(1)} ms, p99 ${result.p99Ms?.toFixed(1)} ms, lost ${result.lost}; ` +
        `veil CPU ${(veilCpu * 100).toFixed(0)} %, generator ${((result.cpuMs / 1000 / wallS) * 100).toFixed(0)} %, upstream mosquitto ${(mosquittoCpu * 100).toFixed(0)} % (averaged over the run with its settle), load ${load}`,
    )
  }
} finally {
  await veil.stop()
  await upstream.stop()
  dir.remove()
}
