import { describe, expect, it } from 'vitest'
import { builtinProfiles } from '../../../filters/profiles/index.ts'
import { createPayloadAjv } from './ajv.ts'
import { Classifier } from './classifier.ts'
import { declaredTimeFields, TIME_KEYWORD } from './time-fields.ts'
import type { JsonSchema } from '../sdk/profile.ts'

const streams = new Classifier(builtinProfiles).streams
const byKey = (key: string) => streams.find((s) => s.key === key)?.timeFields

describe('declared time fields (x-veil-time)', () => {
  it('are read from properties, $defs, items and anyOf branches', () => {
    expect(byKey('frigate/events')).toEqual(
      new Map([
        ['before.frame_time', 'epoch_s'],
        ['before.start_time', 'epoch_s'],
        ['before.end_time', 'epoch_s'],
        ['after.frame_time', 'epoch_s'],
        ['after.start_time', 'epoch_s'],
        ['after.end_time', 'epoch_s'],
      ]),
    )
    expect(byKey('frigate/reviews')?.get('before.start_time')).toBe('epoch_s')
    expect(byKey('shelly_gen1/info')?.get('meters[].timestamp')).toBe('epoch_s')
    expect(byKey('shelly_gen2/rpc')).toEqual(
      new Map([
        ['params.ts', 'epoch_s'],
        ['params.switch:0.aenergy.minute_ts', 'epoch_s'],
        ['params.switch:0.ret_aenergy.minute_ts', 'epoch_s'],
      ]),
    )
    expect(byKey('sparkplug/node')).toEqual(
      new Map([
        ['timestamp', 'epoch_ms'],
        ['metrics[].timestamp', 'epoch_ms'],
      ]),
    )
    expect(byKey('traccar/location')).toEqual(new Map([['location.timestamp', 'iso']]))
    for (const key of [
      'canonical/energy',
      'canonical/event',
      'canonical/status',
      'canonical/measurement',
      'canonical/location',
    ])
      expect(byKey(key)).toEqual(new Map([['ts', 'epoch_s']]))
  })

  it('refuse two units for one field and an unknown unit', () => {
    expect(() =>
      declaredTimeFields({ anyOf: [{ [TIME_KEYWORD]: 'epoch_s' }, { [TIME_KEYWORD]: 'epoch_ms' }] }),
    ).toThrow(/one unit/)
    expect(() => declaredTimeFields({ properties: { t: { [TIME_KEYWORD]: 'minutes' } } })).toThrow(
      /t: x-veil-time must be one of/,
    )
    expect(() =>
      createPayloadAjv().compile({ type: 'object', properties: { t: { type: 'number', [TIME_KEYWORD]: 'minutes' } } }),
    ).toThrow()
    expect(
      createPayloadAjv().compile({ type: 'object', properties: { t: { type: 'number', [TIME_KEYWORD]: 'epoch_s' } } })({
        t: 1,
      }),
    ).toBe(true)
  })

  it('canonical ts is epoch seconds only: a value in ms is invalid, in JSON as in protobuf', () => {
    const rest: Record<string, Record<string, unknown>> = {
      energy: {},
      event: { label: 'person' },
      status: {},
      measurement: { weight_kg: 70 },
      location: { lat: 0, lon: 0 },
    }
    const canonical = streams.filter((s) => s.profile === 'canonical')
    expect(canonical).toHaveLength(10)
    for (const s of canonical) {
      expect(s.validate?.({ ts: 1_772_366_400, ...rest[s.name] })).toBe(true)
      expect(s.validate?.({ ts: 4_102_444_800, ...rest[s.name] })).toBe(true)
      // Past 2100-01-01: a decimal IPv4 or phone number, not a time.
      expect(s.validate?.({ ts: 4_102_444_801, ...rest[s.name] })).toBe(false)
      expect(s.validate?.({ ts: 1_772_366_400_000, ...rest[s.name] })).toBe(false)
    }
  })

  // A new schema's time field without a unit would escape the load-time check (policy/time-check.ts).
  it('every property named like a time, in every stream schema, declares its unit', () => {
    const TIME_NAME =
      /^(ts|tst|wtst|time|Time|timestamp|unixtime|last_seen|last_updated|from|to)$|_time$|_ts$|StartTime$/
    const missing: string[] = []
    const visit = (node: unknown, where: string): void => {
      if (node === null || typeof node !== 'object') return
      const s = node as JsonSchema
      for (const [key, child] of Object.entries((s.properties ?? {}) as Record<string, JsonSchema>)) {
        if (TIME_NAME.test(key) && child[TIME_KEYWORD] === undefined) missing.push(`${where}.${key}`)
        visit(child, `${where}.${key}`)
      }
      for (const value of Object.values(s))
        if (value !== null && typeof value === 'object' && value !== s.properties) visit(value, where)
    }
    for (const p of builtinProfiles)
      for (const [name, def] of Object.entries(p.streams))
        if (def.schema !== undefined) visit(def.schema, `${p.name}/${name}`)
    expect(missing).toEqual([])
  })
})
