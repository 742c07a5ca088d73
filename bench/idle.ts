import { startAedesBridge, startMosquitto, startVeil, node, rssMb, type Started } from './processes.ts'
import { round } from './stats.ts'
import { join } from 'node:path'
import { ROOT } from './processes.ts'

export interface IdleOptions {
  readonly connections: number
  readonly settleMs: number
}

export const IDLE_FULL: IdleOptions = { connections: 10_000, settleMs: 3000 }
export const IDLE_QUICK: IdleOptions = { connections: 1000, settleMs: 1000 }
/** At most 500 MB RSS with 10k idle device connections (issue 8 (d)). */
export const IDLE_TARGET_MB = 500

export interface IdleRow {
  readonly target: 'mosquitto' | 'aedes bridge' | 'veil'
  readonly connections: number
  readonly failed: number
  readonly connectMs: number
  readonly rssBeforeMb: number
  readonly rssAfterMb: number
  readonly mbPer1k: number
  /** RSS extrapolated to 10k connections (equal to rssAfterMb when 10k were opened). */
  readonly rssAt10kMb: number
}

async function hold(
  port: number,
  count: number,
): Promise<{ result: { connected: number; failed: number; ms: number }; stop(): Promise<void> }> {
  const child = node([join(ROOT, 'bench/idle-clients.ts'), JSON.stringify({ host: '127.0.0.1', port, count })])
  let stdout = ''
  let stderr = ''
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const result = await new Promise<{ connected: number; failed: number; ms: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`idle clients: not connected within 120 s ${stderr}`)), 120_000)
    child.stdout?.on('data', (c: Buffer) => {
      stdout += c.toString('utf8')
      if (stdout.includes('\n')) {
        clearTimeout(timer)
        resolve(JSON.parse(stdout.split('\n')[0] as string))
      }
    })
    child.once('exit', (code) => reject(new Error(`idle clients exited ${code}: ${stderr}`)))
  })
  return {
    result,
    stop: async () => {
      child.kill('SIGKILL')
      await exited
    },
  }
}

async function measure(name: IdleRow['target'], target: Started, options: IdleOptions): Promise<IdleRow> {
  await new Promise((r) => setTimeout(r, options.settleMs))
  const before = rssMb(target.pid)
  const clients = await hold(target.port, options.connections)
  try {
    await new Promise((r) => setTimeout(r, options.settleMs))
    const after = rssMb(target.pid)
    const perK = ((after - before) / Math.max(1, clients.result.connected)) * 1000
    return {
      target: name,
      connections: clients.result.connected,
      failed: clients.result.failed,
      connectMs: clients.result.ms,
      rssBeforeMb: round(before, 1),
      rssAfterMb: round(after, 1),
      mbPer1k: round(perK, 2),
      rssAt10kMb: round(before + perK * 10, 1),
    }
  } finally {
    await clients.stop()
  }
}

/** Section (d): RSS of each broker before and after N idle device connections (Veil without an upstream). */
export async function runIdle(options: IdleOptions): Promise<IdleRow[]> {
  const rows: IdleRow[] = []
  const mosquitto = await startMosquitto()
  try {
    rows.push(await measure('mosquitto', mosquitto, options))
    const bridge = await startAedesBridge(mosquitto.port)
    try {
      rows.push(await measure('aedes bridge', bridge, options))
    } finally {
      await bridge.stop()
    }
    const veil = await startVeil({ upstreamPort: mosquitto.port })
    try {
      rows.push(await measure('veil', veil, options))
    } finally {
      await veil.stop()
    }
  } finally {
    await mosquitto.stop()
  }
  return rows
}
