// `veil subject` and `veil consent` as an operator runs them, over real files in a temporary data directory: what
// each command prints and writes, and that every bad input exits 2 and leaves both files byte for byte as they were.
import { cpSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { TESTDATA, cliHarness, type Run } from '../helpers/cli.ts'

const POLICIES = join(TESTDATA, 'policies-consent')
const { tempDir, veil, runAll } = cliHarness({ tempPrefix: 'veil-cli-subjects-', policies: POLICIES })

const APPLIED = 'A running gateway applies it at once (it watches the data directory) or on SIGHUP.'

function ok(run: Run): Run {
  expect({ code: run.code, stderr: run.stderr }).toMatchObject({ code: 0 })
  return run
}

/** A data directory with alice (adult) and kid (minor, EU and DE only), and one consent record, made once. */
let base = ''
beforeAll(async () => {
  base = tempDir()
  const r = await runAll({
    alice: [
      [
        'subject',
        'add',
        'alice',
        '--device',
        'owntracks:Alice/Phone',
        '--device',
        'tasmota:plug_1',
        '--data-dir',
        base,
      ],
    ],
    kid: [
      ['subject', 'add', 'kid', '--device', 'owntracks:kid/phone', '--minor', '--regions', 'EU,DE', '--data-dir', base],
    ],
  })
  ok(r.alice)
  ok(r.kid)
  ok(await veil(['consent', 'grant', 'alice', 'energy_15min', '--domain', 'svc', '--data-dir', base]))
}, 120_000)

/** A copy of that directory, for one test to change. */
function household(): string {
  const data = tempDir()
  cpSync(base, data, { recursive: true })
  return data
}

describe('veil subject', () => {
  it('adds, lists, shows and removes subjects in a 0600 subjects.json', async () => {
    const data = household()
    const file = join(data, 'subjects.json')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const stored = JSON.parse(readFileSync(file, 'utf8')) as {
      subjects: { name: string; id: string; devices: string[] }[]
    }
    expect(stored.subjects.map((s) => s.name)).toEqual(['alice', 'kid'])
    expect(stored.subjects[0]?.devices).toEqual(['owntracks:alice/phone', 'tasmota:plug_1'])
    expect(stored.subjects[0]?.id).toMatch(/^[0-9a-f]{16}$/)

    const r = await runAll({
      list: [['subject', 'list', '--data-dir', data]],
      show: [['subject', 'show', 'alice', '--data-dir', data]],
      kid: [['subject', 'show', 'kid', '--data-dir', data]],
      household: [['subject', 'show', 'household', '--data-dir', data]],
    })
    expect(ok(r.list).stdout).toBe('alice\t2\tadult\tany\nkid\t1\tminor\tEU,DE\n')
    const show = ok(r.show).stdout
    expect(show).toContain('subject alice\ndevices: owntracks:alice/phone, tasmota:plug_1\nminor: no\nregions: any\n')
    expect(show).toContain('consents in force:\n  svc: energy_15min, share_svc\n  ana: share_ana\n  3p: share_3p\n')
    expect(show).toMatch(/history:\n {2}\d{4}-\d\d-\d\dT[\d:.]+Z grant energy_15min svc by subject\n$/)
    expect(ok(r.kid).stdout).toContain('minor: yes\nregions: EU, DE\n')
    expect(ok(r.household).stdout).toContain('devices: every device no subject claims\n')

    const removed = ok(await veil(['subject', 'remove', 'alice', '--data-dir', data]))
    expect(removed.stdout).toMatch(/^removed subject alice; its devices belong to the household again/)
    expect(removed.stderr).toContain(APPLIED)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(ok(await veil(['subject', 'list', '--data-dir', data])).stdout).toBe('kid\t1\tminor\tEU,DE\n')
    const after = await runAll({
      // alice's history stays in the log: a new person under her name must not inherit her consents.
      again: [['subject', 'add', 'alice', '--device', 'tasmota:plug_1', '--data-dir', data]],
      other: [['subject', 'add', 'alice2', '--device', 'owntracks:alice/phone', '--data-dir', data]],
    })
    expect(after.again.code).toBe(2)
    expect(after.again.stderr).toMatch(/holds the consent history of an earlier subject of that name/)
    // The phone is free again.
    expect(ok(after.other).stdout).toMatch(/^added subject alice2: 1 device \(owntracks:alice\/phone\), regions any\n$/)
  }, 120_000)

  it('replaces a subject, keeping its id and its consents', async () => {
    const data = household()
    const idOf = (): string | undefined =>
      (
        JSON.parse(readFileSync(join(data, 'subjects.json'), 'utf8')) as { subjects: { name: string; id: string }[] }
      ).subjects.find((s) => s.name === 'alice')?.id
    const before = idOf()
    const replaced = ok(
      await veil([
        'subject',
        'add',
        'alice',
        '--device',
        'owntracks:alice/phone',
        '--regions',
        'EU',
        '--replace',
        '--data-dir',
        data,
      ]),
    )
    expect(replaced.stdout).toBe('replaced subject alice: 1 device (owntracks:alice/phone), regions EU\n')
    expect(idOf()).toBe(before)
    expect(ok(await veil(['consent', 'show', 'alice', '--data-dir', data])).stdout).toContain(
      '  svc: energy_15min, share_svc\n',
    )
  }, 120_000)
})

describe('veil consent', () => {
  it('appends grants and withdrawals to a 0600 consent.jsonl, never rewriting a line, and shows the state they derive', async () => {
    const data = household()
    const file = join(data, 'consent.jsonl')
    const first = readFileSync(file, 'utf8')
    expect(statSync(file).mode & 0o777).toBe(0o600)

    const withdraw = ok(await veil(['consent', 'withdraw', 'alice', 'energy_15min', '--data-dir', data]))
    expect(withdraw.stdout).toBe(
      'withdrew energy_15min for alice in every domain (by subject)\nconsents in force:\n  svc: share_svc\n  ana: share_ana\n  3p: share_3p\n',
    )
    expect(withdraw.stderr).toContain(APPLIED)
    const both = readFileSync(file, 'utf8')
    expect(both.startsWith(first)).toBe(true)
    const lines = both
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(lines).toEqual([
      {
        time: expect.any(String),
        subject: 'alice',
        purpose: 'energy_15min',
        domain: 'svc',
        granted: true,
        by: 'subject',
      },
      { time: expect.any(String), subject: 'alice', purpose: 'energy_15min', granted: false, by: 'subject' },
    ])

    const r = await runAll({
      guardian: [['consent', 'grant', 'kid', 'energy_15min', '--by', 'guardian', '--data-dir', data]],
      share: [['consent', 'withdraw', 'household', 'share_ana', '--data-dir', data]],
    })
    expect(ok(r.guardian).stdout).toContain('granted energy_15min for kid in every domain (by guardian)\n')
    expect(r.guardian.stderr).toContain(
      'kid is a minor: location, health and camera data never leave for ana or 3p, whatever is granted.',
    )
    expect(ok(r.share).stdout).toContain('  ana: (none)\n')

    const show = ok(await veil(['consent', 'show', 'alice', '--data-dir', data])).stdout
    expect(show).toMatch(
      /^consents in force:\n {2}svc: share_svc\n {2}ana: share_ana\n {2}3p: share_3p\nhistory:\n.* grant energy_15min svc by subject\n.* withdraw energy_15min every domain by subject\n$/,
    )
    expect(readFileSync(file, 'utf8').trimEnd().split('\n')).toHaveLength(4)
  }, 120_000)

  it("starts from the configuration's optIn for adults, never for a minor", async () => {
    const data = household()
    const config = join(tempDir(), 'veil.yaml')
    writeFileSync(config, 'optIn:\n  energy_15min: true\n')
    const r = await runAll({
      household: [['consent', 'show', 'household', '--config', config, '--data-dir', data]],
      kid: [['consent', 'show', 'kid', '--config', config, '--data-dir', data]],
    })
    expect(ok(r.household).stdout).toContain('  svc: energy_15min, share_svc\n')
    expect(ok(r.kid).stdout).toContain('  svc: share_svc\n')
  }, 120_000)

  it('refuses every bad input with exit 2 and a clear message, changing neither file', async () => {
    const data = household()
    const files = ['subjects.json', 'consent.jsonl'].map((f) => join(data, f))
    const before = files.map((f) => readFileSync(f))
    const d = ['--data-dir', data]
    const r = await runAll({
      profile: [['subject', 'add', 'bob', '--device', 'nosuch:x', ...d]],
      malformed: [['subject', 'add', 'bob', '--device', 'owntracks', ...d]],
      claimed: [['subject', 'add', 'bob', '--device', 'tasmota:PLUG_1', ...d]],
      taken: [['subject', 'add', 'alice', '--device', 'tasmota:x', ...d]],
      reserved: [['subject', 'add', 'household', '--device', 'tasmota:x', ...d]],
      name: [['subject', 'add', 'Bob', '--device', 'tasmota:x', ...d]],
      noDevice: [['subject', 'add', 'bob', ...d]],
      region: [['subject', 'add', 'bob', '--device', 'tasmota:x', '--regions', 'eu', ...d]],
      removeUnknown: [['subject', 'remove', 'nobody', ...d]],
      removeHousehold: [['subject', 'remove', 'household', ...d]],
      showUnknown: [['subject', 'show', 'nobody', ...d]],
      subject: [['consent', 'grant', 'nobody', 'energy_15min', ...d]],
      withdrawUnknown: [['consent', 'withdraw', 'nobody', 'energy_15min', ...d]],
      purpose: [['consent', 'grant', 'alice', 'helth', ...d]],
      withdrawPurpose: [['consent', 'withdraw', 'alice', 'helth', ...d]],
      domain: [['consent', 'grant', 'alice', 'energy_15min', '--domain', 'cloud', ...d]],
      notThere: [['consent', 'grant', 'alice', 'energy_15min', '--domain', 'ana', ...d]],
      share: [['consent', 'withdraw', 'alice', 'share_ana', '--domain', 'svc', ...d]],
      by: [['consent', 'grant', 'alice', 'energy_15min', '--by', 'neighbour', ...d]],
      minor: [['consent', 'grant', 'kid', 'energy_15min', ...d]],
    })
    for (const [name, run] of Object.entries(r))
      expect({ name, code: run.code, stdout: run.stdout }).toEqual({ name, code: 2, stdout: '' })
    const err = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.stderr]))
    expect(err.profile).toMatch(/unknown profile "nosuch"; known: .*tasmota/)
    expect(err.malformed).toMatch(/"owntracks" is not PROFILE:DEVICE_ID/)
    expect(err.claimed).toMatch(/tasmota:plug_1 already belongs to alice/)
    expect(err.taken).toMatch(/alice already exists/)
    expect(err.reserved).toMatch(/household is reserved/)
    expect(err.name).toMatch(/"Bob" is not a subject name/)
    expect(err.noDevice).toMatch(/at least one --device/)
    expect(err.region).toMatch(/"eu" is not a region code/)
    expect(err.removeUnknown).toMatch(/no subject nobody/)
    expect(err.removeHousehold).toMatch(/household is reserved/)
    for (const k of ['showUnknown', 'subject', 'withdrawUnknown'])
      expect(err[k]).toMatch(/unknown subject nobody; known: household, alice, kid/)
    expect(err.purpose).toMatch(/no policy offers helth; offered: energy_15min, share_3p, share_ana, share_svc/)
    expect(err.withdrawPurpose).toMatch(/no policy offers helth/)
    expect(err.domain).toMatch(/unknown domain cloud; one of svc, ana, 3p/)
    expect(err.notThere).toMatch(/no policy offers energy_15min for ana; it is offered for svc/)
    expect(err.share).toMatch(/no policy offers share_ana for svc; it is offered for ana/)
    expect(err.by).toMatch(/--by must be one of subject, guardian, admin/)
    expect(err.minor).toMatch(/kid is a minor: a consent needs --by guardian/)
    for (const run of Object.values(r)) expect(run.stderr).not.toContain(APPLIED)
    for (const [i, f] of files.entries()) expect(readFileSync(f).equals(before[i] as Buffer)).toBe(true)
  }, 300_000)

  it('stops at a damaged registry or log, naming the file and the path or line, and appends nothing', async () => {
    const data = household()
    const registry = join(data, 'subjects.json')
    const log = join(data, 'consent.jsonl')
    const good = readFileSync(log, 'utf8')
    writeFileSync(
      log,
      `${good}{"time":"2026-01-01T00:00:00Z","subject":"alice","purpose":"energy_15min","granted":true,"by":"neighbour"}\n`,
    )
    const damagedLog = readFileSync(log)
    const text = readFileSync(registry, 'utf8').replace('tasmota:plug_1', 'nosuch:plug_1')
    const r1 = await veil(['consent', 'withdraw', 'alice', 'energy_15min', '--data-dir', data])
    expect(r1.code).toBe(2)
    expect(r1.stderr).toContain(`${log}:2: unknown by "neighbour"`)
    writeFileSync(log, good.trimEnd())
    const r2 = await veil(['consent', 'show', 'alice', '--data-dir', data])
    expect(r2.code).toBe(2)
    expect(r2.stderr).toContain(`${log}:1: torn last line`)
    writeFileSync(log, damagedLog)
    writeFileSync(registry, text)
    const r3 = await veil(['subject', 'list', '--data-dir', data])
    expect(r3.code).toBe(2)
    expect(r3.stderr).toContain(`${registry}: /subjects/0/devices/1: unknown profile "nosuch"`)
    expect(readFileSync(log).equals(damagedLog)).toBe(true)
    expect(readFileSync(registry, 'utf8')).toBe(text)
  }, 120_000)
})
