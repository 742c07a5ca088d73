/**
 * The cost of the audit log's hash chain: FileAuditLog with and without `seq`/`prev` (the SHA-256 of the line
 * before each line), in the same run, alternating rounds so both see the same machine. Each round records
 * `perRound` drops in batches of 320 per event-loop turn (as a flood of withheld copies arrives) and closes the log,
 * so the time includes the writes. Prints lines per second (median of the rounds) and µs per line for both, and the
 * chain's share. Usage: node --import tsx bench/audit-chain.ts [rounds=7] [linesPerRound=100000]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type AuditEntry, FileAuditLog } from '../gateway/src/audit/audit.ts'

const rounds = Number(process.argv[2] ?? 7)
const perRound = Number(process.argv[3] ?? 100_000)
const BATCH = 320
const entry: AuditEntry = { stage: 'filter', category: 'smart_plug', reason: 'suppressed', domain: 'ana' }
const policy = 'sha256:0123456789abcdef'

async function round(chain: boolean): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'veil-audit-bench-'))
  try {
    const log = new FileAuditLog(dir, { chain })
    const t0 = 1_770_000_000_000
    const start = process.hrtime.bigint()
    for (let done = 0; done < perRound; done += BATCH) {
      for (let i = 0; i < BATCH; i++) log.record(entry, policy, t0 + done + i)
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    await log.close()
    return Number(process.hrtime.bigint() - start) / 1e9
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN
const plain: number[] = []
const chained: number[] = []
await round(true)
await round(false)
for (let r = 0; r < rounds; r++) {
  plain.push(await round(false))
  chained.push(await round(true))
}
const rate = (seconds: number): number => perRound / seconds
const show = (name: string, xs: number[]): string =>
  `${name.padEnd(10)} ${Math.round(rate(median(xs))).toLocaleString('en')} lines/s  ${((median(xs) / perRound) * 1e6).toFixed(2)} µs/line`
process.stdout.write(
  `audit log, ${perRound} lines per round, median of ${rounds} rounds\n${show('unchained', plain)}\n${show('chained', chained)}\n` +
    `chain cost ${(((median(chained) - median(plain)) / perRound) * 1e6).toFixed(2)} µs/line (${((median(chained) / median(plain) - 1) * 100).toFixed(0)}%)\n`,
)
