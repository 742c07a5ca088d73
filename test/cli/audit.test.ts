// `veil audit verify [DIR]` as a child process over real audit files: 0 and a summary with the head hash when the
// chain is whole, 1 naming the file and line of the first tampering, 2 for bad usage or a directory it cannot read.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { FileAuditLog } from '../../gateway/src/audit/audit.ts'
import { AUDIT_FILE, lineHash } from '../../gateway/src/audit/chain.ts'
import { cliHarness, type Run } from '../helpers/cli.ts'

const { tempDir, runAll } = cliHarness({ tempPrefix: 'veil-cli-audit-' })

async function logIn(dir: string, n: number): Promise<void> {
  const log = new FileAuditLog(dir, { maxBytes: 1000 })
  for (let i = 0; i < n; i++)
    log.record(
      { stage: 'filter', category: 'camera', reason: 'suppressed', domain: 'svc' },
      'v1',
      1_770_000_000_000 + i,
    )
  await log.close()
}

const whole = tempDir()
const tampered = tempDir()
const empty = tempDir()
let r: Record<'whole' | 'byEnv' | 'byFlag' | 'tampered' | 'missing' | 'empty' | 'unknown' | 'two' | 'bare', Run>
let head: string
beforeAll(async () => {
  await logIn(whole, 10)
  await logIn(tampered, 10)
  const lines = readFileSync(join(whole, AUDIT_FILE), 'utf8').trim().split('\n')
  head = lineHash(lines.at(-1) ?? '')
  const file = join(tampered, `${AUDIT_FILE}.1`)
  writeFileSync(file, readFileSync(file, 'utf8').replace('"svc"', '"ana"'))
  r = await runAll({
    whole: [['audit', 'verify', whole]],
    byEnv: [['audit', 'verify'], { env: { VEIL_DATA_DIR: whole } }],
    byFlag: [['audit', 'verify', '--data-dir', whole]],
    tampered: [['audit', 'verify', tampered]],
    missing: [['audit', 'verify', join(empty, 'nowhere')]],
    empty: [['audit', 'verify', empty]],
    unknown: [['audit', 'check', whole]],
    two: [['audit', 'verify', whole, empty]],
    bare: [['audit']],
  })
}, 120_000)

describe('veil audit verify', () => {
  it('exits 0 with a summary and the head hash when the chain is whole; DIR defaults to the data directory', () => {
    for (const run of [r.whole, r.byEnv, r.byFlag]) {
      expect(run.code, run.stderr).toBe(0)
      expect(run.stdout).toContain('audit log whole')
      expect(run.stdout).toContain('10 lines')
      expect(run.stdout).toContain(head)
    }
  })

  it('exits 1 naming the file and line of the first changed line', () => {
    expect(r.tampered.code).toBe(1)
    expect(r.tampered.stdout).toContain(`audit log NOT whole (changed): ${AUDIT_FILE}.1:1:`)
  })

  it('exits 2 for a directory it cannot read, one without audit files, and bad usage', () => {
    expect(r.missing.code).toBe(2)
    expect(r.missing.stderr).toContain(join(empty, 'nowhere'))
    expect(r.empty.code).toBe(2)
    expect(r.empty.stderr).toContain('no audit.jsonl')
    for (const run of [r.unknown, r.two, r.bare]) expect(run.code).toBe(2)
    expect(r.unknown.stderr).toContain('expected verify')
  })
})
