import { createHash, createHmac, hkdfSync } from 'node:crypto'
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../../../test/helpers/gateway.ts'
import type { Category, Domain } from '../sdk/model.ts'
import { base32 } from '../sdk/keyring.ts'
import { Keyring, loadOrCreateMasterKey, MASTER_KEY_FILE } from './keyring.ts'

/** The route stage's pseudonym of a device (kind = category), or of an id under the device's own epoch. */
function pn(
  k: Keyring,
  domain: Domain,
  kind: string,
  id: string,
  nowMs: number,
  category: Category = 'smart_plug',
): string {
  const value = k.pseudonym({ domain, category, deviceId: id, nowMs }, kind, id)
  if (value === undefined) throw new Error(`${domain}/${kind}/${id} at ${nowMs} is inside a rotation gap`)
  return value
}

const DAY = 86_400

describe('master key', () => {
  it('is created once with mode 0600 and read back unchanged', () => {
    const dir = tempDir()
    try {
      const first = loadOrCreateMasterKey(dir.path)
      const file = join(dir.path, MASTER_KEY_FILE)
      expect(first.length).toBe(32)
      expect(statSync(file).mode & 0o777).toBe(0o600)
      expect(loadOrCreateMasterKey(dir.path).equals(first)).toBe(true)
      expect(readFileSync(file).equals(first)).toBe(true)
    } finally {
      dir.remove()
    }
  })

  it('refuses a key that others can read, or of the wrong size, naming the file', () => {
    const dir = tempDir()
    try {
      loadOrCreateMasterKey(dir.path)
      const file = join(dir.path, MASTER_KEY_FILE)
      chmodSync(file, 0o644)
      expect(() => loadOrCreateMasterKey(dir.path)).toThrow(new RegExp(`${file}.*chmod 600`))
      writeFileSync(file, Buffer.alloc(5), { mode: 0o600 })
      chmodSync(file, 0o600)
      expect(() => loadOrCreateMasterKey(dir.path)).toThrow(/32 bytes/)
    } finally {
      dir.remove()
    }
  })
})

describe('pseudonyms', () => {
  const master = Buffer.alloc(32, 1)
  // Without gaps: these tests are about the pseudonyms themselves (the gaps have their own tests below).
  const ring = () =>
    new Keyring(
      master,
      new Map([
        ['svc', { epochSeconds: 0 }],
        ['ana', { epochSeconds: 30 * DAY, rotationGapSeconds: 0 }],
        ['3p', { epochSeconds: DAY, rotationGapSeconds: 0 }],
      ]),
    )

  it('are 26 base32 characters, stable within a domain and epoch, distinct across domains', () => {
    const k = ring()
    const now = Date.UTC(2026, 0, 1)
    const svc = pn(k, 'svc', 'smart_plug', 'tasmota_0329f7', now)
    expect(svc).toMatch(/^[a-z2-7]{26}$/)
    expect(pn(k, 'svc', 'smart_plug', 'tasmota_0329f7', now + 365 * DAY * 1000)).toBe(svc)
    expect(pn(k, 'ana', 'smart_plug', 'tasmota_0329f7', now)).not.toBe(svc)
    expect(pn(k, 'svc', 'camera', 'tasmota_0329f7', now)).not.toBe(svc)
    expect(pn(new Keyring(Buffer.alloc(32, 2), new Map()), 'svc', 'smart_plug', 'tasmota_0329f7', now)).not.toBe(svc)
  })

  it('svc keeps the pseudonyms of earlier versions (HKDF info `domain=svc;epoch=0`)', () => {
    // Computed by the previous keyring (before rotation schedules): an upgrade must not rename svc's devices.
    const key = hkdfSync('sha256', master, Buffer.from('veil/pseudonym/v1'), Buffer.from('domain=svc;epoch=0'), 32)
    const expected = base32(
      createHmac('sha256', Buffer.from(key))
        .update('smart_plug')
        .update('\u0000')
        .update('tasmota_0329f7')
        .digest()
        .subarray(0, 16),
    )
    expect(pn(ring(), 'svc', 'smart_plug', 'tasmota_0329f7', Date.UTC(2026, 0, 1))).toBe(expected)
  })

  it('rotate with the epoch of a rotating domain', () => {
    const k = ring()
    const t0 = Date.UTC(2026, 0, 1) + k.phaseMs('3p', 'gps_tracker', 'alice/phone')
    const a = pn(k, '3p', 'gps_tracker', 'alice/phone', t0, 'gps_tracker')
    expect(pn(k, '3p', 'gps_tracker', 'alice/phone', t0 + 1000, 'gps_tracker')).toBe(a)
    expect(pn(k, '3p', 'gps_tracker', 'alice/phone', t0 + DAY * 1000 - 1, 'gps_tracker')).toBe(a)
    expect(pn(k, '3p', 'gps_tracker', 'alice/phone', t0 + DAY * 1000, 'gps_tracker')).not.toBe(a)
  })

  it('P9: 100k ids give no collisions and about half the bits agree across domains', () => {
    const k = ring()
    const seen = new Set<string>()
    let agree = 0
    let bits = 0
    for (let i = 0; i < 100_000; i++) {
      const id = `dev-${i}`
      const a = pn(k, 'svc', 'smart_plug', id, 0)
      seen.add(a)
      if (i < 2000) {
        const b = pn(k, 'ana', 'smart_plug', id, 0)
        for (let j = 0; j < a.length; j++) {
          const x = parseInt(a[j] as string, 36) ^ parseInt(b[j] as string, 36)
          for (let bit = 0; bit < 5; bit++) {
            bits++
            if (((x >> bit) & 1) === 0) agree++
          }
        }
      }
    }
    expect(seen.size).toBe(100_000)
    expect(agree / bits).toBeGreaterThan(0.45)
    expect(agree / bits).toBeLessThan(0.55)
  })

  it('A1: a dictionary over the OUI finds a plain SHA-256 of a MAC but never the keyed pseudonym', () => {
    // 2^16 candidates of the fixture's OUI keep the test fast; the full 2^24 space behaves the same.
    const oui = '2c3ae8'
    const mac = `${oui}00beef`
    const plain = createHash('sha256').update(mac).digest('hex')
    const pseudonym = pn(ring(), 'svc', 'smart_plug', mac, 0)
    let plainHits = 0
    let keyedHits = 0
    for (let i = 0; i < 1 << 16; i++) {
      const candidate = `${oui}00${i.toString(16).padStart(4, '0')}`
      const hash = createHash('sha256').update(candidate).digest()
      if (hash.toString('hex') === plain) plainHits++
      if (base32(hash.subarray(0, 16)) === pseudonym) keyedHits++
      if (base32(createHash('sha256').update(`smart_plug\u0000${candidate}`).digest().subarray(0, 16)) === pseudonym)
        keyedHits++
    }
    expect(plainHits).toBe(1)
    expect(keyedHits).toBe(0)
  })

  it('the memo stays bounded however many ids or devices arrive', () => {
    const k = new Keyring(master, new Map([['ana', { epochSeconds: 3600 }]]), 100)
    for (let i = 0; i < 1000; i++) {
      pn(k, 'svc', 'camera', `cam-${i}`, 0)
      // Many ids under one device (hmac_pseudo's payload ids), and many rotating devices.
      k.pseudonym({ domain: 'svc', category: 'camera', deviceId: 'nvr', nowMs: 0 }, 'user', `user-${i}`)
      k.pseudonym({ domain: 'ana', category: 'camera', deviceId: `cam-${i}`, nowMs: 0 }, 'camera', `cam-${i}`)
      expect(k.memoSize).toBeLessThanOrEqual(100)
    }
    expect(pn(k, 'svc', 'camera', 'cam-5', 0)).toBe(pn(new Keyring(master, new Map()), 'svc', 'camera', 'cam-5', 0))
  })

  it("the memo answers per domain, kind and epoch, and forgets a device's old epoch", () => {
    const policy = new Map([['ana', { epochSeconds: 3600, rotationGapSeconds: 0 }]] as const)
    const k = new Keyring(master, policy)
    const fresh = (d: 'svc' | 'ana', kind: string, id: string, t: number) =>
      pn(new Keyring(master, policy), d, kind, id, t)
    const phase = k.phaseMs('ana', 'smart_plug', 'x')
    for (const [d, kind, id, t] of [
      ['svc', 'camera', 'x', 0],
      ['ana', 'camera', 'x', phase],
      ['svc', 'smart_plug', 'x', 0],
      ['ana', 'camera', 'x', phase + 3_600_000],
      ['ana', 'camera', 'x', phase],
    ] as const) {
      expect(pn(k, d, kind, id, t)).toBe(fresh(d, kind, id, t))
      expect(pn(k, d, kind, id, t)).toBe(fresh(d, kind, id, t))
    }
    expect(pn(k, 'ana', 'camera', 'x', phase)).not.toBe(pn(k, 'ana', 'camera', 'x', phase + 3_600_000))
    // Two devices (svc's x and ana's x), svc's two kinds and ana's one entry of its latest epoch.
    expect(k.memoSize).toBe(5)
  })
})
