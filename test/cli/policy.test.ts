// `veil policy check [DIR]` as a child process: on the shipped policies it prints what leaves the gateway; on a bad
// directory it exits 2 and names, for every problem in every file, the file, the JSON path and what is wrong.
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { PLUG, ROOT, TESTDATA, cliHarness, type Run } from '../helpers/cli.ts'

const { tempDir, veil } = cliHarness({ tempPrefix: 'veil-cli-policy-' })

const check = (name: string): Promise<Run> => veil(['policy', 'check', join(TESTDATA, name)])

/** The problem lines of a failed check, without the "veil: " prefix of the first. */
const problems = (run: Run): string[] =>
  run.stderr
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/^veil: /, ''))

const file = (dir: string, name: string): string => join(TESTDATA, dir, name)
const SHIPPED = join(ROOT, 'filters/policies')
const EMPTY = tempDir('veil-cli-policy-empty-')

// Every run is independent: queued together before the tests that read them.
let r: Record<
  | 'shipped'
  | 'plug'
  | 'unknownProperty'
  | 'unknownStream'
  | 'mismatch'
  | 'badYaml'
  | 'proto'
  | 'binary'
  | 'unknownOperator'
  | 'noYaml'
  | 'emptyDir'
  | 'missingDir'
  | 'many'
  | 'start'
  | 'time',
  Run
>
beforeAll(async () => {
  const table = {
    shipped: veil(['policy', 'check']),
    plug: veil(['policy', 'check', PLUG]),
    unknownProperty: check('policies-unknown-property'),
    unknownStream: check('policies-unknown-stream'),
    mismatch: check('policies-name-mismatch'),
    badYaml: check('policies-bad-yaml'),
    proto: check('policies-proto'),
    binary: check('policies-binary'),
    unknownOperator: check('policies-unknown-operator'),
    noYaml: check('policies-no-yaml'),
    emptyDir: veil(['policy', 'check', EMPTY]),
    missingDir: veil(['policy', 'check', join(EMPTY, 'nope')]),
    many: check('policies-many'),
    time: check('policies-time'),
    start: veil([
      'start',
      '--policies',
      join(TESTDATA, 'policies-unknown-stream'),
      '--listen',
      'mqtt://127.0.0.1:0',
      '--http',
      '127.0.0.1:0',
    ]),
  }
  const keys = Object.keys(table) as (keyof typeof table)[]
  const runs = await Promise.all(Object.values(table))
  r = Object.fromEntries(keys.map((k, i) => [k, runs[i] as Run])) as typeof r
}, 120_000)

describe('veil policy check', () => {
  it('describes the shipped policies: every category and every domain, with kept and dropped fields', () => {
    const run = r.shipped
    expect(run.code).toBe(0)
    expect(run.stderr).toBe('')
    const out = run.stdout
    const shipped = readdirSync(SHIPPED)
      .filter((n) => n.endsWith('.yaml'))
      .map((n) => n.replace(/\.yaml$/, ''))
      .sort()
    expect(shipped.length).toBeGreaterThan(0)
    expect(out).toMatch(
      new RegExp(`^Policies in .*filters[/\\\\]policies: ${shipped.length} files, version [0-9a-f]{8,64}$`, 'm'),
    )
    // Each category's section starts with its name at the left margin, then names each recipient domain: what it
    // receives, or that it receives nothing.
    const lines = out.split('\n').slice(1)
    const starts = lines.flatMap((l, i) => (/^[a-z_]+(: |$)/.test(l) ? [i] : []))
    const sections = starts.map((start, k) => lines.slice(start, starts[k + 1] ?? lines.length).join('\n'))
    expect(sections.map((section) => /^[a-z_]+/.exec(section)?.[0]).sort()).toEqual(shipped)
    for (const section of sections) {
      for (const domain of ['svc', 'ana', '3p'])
        expect(section).toMatch(new RegExp(`^ {2}${domain}:( receives nothing)?$`, 'm'))
    }
    expect(out).toMatch(/^ +kept: +\S/m)
    expect(out).toMatch(/^ +dropped: +\S.*; and any field not listed$/m)
  })

  it('lists, per domain and stream, exactly the kept fields and the known fields it drops', () => {
    const run = r.plug
    expect(run.code).toBe(0)
    expect(run.stdout).toContain(`Policies in ${PLUG}: 1 files, version `)
    const [, svc, ana, thirdParty] = run.stdout.split(/^ {2}(?=svc:|ana:|3p:)/m)
    for (const section of [svc, ana]) {
      expect(section).toMatch(
        /^ {4}tasmota\/sensor\n {6}kept: +ENERGY\.Yesterday\n {6}dropped: +Time, [^\n]*ENERGY\.Total, [^\n]*ENERGY\.Power, [^\n]*; and any field not listed$/m,
      )
      expect(section).not.toMatch(/kept:[^\n]*Power/)
    }
    expect(svc).toMatch(/^ {4}tasmota\/lwt\n {6}kept: +\$$/m)
    expect(svc).toMatch(/^ {4}not forwarded: [^\n]*tasmota\/power/m)
    expect(ana).toMatch(/^ {4}not forwarded: [^\n]*tasmota\/lwt/m)
    expect(thirdParty).toMatch(/^3p: receives nothing$/m)
  })

  it('names the file, the JSON path and the problem for each kind of mistake, with status 2', () => {
    expect(r.unknownProperty.code).toBe(2)
    expect(problems(r.unknownProperty)).toEqual([
      `${file('policies-unknown-property', 'smart_plug.yaml')}: /domains/svc/streams/tasmota~1sensor: unknown property deny`,
    ])

    expect(r.unknownStream.code).toBe(2)
    const [stream] = problems(r.unknownStream)
    expect(stream).toContain(
      `${file('policies-unknown-stream', 'smart_plug.yaml')}: /domains/svc/streams/tasmota~1sensr: `,
    )
    expect(stream).toContain('tasmota/sensr')
    // The known streams of the category are listed so the typo is obvious.
    expect(stream).toMatch(/known: [^\n]*tasmota\/sensor[^\n]*tasmota\/lwt/)

    expect(r.mismatch.code).toBe(2)
    expect(problems(r.mismatch)).toEqual([
      expect.stringContaining(`${file('policies-name-mismatch', 'camera.yaml')}: /category: `),
    ])
    expect(r.mismatch.stderr).toContain('smart_plug.yaml')

    expect(r.proto.code).toBe(2)
    expect(problems(r.proto)).toEqual([
      expect.stringContaining(
        `${file('policies-proto', 'smart_plug.yaml')}: /domains/svc/streams/tasmota~1sensor/allow: `,
      ),
    ])
    expect(r.proto.stderr).toContain('__proto__')

    expect(r.binary.code).toBe(2)
    expect(problems(r.binary)).toEqual([
      expect.stringContaining(
        `${file('policies-binary', 'camera.yaml')}: /domains/svc/streams/frigate~1snapshot/allow: `,
      ),
    ])
    expect(r.binary.stderr).toMatch(/raw bytes|binary/)

    expect(r.unknownOperator.code).toBe(2)
    expect(problems(r.unknownOperator)).toEqual([
      expect.stringContaining(
        `${file('policies-unknown-operator', 'smart_plug.yaml')}: /domains/svc/streams/tasmota~1sensor/operators/0/not_an_operator: unknown operator not_an_operator`,
      ),
    ])

    for (const run of [r.unknownProperty, r.unknownStream, r.mismatch, r.proto, r.binary, r.unknownOperator]) {
      expect(run.stdout).toBe('')
      expect(run.stderr).not.toMatch(/\n\s+at /)
    }
  })

  it('refuses a time that leaves unfloored, or floored in another unit than its schema declares', () => {
    expect(r.time.code).toBe(2)
    expect(r.time.stdout).toBe('')
    expect(problems(r.time)).toEqual([
      `${file('policies-time', 'camera.yaml')}: /domains/svc/streams/canonical~1event/operators/0/time_floor/format: is epoch_ms but canonical/event declares ts as epoch_s (x-veil-time); write format: epoch_s, or the floor is not in the field's unit`,
      `${file('policies-time', 'gps_tracker.yaml')}: /domains/svc/streams/canonical~1location/allow/1: lets ts (a time, epoch_s) leave to svc without a time_floor; add - time_floor: { paths: [ts], seconds: 60, format: epoch_s } (exact times need an opt_in variant)`,
    ])
  })

  it('names the file of invalid YAML, with status 2', () => {
    expect(r.badYaml.code).toBe(2)
    expect(problems(r.badYaml)).toEqual([expect.stringContaining(`${file('policies-bad-yaml', 'smart_plug.yaml')}: `)])
  })

  it('names the line and column of invalid YAML', () => {
    // smart_plug.yaml leaves a flow sequence open on line 7; the parser notices on line 8.
    const prefix = file('policies-bad-yaml', 'smart_plug.yaml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    expect(problems(r.badYaml)).toEqual([expect.stringMatching(new RegExp(`^${prefix}: line [78], column \\d+: `))])
  })

  it('refuses a directory without policy files, or one that does not exist', () => {
    expect(r.noYaml.code).toBe(2)
    expect(r.noYaml.stderr).toContain(join(TESTDATA, 'policies-no-yaml'))
    expect(r.noYaml.stderr).toMatch(/no policy files/)
    expect(r.emptyDir.code).toBe(2)
    expect(r.emptyDir.stderr).toContain(`${EMPTY}: no policy files`)
    expect(r.missingDir.code).toBe(2)
    expect(r.missingDir.stderr).toContain(join(EMPTY, 'nope'))
  })

  it('reports every problem of every file in one run', () => {
    const run = r.many
    expect(run.code).toBe(2)
    const dir = join(TESTDATA, 'policies-many')
    const lines = problems(run)
    expect(lines).toHaveLength(3)
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringContaining(`${join(dir, 'smart_plug.yaml')}: /domains/svc/streams/tasmota~1sensr: `),
        expect.stringContaining(`${join(dir, 'camera.yaml')}: /domains/svc/streams/frigate~1snapshot/allow: `),
        `${join(dir, 'gps_tracker.yaml')}: /: unknown property retention`,
      ]),
    )
    // body_scale.yaml is valid and so not mentioned.
    expect(run.stderr).not.toContain('body_scale.yaml')
  })

  it('rejects a bad policy directory at veil start too, before listening', () => {
    expect(r.start.code).toBe(2)
    expect(r.start.stderr).toContain('tasmota~1sensr')
    expect(r.start.stdout).not.toMatch(/"event":"started"/)
  })
})
