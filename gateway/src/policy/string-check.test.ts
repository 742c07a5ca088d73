import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { builtinOperators } from '../../../filters/operators/index.ts'
import { builtinProfiles } from '../../../filters/profiles/index.ts'
import { tempDir } from '../../../test/helpers/gateway.ts'
import { Keyring } from '../keys/keyring.ts'
import { Classifier } from '../streams/classifier.ts'
import { loadPolicySet } from './load.ts'
import { checkFreeStrings } from './string-check.ts'

const classifier = new Classifier(builtinProfiles)

function load(category: string, yaml: string): string | undefined {
  const dir = tempDir('veil-string-check-')
  try {
    writeFileSync(join(dir.path, `${category}.yaml`), `category: ${category}\n${yaml}`)
    loadPolicySet(dir.path, {
      classifier,
      operators: builtinOperators,
      keyring: new Keyring(Buffer.alloc(32, 1), new Map()),
      dataDir: dir.path,
    })
    return undefined
  } catch (err) {
    return (err as Error).message
  } finally {
    dir.remove()
  }
}

describe('load-time check: no free string leaves', () => {
  it('refuses an allowlisted string without a declared shape or pii_scan, naming file, JSON path and field', () => {
    const message = load('robot_vacuum', 'domains:\n  ana:\n    streams:\n      valetudo/error: { allow: [$] }\n')
    expect(message).toMatch(
      /robot_vacuum\.yaml: \/domains\/ana\/streams\/valetudo~1error\/allow\/0: valetudo\/error field \$ lets a free string leave/,
    )
  })

  it('checks opt-in variants too, and fields the schema does not declare', () => {
    const message = load(
      'smart_plug',
      'domains:\n  svc:\n    streams:\n      tasmota/sensor:\n        allow: [ENERGY.Total]\n        opt_in: { energy_15min: { allow: [Time, Extra.Field] } }\n',
    )
    expect(message).toContain(
      '/domains/svc/streams/tasmota~1sensor/opt_in/energy_15min/allow/0: tasmota/sensor field Time lets a free string leave: its schema declares no enum',
    )
    expect(message).toContain(
      '/opt_in/energy_15min/allow/1: tasmota/sensor field Extra.Field lets a free string leave: the schema does not declare it',
    )
  })

  it('accepts enums, patterns, numbers, pii_scan, text_drop of the key and operators that replace the field', () => {
    expect(
      load(
        'robot_vacuum',
        'domains:\n  ana:\n    streams:\n      valetudo/error: { allow: [$], operators: [ { pii_scan: {} } ] }\n      valetudo/status: { allow: [$] }\n      canonical/status: { allow: [state, battery_pct] }\n',
      ),
    ).toBeUndefined()
    expect(
      load(
        'camera',
        'domains:\n  svc:\n    streams:\n      frigate/events: { allow: [after.label, after.top_score] }\n      doubletake/cameras: { allow: [counts.person, camera.name], operators: [ { text_drop: {} } ] }\n',
      ),
    ).toBeUndefined()
    expect(
      load(
        'gps_tracker',
        'domains:\n  svc:\n    streams:\n      gpsd/tpv: { allow: [class, time, lat, lon], operators: [ { time_floor: { paths: [time], seconds: 60, format: iso } } ] }\n',
      ),
    ).toBeUndefined()
  })

  it('walks $ref, anyOf/oneOf branches and arrays: a branch admitting a free string is free', () => {
    const schema = {
      type: 'object',
      properties: {
        a: { $ref: '#/$defs/word' },
        b: { anyOf: [{ type: 'number' }, { type: 'string' }] },
        c: { type: 'array', items: { type: 'string' } },
        d: { type: 'array', items: { enum: ['x', 'y'] } },
        e: { type: ['number', 'null'] },
      },
      additionalProperties: false,
      $defs: { word: { type: 'string', pattern: '^[a-z]+$' } },
    }
    const problems = checkFreeStrings(
      'f.yaml',
      '/s',
      { key: 'p/s', decoding: 'json', schema },
      { allow: ['a', 'b', 'c', 'd', 'e', 'nothere'] },
    )
    expect(problems.map((p) => p.path)).toEqual(['/s/allow/1', '/s/allow/2'])
  })
})
