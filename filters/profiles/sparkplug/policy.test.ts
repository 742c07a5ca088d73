import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { builtinOperators } from '../../operators/index.ts'
import { builtinProfiles } from '../index.ts'
import { profilesOf, resolveConfig } from '../../../gateway/src/config/config.ts'
import { Keyring } from '../../../gateway/src/keys/keyring.ts'
import { loadPolicySet } from '../../../gateway/src/policy/load.ts'
import { Classifier } from '../../../gateway/src/streams/classifier.ts'
import { tempDir } from '../../../test/helpers/gateway.ts'
import { compileNameMatcher, metricOperatorSettings } from './policy.ts'
import { builtinPlugins } from '../../../gateway/src/builtins.ts'

const dirs: { remove(): void }[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) d.remove()
})

function policyDir(yaml: string): string {
  const dir = tempDir()
  dirs.push(dir)
  const policies = join(dir.path, 'policies')
  mkdirSync(policies)
  writeFileSync(join(policies, 'smart_plug.yaml'), yaml)
  return policies
}

function load(yaml: string): void {
  const classifier = new Classifier(builtinProfiles)
  loadPolicySet(policyDir(yaml), {
    classifier,
    operators: builtinOperators,
    keyring: new Keyring(Buffer.alloc(32), new Map()),
    dataDir: '/tmp',
  })
}

const header = 'category: smart_plug\ndomains:\n  svc:\n    streams:\n'

describe('Sparkplug policies are checked at load, naming the path', () => {
  it('accepts metrics with exact names, prefixes and operators on values', () => {
    expect(() =>
      load(
        `${header}      sparkplug/node:\n        allow: [timestamp]\n        metrics:\n          allow: [Temperature, "Energy/*"]\n          operators:\n            - { metric: "Energy/*", round: { step: 0.1 } }\n            - { metric: Temperature, bucket: { width: 5 } }\n        operators:\n          - time_floor: { paths: [timestamp, 'metrics[].timestamp'], seconds: 60, format: epoch_ms }\n`,
      ),
    ).not.toThrow()
  })

  it.each([
    [
      'metrics on a stream that is not Sparkplug',
      `      canonical/energy:\n        allow: [ts]\n        metrics: { allow: [x] }\n`,
      /canonical~1energy\/metrics: .*no Sparkplug B stream/,
    ],
    [
      'a message field other than timestamp in allow',
      `      sparkplug/node:\n        allow: [seq]\n        metrics: { allow: [x] }\n`,
      /sparkplug~1node\/allow: seq: a Sparkplug message's allow may name only timestamp/,
    ],
    [
      'an unknown operator on metric values',
      `      sparkplug/node:\n        allow: []\n        metrics:\n          allow: [x]\n          operators: [ { metric: x, frobnicate: {} } ]\n`,
      /metrics\/operators\/0\/frobnicate: unknown operator frobnicate/,
    ],
    [
      'bad operator settings',
      `      sparkplug/node:\n        allow: []\n        metrics:\n          allow: [x]\n          operators: [ { metric: x, round: { step: -1 } } ]\n`,
      /metrics\/operators\/0\/round\/step/,
    ],
    [
      'an operator item without its metric',
      `      sparkplug/node:\n        allow: []\n        metrics:\n          allow: [x]\n          operators: [ { round: { step: 1 }, bucket: { width: 1 } } ]\n`,
      /metrics\/operators\/0: must have required property 'metric'/,
    ],
    [
      'a metrics section without allow',
      `      sparkplug/device:\n        allow: []\n        metrics: { operators: [] }\n`,
      /metrics: must have required property 'allow'/,
    ],
  ])('refuses %s', (_what, body, message) => {
    expect(() => load(`${header}${body}`)).toThrow(message)
  })
})

describe('metric name patterns and value settings', () => {
  it('matches exact names and prefixes ending in *, nothing else', () => {
    const matches = compileNameMatcher(['Temperature', 'Energy/*', 'Node Control/Rebirth'])
    expect(['Temperature', 'Energy/Total', 'Energy/', 'Node Control/Rebirth'].every(matches)).toBe(true)
    expect(['temperature', 'Temperature2', 'Energy', 'X/Energy/Total', 'Node Control/Reboot'].some(matches)).toBe(false)
    expect(compileNameMatcher([])('anything')).toBe(false)
    expect(compileNameMatcher(['*'])('anything')).toBe(true)
  })

  it('points paths, path and total at the value unless the policy says otherwise', () => {
    expect(metricOperatorSettings({ step: 0.1 }, { properties: { paths: {}, step: {} } })).toEqual({
      step: 0.1,
      paths: ['$'],
    })
    expect(
      metricOperatorSettings(
        { width: 5 },
        { oneOf: [{ properties: { path: {}, bounds: {} } }, { properties: { path: {}, width: {} } }] },
      ),
    ).toEqual({ width: 5, path: '$' })
    expect(metricOperatorSettings({ paths: ['a'] }, { properties: { paths: {} } })).toEqual({ paths: ['a'] })
    expect(metricOperatorSettings(undefined, { properties: { total: {} } })).toEqual({ total: '$' })
  })
})

describe('Sparkplug configuration', () => {
  it('reads encoding and sparkplug from the configuration file and routes mapped groups to their category', () => {
    const dir = tempDir()
    dirs.push(dir)
    const file = join(dir.path, 'veil.yaml')
    writeFileSync(
      file,
      'encoding: { svc: protobuf }\nsparkplug: { category: smart_plug, groups: { Trackers: gps_tracker }, maxEdgeNodes: 5 }\n',
    )
    const config = resolveConfig(builtinPlugins, { config: file, dataDir: dir.path })
    expect(config.encoding.get('svc')).toBe('protobuf')
    expect(config.encoding.get('ana')).toBeUndefined()
    expect(config.profileSettings.sparkplug).toMatchObject({
      category: 'smart_plug',
      groups: { Trackers: 'gps_tracker' },
      maxEdgeNodes: 5,
      maxDevicesPerNode: 1000,
    })
    const classifier = new Classifier(profilesOf(config))
    expect(classifier.classify('spBv1.0/Trackers/NDATA/van-3')?.stream.category).toBe('gps_tracker')
    expect(classifier.classify('spBv1.0/Plant/NDATA/edge-1')?.stream.category).toBe('smart_plug')
    expect(classifier.classify('spBv1.0/Plant/DDATA/edge-1/meter-2')?.stream.key).toBe('sparkplug/device')
    expect(classifier.classify('spBv1.0/Plant/NCMD/edge-1')).toBeUndefined()
  })

  it('refuses an unknown encoding or category with the file and the path', () => {
    const dir = tempDir()
    dirs.push(dir)
    const file = join(dir.path, 'veil.yaml')
    writeFileSync(file, 'encoding: { svc: xml }\nsparkplug: { groups: { G: toaster } }\n')
    expect(() => resolveConfig(builtinPlugins, { config: file, dataDir: dir.path })).toThrow(
      /veil\.yaml.*\/encoding\/svc[\s\S]*\/sparkplug\/groups\/G/,
    )
  })
})
