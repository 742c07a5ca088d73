import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { builtinOperators } from '../../../filters/operators/index.ts'
import { builtinProfiles } from '../../../filters/profiles/index.ts'
import { tempDir } from '../../../test/helpers/gateway.ts'
import { DEFAULT_POLICIES } from '../config/config.ts'
import { Keyring } from '../keys/keyring.ts'
import { Classifier } from '../streams/classifier.ts'
import { loadPolicySet } from './load.ts'

const classifier = new Classifier(builtinProfiles)
const keyring = new Keyring(Buffer.alloc(32), new Map())
const dirs: { remove(): void }[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) d.remove()
})

/** Writes `<category>.yaml` into a fresh policy directory; returns the file's path. */
function policyFile(category: string, streams: string, domain = 'svc'): string {
  const dir = tempDir()
  dirs.push(dir)
  const policies = join(dir.path, 'policies')
  mkdirSync(policies)
  const file = join(policies, `${category}.yaml`)
  writeFileSync(file, `category: ${category}\ndomains:\n  ${domain}:\n    streams:\n${streams}`)
  return file
}

const load = (file: string): unknown =>
  loadPolicySet(join(file, '..'), {
    classifier,
    operators: builtinOperators,
    keyring,
    dataDir: '/tmp',
    variables: { privacy_zones: [] },
  })

/** The load error's lines; each is `<file>: <JSON path>: <problem>`. */
function problems(file: string): string[] {
  try {
    load(file)
  } catch (err) {
    return (err as Error).message.split('\n')
  }
  return []
}

describe('load-time check: every declared time that leaves is floored in its unit', () => {
  it('accepts the shipped policies, every opt-in variant included', () => {
    expect(() => load(join(DEFAULT_POLICIES, 'x'))).not.toThrow()
  })

  it('refuses a time the allowlist lets leave without a time_floor, naming the file, the path and the problem', () => {
    const file = policyFile(
      'gps_tracker',
      '      canonical/location:\n        allow: [lat, lon, ts]\n        operators:\n          - geohash_snap: { precision: 6 }\n',
    )
    expect(problems(file)).toEqual([
      `${file}: /domains/svc/streams/canonical~1location/allow/2: lets ts (a time, epoch_s) leave to svc without a time_floor; add - time_floor: { paths: [ts], seconds: 60, format: epoch_s } (exact times need an opt_in variant)`,
    ])
  })

  it('refuses a time_floor that does not name the field that leaves', () => {
    const file = policyFile(
      'camera',
      '      frigate/events:\n        allow: [type, after.start_time, after.end_time]\n        operators:\n          - time_floor: { paths: [after.start_time], seconds: 60, format: epoch_s }\n',
    )
    expect(problems(file)).toEqual([
      expect.stringMatching(
        /\/domains\/svc\/streams\/frigate~1events\/allow\/2: lets after\.end_time \(a time, epoch_s\) leave to svc without a time_floor/,
      ),
    ])
  })

  it('refuses a time_floor whose format is not the declared unit, auto included, in opt-in variants too', () => {
    const file = policyFile(
      'gps_tracker',
      [
        '      owntracks/location:',
        '        allow: [tst]',
        '        operators:',
        '          - time_floor: { paths: [tst], seconds: 60 }',
        '      gpsd/tpv:',
        '        allow: []',
        '        opt_in:',
        '          precise_location:',
        '            allow: [time]',
        '            operators:',
        '              - time_floor: { paths: [time], seconds: 1, format: epoch_s }',
        '',
      ].join('\n'),
    )
    expect(problems(file)).toEqual([
      `${file}: /domains/svc/streams/owntracks~1location/operators/0/time_floor/format: is auto but owntracks/location declares tst as epoch_s (x-veil-time); write format: epoch_s, or the floor is not in the field's unit`,
      `${file}: /domains/svc/streams/gpsd~1tpv/opt_in/precise_location/operators/0/time_floor/format: is epoch_s but gpsd/tpv declares time as iso (x-veil-time); write format: iso, or the floor is not in the field's unit`,
    ])
  })

  it('refuses a floor finer than the domain allows: a minute for svc, an hour for ana and 3p', () => {
    const svc = policyFile(
      'camera',
      '      canonical/event:\n        allow: [ts]\n        operators:\n          - time_floor: { paths: [ts], seconds: 10, format: epoch_s }\n',
    )
    expect(problems(svc)).toEqual([
      `${svc}: /domains/svc/streams/canonical~1event/operators/0/time_floor/seconds: is 10 but svc gets ts floored to at least 60 s by default (exact times need an opt_in variant)`,
    ])
    const ana = policyFile(
      'camera',
      '      frigate/reviews:\n        allow: [after.start_time]\n        operators:\n          - time_floor: { paths: [after.start_time], seconds: 60, format: epoch_s }\n',
      'ana',
    )
    expect(problems(ana)).toEqual([
      expect.stringContaining(
        `${ana}: /domains/ana/streams/frigate~1reviews/operators/0/time_floor/seconds: is 60 but ana gets after.start_time floored to at least 3600 s`,
      ),
    ])
    const hourly = policyFile(
      'camera',
      '      frigate/reviews:\n        allow: [after.start_time]\n        operators:\n          - time_floor: { paths: [after.start_time], seconds: 3600, format: epoch_s }\n',
      '3p',
    )
    expect(problems(hourly)).toEqual([])
  })

  // Every variant is compiled whatever anyone consents to (consent picks one per message).
  it('lets an opt-in variant keep exact times', () => {
    const file = policyFile(
      'gps_tracker',
      '      gpsd/tpv:\n        allow: [class]\n        opt_in:\n          precise_location:\n            allow: [class, time, lat, lon]\n',
    )
    expect(problems(file)).toEqual([])
  })

  it('checks Sparkplug metric timestamps once any metric is kept, and no time a replacing operator consumes', () => {
    const file = policyFile(
      'smart_plug',
      [
        '      sparkplug/node:',
        '        allow: [timestamp]',
        '        metrics: { allow: [Temperature] }',
        '        operators:',
        '          - time_floor: { paths: [timestamp], seconds: 60, format: epoch_ms }',
        '      sparkplug/device:',
        '        allow: [timestamp]',
        '        metrics: { allow: [] }',
        '        operators:',
        '          - time_floor: { paths: [timestamp], seconds: 60, format: epoch_ms }',
        // energy_window replaces the document: ts never leaves.
        '      canonical/energy:',
        '        allow: [ts, total_kwh]',
        '        operators:',
        '          - energy_window: { total: total_kwh, unit: kWh, window_s: 3600, step_wh: 10 }',
        '',
      ].join('\n'),
    )
    expect(problems(file)).toEqual([
      expect.stringContaining(
        `${file}: /domains/svc/streams/sparkplug~1node/allow/0: lets metrics[].timestamp (a time, epoch_ms) leave to svc without a time_floor`,
      ),
    ])
  })

  it('reports every time problem of a file in one run, beside the other problems', () => {
    const file = policyFile(
      'camera',
      '      canonical/event:\n        allow: [ts]\n      frigate/events:\n        allow: [after.frame_time]\n        operators:\n          - nope: {}\n',
    )
    const lines = problems(file)
    expect(lines).toHaveLength(3)
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringContaining('/domains/svc/streams/canonical~1event/allow/0: lets ts'),
        expect.stringContaining('/domains/svc/streams/frigate~1events/allow/0: lets after.frame_time'),
        expect.stringContaining('/domains/svc/streams/frigate~1events/operators/0/nope: unknown operator nope'),
      ]),
    )
  })
})
