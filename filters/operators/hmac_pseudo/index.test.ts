import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { base32 } from '#veil/sdk'
import { Keyring } from '../../../gateway/src/keys/keyring.ts'
import type { Domain } from '#veil/sdk'
import { compileEnv, opContext } from '../testing.ts'
import hmacPseudo from './index.ts'

const DAY_MS = 86_400_000
const T0 = Date.UTC(2025, 0, 1)
// ANA rotates daily (the GPS-ANA setting), without a gap here (the gap has its own test); SVC never rotates.
const keyring = new Keyring(Buffer.alloc(32, 7), new Map([['ana', { epochSeconds: 86_400, rotationGapSeconds: 0 }]]))
/** The start of an epoch of opContext's device `dev-1` in ana: its rotation moment (each device has its own). */
const ANA_T0 = T0 + keyring.phaseMs('ana', 'smart_plug', 'dev-1')

function pseudonymizer(paths: string[], options: { domain?: Domain; kind?: string; keys?: Keyring } = {}) {
  const domain = options.domain ?? 'svc'
  const keys = options.keys ?? keyring
  const config = options.kind === undefined ? { paths } : { paths, kind: options.kind }
  const fn = hmacPseudo.compile(config, compileEnv({ category: 'smart_plug', domain, keyring: keys }))
  return (doc: unknown, nowMs = T0): unknown =>
    fn(doc, opContext({ category: 'smart_plug', domain, keyring: keys, nowMs }))
}
const idOf = (out: unknown): string => (out as { id: string }).id

function bitAgreement(a: string, b: string): number {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
  let same = 0
  let total = 0
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = alphabet.indexOf(a[i] as string)
    const y = alphabet.indexOf(b[i] as string)
    for (let bit = 0; bit < 5; bit++) {
      if (((x >> bit) & 1) === ((y >> bit) & 1)) same++
      total++
    }
  }
  return same / total
}

describe('hmac_pseudo', () => {
  it('replaces ids with 26-character base32 pseudonyms and canonicalises them first', () => {
    const p = pseudonymizer(['id'])
    const out = idOf(p({ id: '2C:3A:E8:01:02:03' }))
    expect(out).toMatch(/^[a-z2-7]{26}$/)
    expect(idOf(p({ id: ' 2c:3a:e8:01:02:03 ' }))).toBe(out)
    expect(idOf(p({ id: 358240051111110 }))).toBe(idOf(p({ id: '358240051111110' })))
  })

  it('removes what is not an id, maps arrays, and keeps other fields', () => {
    const p = pseudonymizer(['id', 'zones'])
    for (const bad of [null, true, { mac: 'x' }, '', '   ', 'x'.repeat(300), Number.NaN])
      expect(p({ id: bad, n: 1 })).toEqual({ n: 1 })
    const out = p({ zones: ['Kitchen', 'front_door', 3, null] }) as { zones: string[] }
    expect(out.zones).toHaveLength(3)
    expect(out.zones.join()).not.toMatch(/kitchen|front/i)
  })

  it('separates kinds: the same text as a camera name and as a user id gives different pseudonyms', () => {
    expect(idOf(pseudonymizer(['id'], { kind: 'camera' })({ id: 'bob' }))).not.toBe(
      idOf(pseudonymizer(['id'], { kind: 'user' })({ id: 'bob' })),
    )
    // The default kind is the category.
    expect(idOf(pseudonymizer(['id'])({ id: 'bob' }))).toBe(
      idOf(pseudonymizer(['id'], { kind: 'smart_plug' })({ id: 'bob' })),
    )
  })

  it('P9: equal within (domain, epoch); different across domains; rotates with the epoch', () => {
    const svc = pseudonymizer(['id'], { domain: 'svc' })
    const ana = pseudonymizer(['id'], { domain: 'ana' })
    const id = { id: 'DVES_15568C' }
    expect(idOf(svc({ ...id }))).toBe(idOf(svc({ ...id }, T0 + 400 * DAY_MS)))
    expect(idOf(ana({ ...id }, ANA_T0))).toBe(idOf(ana({ ...id }, ANA_T0 + DAY_MS - 1)))
    expect(idOf(ana({ ...id }, ANA_T0))).not.toBe(idOf(ana({ ...id }, ANA_T0 + DAY_MS)))
    expect(idOf(svc({ ...id }))).not.toBe(idOf(ana({ ...id })))
    // Another gateway (another master key) gives unrelated pseudonyms.
    const other = pseudonymizer(['id'], { keys: new Keyring(Buffer.alloc(32, 8), new Map()) })
    expect(idOf(other({ ...id }))).not.toBe(idOf(svc({ ...id })))
  })

  it("switches with the device's epoch and gives nothing inside the device's rotation gap", () => {
    const gapped = new Keyring(
      Buffer.alloc(32, 7),
      new Map([['ana', { epochSeconds: 86_400, rotationGapSeconds: 7200 }]]),
    )
    const ana = pseudonymizer(['id'], { domain: 'ana', keys: gapped })
    const r = T0 + gapped.phaseMs('ana', 'smart_plug', 'dev-1')
    // Inside [R - 1 h, R + 1 h) the field goes (the route stage drops the whole copy as rotation_gap).
    for (const t of [r - 3_600_000, r, r + 3_599_999]) expect(ana({ id: 'DVES_15568C', n: 1 }, t)).toEqual({ n: 1 })
    const before = idOf(ana({ id: 'DVES_15568C' }, r - 3_600_001))
    const after = idOf(ana({ id: 'DVES_15568C' }, r + 3_600_000))
    expect(before).toMatch(/^[a-z2-7]{26}$/)
    expect(after).toMatch(/^[a-z2-7]{26}$/)
    expect(before).not.toBe(after)
  })

  it('P9: across domains and epochs, 5·10^4 ids give 0 collisions and about 50 % bit agreement', {
    timeout: 60_000,
  }, () => {
    const svc = pseudonymizer(['id'], { domain: 'svc' })
    const ana = pseudonymizer(['id'], { domain: 'ana' })
    const n = 50_000
    const ids = Array.from({ length: n }, (_, i) => `2c:3a:e8:${(i >> 16) & 255}:${(i >> 8) & 255}:${i & 255}`)
    // One epoch at a time: the keyring keeps only the current epoch's key (old ones are destroyed on purpose).
    const a = ids.map((id) => idOf(svc({ id })))
    const b = ids.map((id) => idOf(ana({ id })))
    const c = ids.map((id) => idOf(ana({ id }, T0 + DAY_MS)))
    const seen = new Set([...a, ...b, ...c])
    let agreement = 0
    let epochAgreement = 0
    for (let i = 0; i < 10_000; i++) {
      agreement += bitAgreement(a[i] as string, b[i] as string)
      epochAgreement += bitAgreement(b[i] as string, c[i] as string)
    }
    expect(seen.size).toBe(3 * n)
    expect(agreement / 10_000).toBeGreaterThan(0.49)
    expect(agreement / 10_000).toBeLessThan(0.51)
    expect(epochAgreement / 10_000).toBeGreaterThan(0.49)
    expect(epochAgreement / 10_000).toBeLessThan(0.51)
  })

  it('A2: enumerating 10^5 phone numbers reverses a plain SHA-256 but finds nothing behind hmac_pseudo', {
    timeout: 60_000,
  }, () => {
    const target = '+4915112345678'
    const sha = (s: string): Buffer => createHash('sha256').update(s).digest()
    const plainHex = sha(target).toString('hex')
    const pseudonym = idOf(pseudonymizer(['id'], { kind: 'user' })({ id: target }))
    let foundPlain = 0
    let foundPseudo = 0
    for (let i = 0; i < 100_000; i++) {
      const candidate = `+49151123${String(i).padStart(5, '0')}`
      const digest = sha(candidate)
      if (digest.toString('hex') === plainHex) foundPlain++
      // The attacker tries every unkeyed encoding of the hash that could have produced the pseudonym.
      if (base32(digest.subarray(0, 16)) === pseudonym || digest.toString('hex').startsWith(pseudonym)) foundPseudo++
      if (base32(sha(`user\u0000${candidate}`).subarray(0, 16)) === pseudonym) foundPseudo++
    }
    expect(foundPlain).toBe(1)
    expect(foundPseudo).toBe(0)
  })

  it('property: no output contains the id or a plain hash of it', () => {
    const p = pseudonymizer(['id'], { domain: '3p' })
    fc.assert(
      fc.property(
        fc.string({ minLength: 4, maxLength: 40 }).filter((s) => s.trim().length >= 4),
        (id) => {
          const out = JSON.stringify(p({ id }))
          const canonical = id.trim().toLowerCase()
          expect(out.includes(JSON.stringify(canonical).slice(1, -1))).toBe(false)
          expect(out.includes(createHash('sha256').update(canonical).digest('hex').slice(0, 16))).toBe(false)
        },
      ),
      { seed: 42, numRuns: 1000 },
    )
  })
})
