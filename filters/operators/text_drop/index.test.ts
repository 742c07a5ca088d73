import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import textDrop, { DEFAULT_KEYS } from './index.ts'

const CAMERA = join(import.meta.dirname, '../../../test/fixtures/camera')
const env = compileEnv({ category: 'camera' })
const ctx = opContext({ category: 'camera' })
const compile = (config: unknown = {}) => {
  const run = compileOperator(textDrop, config, env)
  return (doc: unknown) => run(doc, ctx)
}
const frigate = readdirSync(CAMERA)
  .filter((f) => f.endsWith('.json'))
  .map((f) => [f, JSON.parse(readFileSync(join(CAMERA, f), 'utf8')) as unknown] as const)

function keysOf(value: unknown, out: Set<string> = new Set()): Set<string> {
  if (Array.isArray(value)) for (const v of value) keysOf(v, out)
  else if (typeof value === 'object' && value !== null)
    for (const [k, v] of Object.entries(value)) {
      out.add(k)
      keysOf(v, out)
    }
  return out
}

describe('text_drop', () => {
  it.each(frigate)('%s: no default key survives at any depth', (_file, doc) => {
    const out = compile()(structuredClone(doc))
    for (const key of keysOf(out)) expect(DEFAULT_KEYS).not.toContain(key)
  })

  it('removes the person, plate and description from the real Frigate and Double Take payloads', () => {
    const all = JSON.stringify(frigate.map(([, d]) => compile()(structuredClone(d))))
    for (const secret of ['david', 'John Smith', 'John', 'ABC12345', 'red sedan', 'delivery_person', 'car_trigger']) {
      expect(JSON.stringify(frigate.map(([, d]) => d))).toContain(secret)
      expect(all).not.toContain(secret)
    }
    const events = frigate.find(([f]) => f === 'frigate_events_update.json')?.[1] as { after: Record<string, unknown> }
    const out = compile()(structuredClone(events)) as { after: Record<string, unknown> }
    expect(out.after.label).toBe('person')
    expect(out.after.camera).toBe(events.after.camera)
    expect(out.after).not.toHaveProperty('sub_label')
    expect(out.after).not.toHaveProperty('recognized_license_plate')
    expect(out.after).not.toHaveProperty('recognized_license_plate_score')
    expect(out.after).not.toHaveProperty('thumbnail')
  })

  it('finds keys inside arrays and new wrappers (Double Take matches[], Tasmota {"Info2":{…}})', () => {
    const doc = {
      matches: [{ name: 'david', confidence: 100 }],
      Info2: { Hostname: 'kitchen-plug', WebServerMode: 'Admin' },
      Status: { FriendlyName: ['Lamp'], DeviceName: 'Lamp', Topic: 't' },
    }
    expect(compile()(doc)).toEqual({
      matches: [{ confidence: 100 }],
      Info2: { WebServerMode: 'Admin' },
      Status: { Topic: 't' },
    })
  })

  it('matches exact, case-sensitive names only; a custom list replaces the default', () => {
    expect(compile()({ Name: 'x', names: 'y', name: 'z' })).toEqual({ Name: 'x', names: 'y' })
    expect(compile({ keys: ['label'] })({ label: 'person', name: 'Bob' })).toEqual({ name: 'Bob' })
  })

  it('no listed key survives anywhere in generated documents (property)', () => {
    const run = compile()
    const key = fc.oneof(fc.constantFrom(...DEFAULT_KEYS), fc.string({ maxLength: 8 }))
    const doc = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.string(),
        fc.integer(),
        fc.constant(null),
        tie('array'),
        tie('object'),
      ),
      array: fc.array(tie('value'), { maxLength: 4 }),
      object: fc.dictionary(key, tie('value'), { maxKeys: 5 }),
    })).object
    fc.assert(
      fc.property(doc, (d) => {
        const before = keysOf(d)
        const out = run(structuredClone(d))
        const after = keysOf(out)
        for (const k of after) expect(DEFAULT_KEYS).not.toContain(k)
        // Nothing else is lost: an unlisted key disappears only with a listed parent.
        for (const k of before)
          if (!DEFAULT_KEYS.includes(k) && !after.has(k))
            expect([...before].some((p) => DEFAULT_KEYS.includes(p))).toBe(true)
      }),
      { seed: 42, numRuns: 500 },
    )
  })

  it('leaves scalars alone and refuses bytes, deep nesting and an empty list', () => {
    expect(compile()('ON')).toBe('ON')
    expect(() => compile()(Buffer.from('{"name":"x"}'))).toThrow(/not JSON/)
    let deep: unknown = {}
    for (let i = 0; i < 100; i++) deep = { d: deep }
    expect(() => compile()(deep)).toThrow(/nested/)
    expect(() => compile({ keys: [] })).toThrow(/keys/)
  })
})
