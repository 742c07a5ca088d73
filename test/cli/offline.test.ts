// `veil filter`, `veil replay` and the top-level usage, run as child processes of bin/veil.js. What these commands
// print is what the gateway would forward: pseudonymous topics, allowlisted data, and for a drop only its reason.
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { PLUG, ROOT, TESTDATA, cliHarness, type Run } from '../helpers/cli.ts'

// Stable pseudonyms (ana does not rotate): the tests compare pseudonyms of runs at different dates.
const { tempDir, veil, runAll } = cliHarness({
  tempPrefix: 'veil-cli-offline-',
  policies: PLUG,
  config: join(TESTDATA, 'config-stable-pseudonyms.yaml'),
})

interface Output {
  ts?: number
  domain: string
  topic: string
  payload: { policy: string; data: unknown }
}

function outputs(run: Run): Output[] {
  return run.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Output)
}

/** Tasmota tele/<topic>/SENSOR of an energy-monitoring plug, as the firmware sends it. */
const SENSOR = {
  Time: '2024-11-02T21:14:05',
  ENERGY: {
    TotalStartTime: '2023-06-01T10:00:00',
    Total: 431.927,
    Yesterday: 1.204,
    Today: 0.377,
    Power: 87,
    ApparentPower: 95,
    ReactivePower: 38,
    Factor: 0.92,
    Voltage: 231,
    Current: 0.41,
  },
}
const TOPIC = 'tele/tasmota_0329F7/SENSOR'
const FILTERED = /^veil\/(svc|ana)\/smart_plug\/[a-z2-7]{26}\/sensor$/

function expectFilteredSensor(run: Run): Output[] {
  expect(run.code).toBe(0)
  const outs = outputs(run)
  expect(outs.map((o) => o.domain).sort()).toEqual(['ana', 'svc'])
  for (const out of outs) {
    expect(Object.keys(out).sort()).toEqual(['domain', 'payload', 'topic'])
    expect(out.topic).toMatch(FILTERED)
    expect(out.topic.split('/')[1]).toBe(out.domain)
    expect(out.payload).toEqual({
      policy: expect.stringMatching(/^[0-9a-f]{8,64}$/),
      data: { ENERGY: { Yesterday: 1.204 } },
    })
  }
  const all = `${run.stdout}${run.stderr}`
  expect(all.toLowerCase()).not.toContain('0329f7')
  expect(all).not.toContain('Power')
  return outs
}

const pseudonymOf = (out: Output | undefined): string | undefined => out?.topic.split('/')[3]

const REPLAY = join(TESTDATA, 'replay.jsonl')
const MISSING = join(tmpdir(), 'veil-no-such-dir', 'missing.jsonl')

// Runs that share no state: queued together before the tests that read them.
let r: Record<
  | 'shipped'
  | 'unknownTopic'
  | 'undecodable'
  | 'noTopic'
  | 'noFile'
  | 'replay'
  | 'replayNone'
  | 'replayMissing'
  | 'help'
  | 'bare'
  | 'bogus'
  | 'startHelp',
  Run
>
beforeAll(async () => {
  r = await runAll({
    shipped: [
      ['filter', '--topic', TOPIC, '--file', '-', '--policies', join(ROOT, 'filters/policies')],
      { input: JSON.stringify(SENSOR) },
    ],
    unknownTopic: [['filter', '--topic', 'home/livingroom/lamp', '--file', '-'], { input: '{"state":"ON"}' }],
    // A SENSOR whose payload is not JSON: classified, then dropped, and the text never echoed.
    undecodable: [['filter', '--topic', TOPIC, '--file', '-'], { input: 'Power=87 SSID=CanaryNet-7F3A' }],
    noTopic: [['filter', '--file', '-'], { input: '{}' }],
    noFile: [['filter', '--topic', TOPIC, '--file', MISSING]],
    replay: [['replay', REPLAY]],
    replayNone: [['replay']],
    replayMissing: [['replay', MISSING]],
    help: [['--help']],
    bare: [[]],
    bogus: [['bogus']],
    startHelp: [['start', '--help']],
  })
}, 120_000)

describe('veil filter', () => {
  it('prints one line per domain with a pseudonymous topic and the allowlisted data; pseudonyms follow the master key', async () => {
    const work = tempDir()
    const file = join(work, 'sensor.json')
    writeFileSync(file, JSON.stringify(SENSOR))
    const dirA = join(work, 'data-a')
    const dirB = join(work, 'data-b')

    // The first run creates dirA's master key; the second and later runs read it back.
    const fromFile = await veil(['filter', '--topic', TOPIC, '--file', file, '--data-dir', dirA, '--policies', PLUG])
    const [fromStdin, implicitStdin, otherKey, replayed] = await Promise.all([
      veil(['filter', '--topic', TOPIC, '--file', '-', '--data-dir', dirA], { input: JSON.stringify(SENSOR) }),
      veil(['filter', '--topic', TOPIC], { input: JSON.stringify(SENSOR), env: { VEIL_DATA_DIR: dirA } }),
      veil(['filter', '--topic', TOPIC, '--file', file, '--data-dir', dirB]),
      veil(['replay', REPLAY, '--data-dir', dirA]),
    ])

    const a = expectFilteredSensor(fromFile)
    const a2 = expectFilteredSensor(fromStdin)
    const a3 = expectFilteredSensor(implicitStdin)
    const b = expectFilteredSensor(otherKey)
    for (const run of [fromFile, fromStdin, implicitStdin, otherKey]) expect(run.stderr).toBe('')
    expect(replayed.code).toBe(0)
    const c = outputs(replayed)

    const byDomain = (outs: Output[], d: string): Output | undefined => outs.find((o) => o.domain === d)
    for (const domain of ['svc', 'ana']) {
      const pseudonym = pseudonymOf(byDomain(a, domain))
      // Same master key: same pseudonym, from a file or stdin, with --data-dir or VEIL_DATA_DIR, filter or replay.
      expect(pseudonymOf(byDomain(a2, domain))).toBe(pseudonym)
      expect(pseudonymOf(byDomain(a3, domain))).toBe(pseudonym)
      expect(pseudonymOf(byDomain(c, domain))).toBe(pseudonym)
      // A fresh data directory means a fresh master key: nothing links the two.
      expect(pseudonymOf(byDomain(b, domain))).not.toBe(pseudonym)
    }
    // Per-domain keys: the service and analytics pseudonyms of one device differ.
    expect(pseudonymOf(byDomain(a, 'svc'))).not.toBe(pseudonymOf(byDomain(a, 'ana')))

    // The master key: created with mode 0600, 32 random bytes, different per data directory, never printed.
    const keyA = readFileSync(join(dirA, 'master.key'))
    const keyB = readFileSync(join(dirB, 'master.key'))
    expect(statSync(join(dirA, 'master.key')).mode & 0o777).toBe(0o600)
    expect(statSync(join(dirB, 'master.key')).mode & 0o777).toBe(0o600)
    expect(keyA).toHaveLength(32)
    expect(keyB).toHaveLength(32)
    expect(keyA.equals(keyB)).toBe(false)
    for (const run of [fromFile, fromStdin, implicitStdin, otherKey, replayed]) {
      const all = `${run.stdout}${run.stderr}`.toLowerCase()
      for (const key of [keyA, keyB]) {
        for (const encoding of ['hex', 'base64', 'base64url'] as const) {
          expect(all).not.toContain(key.toString(encoding).toLowerCase().replace(/=+$/, ''))
        }
      }
    }
  }, 120_000)

  it('with the shipped policies too, prints only filtered topics and never the device id or instantaneous power', () => {
    expect(r.shipped.code).toBe(0)
    // What the shipped smart plug policy keeps may change (and a windowing operator may hold a first reading
    // back), so only the invariants are checked here.
    for (const out of outputs(r.shipped)) {
      expect(out.topic).toMatch(/^veil\/(svc|ana|3p)\/smart_plug\/[a-z2-7]{26}\/[a-z0-9_-]+$/)
      expect(out.payload.policy).toMatch(/^[0-9a-f]{8,64}$/)
    }
    const all = `${r.shipped.stdout}${r.shipped.stderr}`
    expect(all.toLowerCase()).not.toContain('0329f7')
    expect(all).not.toContain('Power')
    expect(all).not.toMatch(/\b87\b/)
  })

  it('prints nothing on stdout for a dropped message and its reason on stderr, with status 0', () => {
    expect(r.unknownTopic.code).toBe(0)
    expect(r.unknownTopic.stdout).toBe('')
    expect(r.unknownTopic.stderr).toBe('dropped at classify: unknown_topic\n')

    expect(r.undecodable.code).toBe(0)
    expect(r.undecodable.stdout).toBe('')
    expect(r.undecodable.stderr).toMatch(/^dropped at \w+: \w+\n$/)
    expect(r.undecodable.stderr).not.toContain('CanaryNet')
    expect(r.undecodable.stderr.toLowerCase()).not.toContain('0329f7')
  })

  it('exits 2 without --topic or with an unreadable --file', () => {
    expect(r.noTopic.code).toBe(2)
    expect(r.noTopic.stderr).toMatch(/--topic/)
    expect(r.noFile.code).toBe(2)
    expect(r.noFile.stderr).toContain(`--file ${MISSING}`)
  })
})

describe('veil replay', () => {
  it('replays each line with its own ts, sends string payloads as raw text, and reports bad lines as file:N', () => {
    const run = r.replay
    expect(run.code).toBe(0)

    const outs = outputs(run)
    // Line 1 (SENSOR object) and line 4 (SENSOR as payloadBase64) go to svc and ana; the LWT lines 2 and 8 go to
    // svc only (analytics does not receive availability).
    expect(outs.map((o) => [o.ts, o.domain, o.topic.split('/').slice(0, 3).join('/'), o.topic.split('/')[4]])).toEqual([
      [1730582045000, 'svc', 'veil/svc/smart_plug', 'sensor'],
      [1730582045000, 'ana', 'veil/ana/smart_plug', 'sensor'],
      [1730582046000, 'svc', 'veil/svc/smart_plug', 'lwt'],
      [1730582048000, 'svc', 'veil/svc/smart_plug', 'sensor'],
      [1730582048000, 'ana', 'veil/ana/smart_plug', 'sensor'],
      [1730582051000, 'svc', 'veil/svc/smart_plug', 'lwt'],
    ])
    expect(outs.map((o) => o.payload.data)).toEqual([
      { ENERGY: { Yesterday: 1.204 } },
      { ENERGY: { Yesterday: 1.204 } },
      'Online',
      { ENERGY: { Yesterday: 2.5 } },
      { ENERGY: { Yesterday: 2.5 } },
      'Offline',
    ])
    for (const out of outs) {
      expect(Object.keys(out).sort()).toEqual(['domain', 'payload', 'topic', 'ts'])
      expect(out.topic).toMatch(/^veil\/(svc|ana)\/smart_plug\/[a-z2-7]{26}\/(sensor|lwt)$/)
    }
    // One device, one pseudonym per domain, on every line.
    expect(new Set(outs.filter((o) => o.domain === 'svc').map(pseudonymOf)).size).toBe(1)
    expect(new Set(outs.filter((o) => o.domain === 'ana').map(pseudonymOf)).size).toBe(1)

    // Line 3 is cut short, line 5 has a ts that is not a number, line 6 is blank (skipped silently), line 7 is a
    // topic no profile knows. Each problem names the file and the line; the lines after it still ran.
    expect(run.stderr.split('\n').filter((l) => l !== '')).toEqual([
      `${REPLAY}:3: line 3 is not JSON`,
      `${REPLAY}:5: ts must be epoch milliseconds`,
      `${REPLAY}:7: dropped at classify: unknown_topic`,
    ])

    const all = `${run.stdout}${run.stderr}`
    expect(all.toLowerCase()).not.toContain('0329f7')
    expect(all).not.toContain('Power')
    expect(all).not.toContain('431.927')
  })

  it('exits 2 without a file argument', () => {
    expect(r.replayNone.code).toBe(2)
    expect(r.replayNone.stderr).toMatch(/replay: expected one FILE\.jsonl/)
  })

  it('exits 2, like veil filter --file, for a file that does not exist', () => {
    expect(r.replayMissing.stderr).toContain(MISSING)
    expect(r.replayMissing.stderr).not.toMatch(/\n\s+at /)
    // A missing input named on the command line is a usage error (status 2) for veil filter; replay exits 1.
    expect(r.replayMissing.code).toBe(2)
  })
})

describe('veil usage', () => {
  it('--help exits 0, no command exits 2 with the usage, an unknown command exits 2', () => {
    expect(r.help.code).toBe(0)
    expect(r.help.stdout).toMatch(/^Usage:/m)
    for (const command of ['start', 'filter', 'replay', 'policy check', 'simulate'])
      expect(r.help.stdout).toContain(`veil ${command}`)

    expect(r.bare.code).toBe(2)
    expect(r.bare.stdout).toMatch(/^Usage:/m)

    expect(r.bogus.code).toBe(2)
    expect(r.bogus.stderr).toMatch(/unknown command bogus/)
    expect(r.bogus.stdout).toBe('')

    expect(r.startHelp.code).toBe(0)
    expect(r.startHelp.stdout).toMatch(/^Usage: veil start/)
  })
})
