// `veil policy check --subject NAME`: what leaves for one person's devices under their consents, from the same
// files a running gateway reads (issue 15 part 7).
import { describe, expect, it } from 'vitest'
import { TESTDATA, cliHarness } from '../helpers/cli.ts'
import { join } from 'node:path'

const POLICIES = join(TESTDATA, 'policies-consent')
const { tempDir, veil } = cliHarness({ tempPrefix: 'veil-cli-policy-subject-', policies: POLICIES })

async function ok(args: string[]): Promise<string> {
  const run = await veil(args)
  expect({ code: run.code, stderr: run.stderr }).toMatchObject({ code: 0 })
  return run.stdout
}

describe('veil policy check --subject', () => {
  it('shows the variant each consent puts in force, and why nothing leaves where it does not', async () => {
    const data = tempDir()
    await ok(['subject', 'add', 'alice', '--device', 'tasmota:plug_1', '--data-dir', data])
    const before = await ok(['policy', 'check', '--subject', 'alice', '--data-dir', data])
    expect(before).toContain('What leaves for alice')
    expect(before).toMatch(/ {2}svc tasmota\/sensor:\n {4}kept: {8}ENERGY\.Yesterday\n/)
    await ok(['consent', 'grant', 'alice', 'energy_15min', '--domain', 'svc', '--data-dir', data])
    await ok(['consent', 'withdraw', 'alice', 'share_ana', '--domain', 'ana', '--data-dir', data])
    const after = await ok(['policy', 'check', '--subject', 'alice', '--data-dir', data])
    expect(after).toMatch(
      / {2}svc tasmota\/sensor \(with consent to energy_15min\):\n {4}kept: {8}ENERGY\.Total, ENERGY\.Yesterday\n/,
    )
    expect(after).toContain('  ana tasmota/sensor: nothing (sharing with this recipient withdrawn)')
  }, 120_000)

  it('a subject limited to a region sees every upstream without one refused; an unknown subject exits 2', async () => {
    const data = tempDir()
    await ok(['subject', 'add', 'kid', '--device', 'tasmota:plug_9', '--minor', '--regions', 'EU', '--data-dir', data])
    const out = await ok(['policy', 'check', '--subject', 'kid', '--data-dir', data])
    expect(out).toContain('What leaves for kid (a minor; data stays in EU)')
    expect(out).toContain('  svc tasmota/sensor: nothing (its upstream is not in a region the person allows)')
    const unknown = await veil(['policy', 'check', '--subject', 'nobody', '--data-dir', data])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('no subject nobody')
    expect(unknown.stdout).toBe('')
  }, 120_000)
})
