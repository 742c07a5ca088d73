/**
 * Operator defaults live in one place, the `default` keywords of each configSchema, and the policy loader's ajv
 * fills them in (gateway/src/policy/settings.ts). These tests hold every builtin operator to that:
 * - each default is valid against its own property schema;
 * - the settings the loader hands to compile for an item with only the required settings are exactly those
 *   settings plus the schema's defaults, and compiling that item behaves as compiling the explicit defaults;
 * - no compile repeats a default in code (`options.window_s ?? 3600`, `config ?? {}`), which would be a second
 *   place that can drift from the schema;
 * - each README's settings table states the schema's default.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ajv } from 'ajv'
import { parse as parseYaml } from 'yaml'
import { afterAll, describe, expect, it } from 'vitest'
import {
  defineOperator,
  isScheduled,
  type CompileEnv,
  type JsonSchema,
  type OperatorDefinition,
  type OperatorFn,
} from '#veil/sdk'
import { builtinProfiles } from '../profiles/index.ts'
import { Keyring } from '../../gateway/src/keys/keyring.ts'
import { loadPolicySet, type PolicySet } from '../../gateway/src/policy/load.ts'
import { Classifier } from '../../gateway/src/streams/classifier.ts'
import { builtinOperators } from './index.ts'
import { opContext, schemaDefaults, seededRandom } from './testing.ts'

const classifier = new Classifier(builtinProfiles)
const keyring = new Keyring(Buffer.alloc(32, 5), new Map())
const dirs: string[] = []
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

/**
 * Per builtin operator: the settings it requires (an item with none is written `- name:`, which YAML reads as
 * null), and messages to compare the two compilations on. A new operator must be added here.
 */
const CASES: Readonly<
  Record<string, { readonly required?: Record<string, unknown>; readonly messages: readonly unknown[] }>
> = {
  aggregate: { required: { count_by: 'label' }, messages: [{ label: 'car' }, { label: 'person' }, { label: 'car' }] },
  bucket: { required: { path: 'x', width: 10 }, messages: [{ x: 37 }, { x: 'no' }] },
  downsample: { messages: [{ a: 1 }, { a: 2 }, { a: 3 }] },
  energy_window: { messages: [{ ENERGY: { Total: 1.5 } }, { ENERGY: { Total: 1.73 } }, { ENERGY: { Total: 2.2 } }] },
  event_suppress: { messages: ['ON', 'OFF', 'ON'] },
  geo_ind: {
    messages: [
      { lat: 52.52, lon: 13.405 },
      { lat: 48.1, lon: 11.6 },
    ],
  },
  geohash_snap: { messages: [{ lat: 52.52, lon: 13.405, geohash: 'u33dc0' }] },
  hmac_pseudo: { required: { paths: ['id'] }, messages: [{ id: 'AA:BB:CC:DD:EE:FF' }] },
  image_gate: {
    messages: [{ img: '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRof', ok: 1 }, { ok: 2 }],
  },
  job_area: { messages: [100_000, 250_000, 250_000, 10_000] },
  kinematics: { messages: [{ vel: 5, cog: 10, alt: 3, acc: 12, vac: 4 }, { vel: 40 }, { vel: 0.5 }] },
  map_minimize: {
    messages: [
      {
        layers: [
          { type: 'floor', metaData: { area: 1_234_567 } },
          { type: 'segment', metaData: { area: 456_789 } },
        ],
      },
    ],
  },
  pii_scan: { messages: [{ a: 'mail me at john@example.com', b: 'fine', c: 73_588_229_205 }] },
  privacy_zone: {
    required: { zones: [{ lat: 52.52, lon: 13.405 }] },
    messages: [
      { lat: 52.52, lon: 13.405 },
      { lat: 52.6, lon: 13.5 },
    ],
  },
  round: { required: { paths: ['x'], step: 0.1 }, messages: [{ x: 1.234 }] },
  stay_zone: {
    messages: [
      { lat: 52.52, lon: 13.405 },
      { lat: 52.5201, lon: 13.4051 },
      { lat: 52.6, lon: 13.5 },
    ],
  },
  text_drop: { messages: [{ name: 'Ana', sub_label: ['John', 0.9], after: { FriendlyName: 'Kitchen' }, keep: 1 }] },
  time_floor: { messages: [{ tst: 1_700_000_059 }, { tst: '2025-01-01T07:42:13Z' }] },
  tokenize: { required: { paths: ['user'] }, messages: [{ user: 'ana@example.org' }] },
  truncate_ip: { required: { paths: ['ip'] }, messages: [{ ip: '192.168.1.37' }] },
  wifi_strip: { messages: [{ Wifi: { SSId: 'home', BSSId: '3C:A6:2F:11:22:33', RSSI: 76 } }] },
}

/** Every subschema of a schema with its JSON pointer, depth first. */
function* subschemas(schema: JsonSchema, at = ''): Generator<[string, JsonSchema]> {
  yield [at, schema]
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'default' || key === 'enum' || key === 'const' || value === null || typeof value !== 'object') continue
    if (Array.isArray(value)) {
      for (const [i, item] of value.entries())
        if (item !== null && typeof item === 'object') yield* subschemas(item as JsonSchema, `${at}/${key}/${i}`)
    } else if (key === 'properties' || key === '$defs') {
      for (const [name, property] of Object.entries(value as Record<string, JsonSchema>))
        yield* subschemas(property, `${at}/${key}/${name}`)
    } else {
      yield* subschemas(value as JsonSchema, `${at}/${key}`)
    }
  }
}

/** Names of the properties, at any depth, that have a default. */
function defaultedSettings(schema: JsonSchema): Set<string> {
  const names = new Set<string>()
  for (const [at, sub] of subschemas(schema))
    if (sub.default !== undefined) names.add(at.slice(at.lastIndexOf('/') + 1))
  return names
}

function policyDir(operatorYaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'veil-defaults-'))
  dirs.push(dir)
  writeFileSync(
    join(dir, 'smart_plug.yaml'),
    `category: smart_plug\ndomains:\n  svc:\n    streams:\n      tasmota/sensor:\n        allow: [ENERGY.Total]\n        operators:\n          - ${operatorYaml}\n`,
  )
  return dir
}

interface Compiled {
  readonly config: unknown
  readonly env: CompileEnv
  readonly run: OperatorFn
}

/** Loads one policy item with the operators wrapped to record what the loader hands to compile. */
function loadRecording(
  operatorYaml: string,
  operators: readonly OperatorDefinition[] = builtinOperators,
): { set: PolicySet; compiled: Compiled[] } {
  const compiled: Compiled[] = []
  const recording = operators.map((def) => ({
    ...def,
    compile(config: unknown, env: CompileEnv): OperatorFn {
      const copy = structuredClone(config)
      const run = def.compile(config, env)
      compiled.push({ config: copy, env, run })
      return run
    },
  }))
  const dir = policyDir(operatorYaml)
  const set = loadPolicySet(dir, { classifier, operators: recording, keyring, dataDir: dir, random: seededRandom(7) })
  return { set, compiled }
}

/** What an operator makes of the messages, sent 20 minutes apart; a scheduled operator is drained at the end. */
function outputs(run: OperatorFn, messages: readonly unknown[]): unknown[] {
  const start = Date.UTC(2025, 0, 1, 6)
  const out: unknown[] = messages.map((doc, i) =>
    run(structuredClone(doc), opContext({ category: 'smart_plug', nowMs: start + i * 1_200_000 })),
  )
  if (isScheduled(run)) out.push(run.tick(start + 2 * 86_400_000, true))
  return out
}

describe('operator defaults live in the configSchema only', () => {
  it('has a case for every builtin operator', () => {
    expect(Object.keys(CASES).sort()).toEqual(builtinOperators.map((op) => op.name).sort())
  })

  describe.each(builtinOperators.map((op) => [op.name, op] as const))('%s', (name, definition) => {
    const required = CASES[name]?.required
    const explicit = { ...schemaDefaults(definition), ...required }

    it('has defaults that are valid against their own property schema', () => {
      const ajv = new Ajv({ allErrors: true, allowUnionTypes: true, strict: false })
      for (const [at, sub] of subschemas(definition.configSchema)) {
        if (sub.default === undefined) continue
        const { default: value, ...schema } = sub
        const validate = ajv.compile(schema)
        expect(
          validate(value),
          `${name} ${at}: default ${JSON.stringify(value)}: ${ajv.errorsText(validate.errors)}`,
        ).toBe(true)
      }
    })

    it('gets from the loader the settings it was given plus every schema default, and behaves as with the defaults written out', () => {
      const { compiled } = loadRecording(required === undefined ? `${name}:` : `${name}: ${JSON.stringify(required)}`)
      expect(compiled).toHaveLength(1)
      const [loaded] = compiled as [Compiled]
      expect(loaded.config).toEqual(explicit)
      const direct = definition.compile(structuredClone(explicit), { ...loaded.env, random: seededRandom(7) })
      const messages = CASES[name]?.messages ?? []
      expect(outputs(loaded.run, messages)).toEqual(outputs(direct, messages))
    })

    it('repeats no default in code', () => {
      const source = readFileSync(join(import.meta.dirname, name, 'index.ts'), 'utf8')
      expect(
        source,
        `${name}: compile falls back on \`config ?? {}\`: the loader hands over the settings, defaults filled in`,
      ).not.toMatch(/config \?\? \{\}|settings\(config\)/)
      for (const setting of defaultedSettings(definition.configSchema)) {
        expect(source, `${name}: \`${setting} ?? …\` repeats the schema's default in code`).not.toMatch(
          new RegExp(`\\b${setting}\\s*\\?\\?`),
        )
      }
    })

    it('states the schema defaults in its README', () => {
      const readme = readFileSync(join(import.meta.dirname, name, 'README.md'), 'utf8')
      const properties = (definition.configSchema.properties ?? {}) as Record<string, JsonSchema>
      const stated = new Map<string, string>()
      for (const line of readme.split('\n')) {
        const cells = /^\| (`[^|]+`) \| ([^|]*) \|/.exec(line)
        if (cells === null) continue
        const keys = (cells[1] ?? '').split(', ')
        const values = (cells[2] ?? '').trim().split(/, (?=`)/)
        for (const [i, key] of keys.entries())
          stated.set(key.replaceAll('`', ''), (keys.length === values.length ? values[i] : cells[2]) ?? '')
      }
      for (const [key, property] of Object.entries(properties)) {
        const text = stated.get(key)
        if (property.default === undefined) {
          // A setting without a default may say `required`, `none` or what its absence means, but no value.
          if (text !== undefined && /^`[^`]*`$/.test(text.trim()))
            expect.fail(`${name} README states default ${text} for ${key}; the schema has none`)
          continue
        }
        expect(text, `${name} README has no row for ${key}`).toBeDefined()
        const code = /^`([^`]*)`$/.exec((text ?? '').trim())
        // Long lists are described in words (text_drop's keys, pii_scan's detectors).
        if (code === null) continue
        expect(parseYaml(code[1] ?? ''), `${name} README: ${key}`).toEqual(property.default)
      }
    })
  })
})

describe('the loader fills the defaults in (a spy operator)', () => {
  const seen: unknown[] = []
  const spy = defineOperator({
    name: 'spy',
    description: 'records the settings compile gets',
    configSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        n: { type: 'integer', default: 5 },
        list: { type: 'array', items: { type: 'string' }, default: ['a'] },
        nested: { type: 'object', default: {}, properties: { m: { type: 'string', default: 'x' } } },
        free: { type: 'string' },
      },
    },
    compile(config) {
      seen.push(config)
      // A fallback in code is dead: the loader always hands n over. Were it reached, the test below would see 9.
      const { n = 9 } = config as { n?: number }
      return (doc) => ({ doc, n })
    },
  })

  it.each([
    ['no settings (null)', 'spy:', { n: 5, list: ['a'], nested: { m: 'x' } }],
    ['empty settings', 'spy: {}', { n: 5, list: ['a'], nested: { m: 'x' } }],
    ['some settings', 'spy: { n: 7, nested: {}, free: y }', { n: 7, list: ['a'], nested: { m: 'x' }, free: 'y' }],
  ])('%s', (_what, yaml, expected) => {
    seen.length = 0
    const { set } = loadRecording(yaml, [spy])
    expect(seen).toEqual([expected])
    const [policy] = [...set.byStream.values()].flat()
    expect(policy?.fallback?.operators[0]?.run({}, opContext())).toEqual({ doc: {}, n: expected.n })
    // The defaults go to compile only: the document `veil policy check` describes stays as written.
    const item = set.documents.get('smart_plug')?.domains.svc?.streams['tasmota/sensor']?.operators?.[0]
    expect(item).toEqual(parseYaml(yaml))
  })

  it('reports bad settings as before, with the path into the settings', () => {
    expect(() => loadRecording('spy: { n: x, extra: 1 }', [spy])).toThrow(/operators\/0\/spy\/n: must be integer/)
    expect(() => loadRecording('spy: { n: x, extra: 1 }', [spy])).toThrow(/operators\/0\/spy: unknown property extra/)
  })
})
