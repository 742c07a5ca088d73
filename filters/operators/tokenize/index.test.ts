import { createHash } from 'node:crypto'
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { Domain } from '#veil/sdk'
import { compileEnv, opContext } from '../testing.ts'
import tokenize, { detokenize, eraseFromVault, forgetVaults, vaultFile } from './index.ts'

const made: string[] = []
const freshDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-vault-'))
  made.push(dir)
  return dir
}
afterAll(() => {
  forgetVaults()
  for (const dir of made) rmSync(dir, { recursive: true, force: true })
})

function tokenizer(dataDir: string, paths: string[] = ['email'], domain: Domain = 'svc') {
  const fn = tokenize.compile({ paths }, compileEnv({ category: 'body_scale', domain, dataDir }))
  return (doc: unknown): unknown => fn(doc, opContext({ category: 'body_scale', domain }))
}
const tokenOf = (out: unknown): string => (out as { email: string }).email
const rowsOf = (dataDir: string, domain: Domain = 'svc'): unknown[] =>
  readFileSync(vaultFile(dataDir, domain), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown)

describe('tokenize', () => {
  it('replaces a value with a random token; the same value (canonicalised) gets the same token', () => {
    const t = tokenizer(freshDir())
    const a = tokenOf(t({ email: 'Ana.Silva@example.org' }))
    expect(a).toMatch(/^tok_[a-z2-7]{26}$/)
    expect(tokenOf(t({ email: ' ana.silva@example.org' }))).toBe(a)
    expect(tokenOf(t({ email: 'bob@example.org' }))).not.toBe(a)
  })

  it('keeps the same token across a restart (fresh process state, same data directory)', () => {
    const dir = freshDir()
    const before = tokenOf(tokenizer(dir)({ email: 'ana@example.org' }))
    forgetVaults()
    const after = tokenizer(dir)
    expect(tokenOf(after({ email: 'ana@example.org' }))).toBe(before)
    expect(rowsOf(dir)).toHaveLength(1)
    expect(detokenize(dir, 'svc', before)).toBe('ana@example.org')
  })

  it('shares one vault between operators of the same domain, and separates domains', () => {
    const dir = freshDir()
    const a = tokenizer(dir, ['email'])
    const b = tokenizer(dir, ['contact.email'])
    const token = tokenOf(a({ email: 'ana@example.org' }))
    expect(b({ contact: { email: 'ana@example.org' } })).toEqual({ contact: { email: token } })
    const ana = tokenizer(dir, ['email'], 'ana')
    expect(tokenOf(ana({ email: 'ana@example.org' }))).not.toBe(token)
    expect(existsSync(vaultFile(dir, 'ana'))).toBe(true)
  })

  it('the token reveals nothing: no substring of the value, no hash of it, unrelated for similar values', () => {
    const t = tokenizer(freshDir(), ['email', 'phone'])
    const values = ['ana.silva@example.org', 'ana.silvb@example.org', '+4915112345678', '+4915112345679', '13812345678']
    for (const value of values) {
      const out = JSON.stringify(t({ email: value, phone: value }))
      for (let i = 0; i + 6 <= value.length; i++) expect(out.includes(value.slice(i, i + 6))).toBe(false)
      const sha = createHash('sha256').update(value).digest()
      expect(out.includes(sha.toString('hex').slice(0, 8))).toBe(false)
      expect(out.includes(sha.toString('base64url').slice(0, 8))).toBe(false)
    }
    const a = tokenOf(t({ email: values[0] }))
    const b = tokenOf(t({ email: values[1] }))
    let samePositions = 0
    for (let i = 4; i < a.length; i++) if (a[i] === b[i]) samePositions++
    // Independent tokens agree on about 26/32 ≈ 0.8 positions; a value-derived scheme would agree on many more.
    expect(samePositions).toBeLessThan(6)
  })

  it('maps arrays and removes what cannot be tokenised', () => {
    const t = tokenizer(freshDir(), ['users'])
    const out = t({ users: ['ana', 'bob', null, { x: 1 }, 'ana'] }) as { users: string[] }
    expect(out.users).toHaveLength(3)
    expect(out.users[0]).toBe(out.users[2])
    for (const bad of [null, true, { x: 1 }, '', '  ', 'x'.repeat(300)])
      expect(tokenizer(freshDir())({ email: bad, n: 1 })).toEqual({ n: 1 })
  })

  it('P11: erasure removes the row; the value then gets a new, unrelated token', () => {
    const dir = freshDir()
    const t = tokenizer(dir)
    const ana = tokenOf(t({ email: 'ana@example.org' }))
    const bob = tokenOf(t({ email: 'bob@example.org' }))
    expect(eraseFromVault(dir, 'svc', 'ANA@example.org ')).toBe(1)
    const text = readFileSync(vaultFile(dir, 'svc'), 'utf8')
    expect(text.includes('ana@example.org')).toBe(false)
    expect(text.includes(ana)).toBe(false)
    expect(rowsOf(dir)).toEqual([{ token: bob, value: 'bob@example.org' }])
    expect(detokenize(dir, 'svc', ana)).toBeUndefined()
    expect(tokenOf(t({ email: 'bob@example.org' }))).toBe(bob)
    const again = tokenOf(t({ email: 'ana@example.org' }))
    expect(again).not.toBe(ana)
    expect(eraseFromVault(dir, 'svc', 'nobody@example.org')).toBe(0)
  })

  it('the vault file is 0600 in a 0700 directory', () => {
    const dir = freshDir()
    tokenizer(dir)({ email: 'ana@example.org' })
    expect(statSync(vaultFile(dir, 'svc')).mode & 0o777).toBe(0o600)
    expect(statSync(join(dir, 'vault')).mode & 0o777).toBe(0o700)
    eraseFromVault(dir, 'svc', 'ana@example.org')
    expect(statSync(vaultFile(dir, 'svc')).mode & 0o777).toBe(0o600)
  })

  it('repairs a torn last line and refuses a damaged vault', () => {
    const dir = freshDir()
    const token = tokenOf(tokenizer(dir)({ email: 'ana@example.org' }))
    appendFileSync(vaultFile(dir, 'svc'), '{"token":"tok_x","val')
    forgetVaults()
    const t = tokenizer(dir)
    expect(tokenOf(t({ email: 'ana@example.org' }))).toBe(token)
    tokenOf(t({ email: 'bob@example.org' }))
    expect(rowsOf(dir)).toHaveLength(2)
    appendFileSync(vaultFile(dir, 'svc'), 'garbage\n{"token":"tok_y","value":"z"}\n')
    forgetVaults()
    expect(() => tokenizer(dir)({ email: 'ana@example.org' })).toThrow(/damaged/)
  })
})
