import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SUPPRESS } from '#veil/sdk'
import { compileEnv, compileOperator, compileUnchecked, opContext } from '../testing.ts'
import { DETECTORS, findPii, luhnValid, type Detector } from './detect.ts'
import piiScan from './index.ts'

const FIXTURES = join(import.meta.dirname, '../../../test/fixtures')
const env = compileEnv({ category: 'camera' })
const ctx = opContext({ category: 'camera' })
const compile = (config: unknown = {}) => {
  const run = compileOperator(piiScan, config, env)
  return (doc: unknown) => run(doc, ctx)
}
const ALL = [...DETECTORS]

/** Appends the Luhn check digit. */
function withLuhn(body: string): string {
  for (let d = 0; d < 10; d++) if (luhnValid(body + d)) return body + d
  throw new Error('unreachable')
}

const hex2 = fc.integer({ min: 0, max: 255 }).map((n) => n.toString(16).padStart(2, '0'))
const macArb = fc
  .tuple(fc.array(hex2, { minLength: 6, maxLength: 6 }), fc.constantFrom(':', '-', ''), fc.boolean())
  .map(([parts, sep, upper]) => {
    const mac = parts.join(sep)
    return upper ? mac.toUpperCase() : mac
  })
const ipv4Arb = fc
  .tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 255 }))
  .map((p) => p.join('.'))
// More specific than /48: something set in the last five groups.
const ipv6Arb = fc.ipV6().filter((ip) => findPii(ip, ['ipv6']) !== undefined || findPii(ip, ['ipv4']) !== undefined)
const imeiArb = fc.stringMatching(/^[0-9]{14}$/).map(withLuhn)
const e164Arb = fc
  .tuple(fc.integer({ min: 1, max: 999 }), fc.stringMatching(/^[0-9]{7,11}$/), fc.constantFrom('', ' ', '-'))
  .map(([cc, rest, sep]) => `+${cc}${sep}${rest.slice(0, 3)}${sep}${rest.slice(3)}`)
const cnMobileArb = fc
  .tuple(fc.integer({ min: 3, max: 9 }), fc.stringMatching(/^[0-9]{9}$/), fc.constantFrom('', ' ', '-'))
  .map(([d, rest, sep]) => `1${d}${rest.slice(0, 1)}${sep}${rest.slice(1, 5)}${sep}${rest.slice(5)}`)
const plateArb = fc.constantFrom(
  'CAN4RY1',
  'B-MW 1234',
  'ABC 123',
  'ABC12345',
  'M-AB 123',
  'HH-XY 42',
  'KA 01 AB 1234'.slice(0, 10),
  '7ABC123',
  'AB12 CDE',
)
const piiArb = fc.oneof(
  fc.emailAddress().map((v) => ['email', v] as const),
  macArb.map((v) => ['mac', v] as const),
  ipv4Arb.map((v) => ['ipv4', v] as const),
  ipv6Arb.map((v) => ['ipv6', v] as const),
  imeiArb.map((v) => ['imei', v] as const),
  e164Arb.map((v) => ['phone', v] as const),
  cnMobileArb.map((v) => ['phone', v] as const),
  plateArb.map((v) => ['plate', v] as const),
)
// Text around the identifier: it must be found inside sentences too.
const wrap = fc.tuple(
  fc.constantFrom('', 'contact: ', 'Seen ', '(', 'id='),
  fc.constantFrom('', ' today', ')', ', ok', '.'),
)

/** Every string and number leaf, for the canary check. */
function leaves(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string' || typeof value === 'number') out.push(String(value))
  else if (Array.isArray(value)) for (const v of value) leaves(v, out)
  else if (typeof value === 'object' && value !== null)
    for (const [k, v] of Object.entries(value)) {
      out.push(k)
      leaves(v, out)
    }
  return out
}

describe('findPii detectors', () => {
  const hits: [Detector, string][] = [
    ['email', 'john.doe+cam@example.co.uk'],
    ['email', 'Mail me: jörg@müller.de please'],
    ['phone', '+49 89 1234567'],
    ['phone', '+1 (555) 123-4567'],
    ['phone', '+8613812345678'],
    ['phone', '13812345678'],
    ['phone', 'tel 138 1234 5678'],
    ['mac', '2C:3A:E8:12:34:56'],
    ['mac', 'aa-bb-cc-dd-ee-ff'],
    ['mac', '2c3ae8123456'],
    ['mac', 'shellyplug-s-4022D88349C4'],
    ['mac', '2c3a.e812.3456'],
    ['mac', '0x00158d0001a2b3c4'],
    ['ipv4', '192.168.1.23'],
    ['ipv4', 'http://10.0.0.7:80/'],
    ['ipv6', 'fe80::1a64:72ff:fed6:d9a3'],
    ['ipv6', '2001:db8:85a3:8d3:1319:8a2e:370:7348'],
    ['ipv6', '[2a00:1450:4001:82a::200e]:443'],
    ['imei', '356938035643809'],
    ['imei', 'IMEI: 490154203237518'],
    ['plate', 'CAN4RY1'],
    ['plate', 'B-MW 1234'],
    ['plate', 'ABC 123'],
    ['plate', 'plate ABC12345 seen'],
    ['plate', 'It was CAN4RY1.'],
    ['plate', 'Plate: B-MW 1234, blue'],
  ]
  it.each(hits)('%s in %j', (detector, text) => {
    expect(findPii(text, [detector])).toBe(detector)
    expect(findPii(text, ALL)).toBeDefined()
  })

  const benign = [
    'person',
    'front',
    'car',
    'front_door',
    'driveway',
    'delivery_person',
    'ON',
    'OFF',
    'Online',
    '2021-06-17T03:19:55.695Z',
    '2025-01-01T00:00:00+02:00',
    '2025-01-01 12:30:00',
    '12:34:56',
    '12:34:56.789',
    'ff894ff3-2215-4cea-befa-43fe00898b65',
    '1607123955.475377-mxklsc',
    'dcb772de-d8e8-4074-9bce-15dbba5955c5.jpg',
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    '5f4dcc3b5aa765d61d8327deb882cf99',
    'The car is a red sedan moving away from the camera.',
    'Schlafzimmer',
    'Küche',
    'Das IoT',
    '2.4ghz',
    '192.168.1.0',
    '2001:db8:85a3::',
    '::',
    'std::string',
    'v13.2.0',
    '3.3V',
    'user@localhost',
    'pkg@1.2.3',
    '356938035643808',
    '1234567',
    '+12345',
    '-48',
    '100%',
    'a1',
    'Hello World 2',
  ]
  it.each(benign)('no identifier in %j', (text) => {
    expect(findPii(text, ALL)).toBeUndefined()
  })

  it('the P2 scanner (no detector list) leaves plates and model names to pii_scan', () => {
    expect(findPii('CAN4RY1')).toBeUndefined()
    expect(findPii('{"AM2301":{"Temperature":21.5}}')).toBeUndefined()
    expect(findPii('{"ip":"192.168.1.23"}')).toBe('ipv4')
  })

  it('uuids never trip the MAC detector (token boundaries) (property)', () => {
    fc.assert(
      fc.property(fc.uuid(), (id) => {
        expect(findPii(id, ['mac', 'imei', 'ipv6', 'email', 'ipv4'])).toBeUndefined()
      }),
      { seed: 42, numRuns: 2000 },
    )
  })

  it('ISO timestamps never match anything (property)', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }), (d) => {
        expect(findPii(d.toISOString(), ALL)).toBeUndefined()
        expect(findPii(String(d.getTime() / 1000), ALL)).toBeUndefined()
      }),
      { seed: 42, numRuns: 2000 },
    )
  })

  it('plates need letters AND digits: plain words and pure numbers never match (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.stringMatching(/^[A-Z]{1,8}( [A-Z]{1,8})?$/),
          fc.stringMatching(/^[0-9]{1,6}( [0-9]{1,6})?$/),
          fc.lorem(),
        ),
        (t) => {
          expect(findPii(t, ['plate'])).toBeUndefined()
        },
      ),
      { seed: 42, numRuns: 1000 },
    )
  })
})

describe('pii_scan', () => {
  it('P2: every generated identifier embedded anywhere in nested JSON is removed (property)', () => {
    const run = compile()
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 2 }),
        piiArb,
        wrap,
        fc.constantFrom('a', 'b', 'c'),
        fc.boolean(),
        (base, [detector, pii], [pre, post], key, inArray) => {
          const text = `${pre}${pii}${post}`
          expect(findPii(text, ALL), `${detector}: ${text}`).toBeDefined()
          const canary = { keep: 'person', deep: { [key]: inArray ? ['front', text, 1] : text, other: base } }
          const out = run(structuredClone(canary))
          const forwarded = JSON.stringify(out)
          expect(forwarded.includes(pii)).toBe(false)
          expect(leaves(out).some((l) => l.includes(pii))).toBe(false)
          expect(
            findPii(
              forwarded,
              ALL.filter((d) => d !== 'plate'),
            ),
          ).toBeUndefined()
          expect((out as { keep: string }).keep).toBe('person')
          if (inArray) expect((out as { deep: Record<string, unknown> }).deep[key]).toEqual(['front', 1])
          else expect(Object.hasOwn((out as { deep: object }).deep, key)).toBe(false)
          // drop_message withholds the same document whole.
          expect(compile({ action: 'drop_message' })(structuredClone(canary))).toBe(SUPPRESS)
        },
      ),
      { seed: 42, numRuns: 1000 },
    )
  })

  it('P2: whatever the input, the forwarded JSON passes the P2 scanner (property)', () => {
    const run = compile()
    const text = fc.oneof(
      fc.string(),
      piiArb.map(([, v]) => v),
      fc.tuple(fc.string(), piiArb, fc.string()).map(([a, [, v], b]) => `${a} ${v} ${b}`),
    )
    const doc = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        text,
        fc.integer(),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.constant(356938035643809),
        fc.constant(13812345678),
        tie('array'),
        tie('object'),
      ),
      array: fc.array(tie('value'), { maxLength: 4 }),
      object: fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), macArb), tie('value'), { maxKeys: 4 }),
    })).object
    fc.assert(
      fc.property(doc, (d) => {
        const out = run(d)
        if (out === SUPPRESS) return
        expect(findPii(JSON.stringify(out))).toBeUndefined()
      }),
      { seed: 42, numRuns: 1000 },
    )
  })

  it('benign documents survive unchanged (property)', () => {
    const run = compile()
    const benign = fc.oneof(
      fc.constantFrom('person', 'front', 'car', 'driveway', 'ON', 'docked', 'Schlafzimmer', 'The car is a red sedan.'),
      fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }).map((d) => d.toISOString()),
      fc.uuid(),
      fc.integer({ min: -1_000_000, max: 1_000_000 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.boolean(),
      fc.lorem({ maxCount: 6 }),
    )
    fc.assert(
      fc.property(
        fc.dictionary(fc.stringMatching(/^[a-z_]{1,10}$/), fc.oneof(benign, fc.array(benign, { maxLength: 3 }))),
        (d) => {
          expect(run(structuredClone(d))).toEqual(d)
        },
      ),
      { seed: 42, numRuns: 1000 },
    )
  })

  it('drops long numbers that are identifiers: Luhn IMEI, Chinese mobile, 12-digit MAC-like', () => {
    const run = compile()
    expect(
      run({
        imei: 356938035643809,
        n: 356938035643808,
        mobile: 13812345678,
        mac: 123456789012,
        t: 1607123961.837752,
        ms: 1735689600000,
        w: 123456,
      }),
    ).toEqual({
      n: 356938035643808,
      t: 1607123961.837752,
      ms: 1735689600000,
      w: 123456,
    })
  })

  it('drops keys that are identifiers, except by plate', () => {
    expect(compile()({ '2C:3A:E8:12:34:56': 1, AM2301: { Temperature: 21.5 } })).toEqual({
      AM2301: { Temperature: 21.5 },
    })
  })

  it('Frigate fixtures: plate and face name go, labels and times stay', () => {
    const run = compile()
    const events = JSON.parse(readFileSync(join(FIXTURES, 'camera/frigate_events_update.json'), 'utf8')) as {
      after: Record<string, unknown>
      before: Record<string, unknown>
    }
    const out = run(structuredClone(events)) as typeof events
    expect(JSON.stringify(out)).not.toContain('ABC12345')
    expect(out.after.label).toBe('person')
    expect(out.after.camera).toBe('front_door')
    expect(out.after.start_time).toBe(events.after.start_time)
    expect(out.after.id).toBe(events.after.id)
  })

  it('passes no P2 identifier from any real fixture', () => {
    const run = compile()
    for (const dir of readdirSync(FIXTURES, { withFileTypes: true }).filter((d) => d.isDirectory())) {
      for (const file of readdirSync(join(FIXTURES, dir.name)).filter((f) => f.endsWith('.json'))) {
        const doc = JSON.parse(readFileSync(join(FIXTURES, dir.name, file), 'utf8')) as unknown
        const out = run(doc)
        if (out !== SUPPRESS) expect(findPii(JSON.stringify(out)), file).toBeUndefined()
      }
    }
  })

  it('a scalar payload that matches is withheld; detectors can be chosen', () => {
    expect(compile()('john@example.com')).toBe(SUPPRESS)
    expect(compile()(356938035643809)).toBe(SUPPRESS)
    expect(compile()('person')).toBe('person')
    expect(compile({ detectors: ['email'] })({ a: 'CAN4RY1', b: 'x@y.org' })).toEqual({ a: 'CAN4RY1' })
    expect(compile({ detectors: ['plate'] })({ a: 'CAN4RY1', b: 'x@y.org' })).toEqual({ b: 'x@y.org' })
  })

  it('refuses bytes, non-JSON values, deep nesting and bad config', () => {
    let deep: unknown = 'x'
    for (let i = 0; i < 100; i++) deep = { d: deep }
    expect(() => compile()(deep)).toThrow(/nested/)
    expect(() => compile()(Buffer.from('john@example.com'))).toThrow(/not JSON/)
    expect(() => compile({ action: 'drop_message' })({ a: () => 1 })).toThrow(/not JSON/)
    expect(() => compileUnchecked(piiScan, { detectors: [] }, env)).toThrow(/detector/)
    expect(() => compileUnchecked(piiScan, { detectors: ['ssn'] }, env)).toThrow(/unknown detector/)
    expect(() => compileUnchecked(piiScan, { action: 'mask' }, env)).toThrow(/action/)
  })
})
