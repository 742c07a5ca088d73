import { randomBytes } from 'node:crypto'
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { SUBJECT_KEYS_FILE, SubjectKeys } from './subject-keys.ts'

const ALICE = '3f9c0a7d12e4b605'
const BOB = 'b70e6a21c9d3f048'
const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'veil-subject-keys-'))
  dirs.push(d)
  return d
}

/** Every encoding in which a key could have leaked into the file: hex (both cases) and base64 at any alignment. */
function encodingsOf(key: Buffer): string[] {
  const out = [key.toString('hex'), key.toString('hex').toUpperCase(), key.toString('base64url')]
  for (let k = 0; k < 3; k++) {
    const enc = Buffer.concat([Buffer.alloc(k), key]).toString('base64')
    out.push(enc.slice(Math.ceil(k / 3) * 4, Math.floor((k + key.length) / 3) * 4))
  }
  return out
}

describe('subject keys', () => {
  it('creates one key per subject on first use, in a 0600 file that holds no key in the clear, and survives a restart', () => {
    const dir = dataDir()
    const master = randomBytes(32)
    const keys = SubjectKeys.open(dir, master)
    const alice = keys.keyFor(ALICE)
    expect(alice.key.length).toBe(32)
    expect(keys.keyFor(ALICE)).toEqual(alice)
    const bob = keys.keyFor(BOB)
    const house = keys.keyFor('household')
    expect(bob.key.equals(alice.key)).toBe(false)
    const file = join(dir, SUBJECT_KEYS_FILE)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const bytes = readFileSync(file)
    const text = bytes.toString('latin1')
    for (const k of [alice.key, bob.key, house.key]) {
      expect(bytes.includes(k)).toBe(false)
      for (const e of encodingsOf(k)) expect(text.includes(e)).toBe(false)
    }
    const again = SubjectKeys.open(dir, master)
    expect(again.size).toBe(3)
    expect(again.keyById(ALICE, alice.id)?.key.equals(alice.key)).toBe(true)
    expect(again.keyById(BOB, bob.id)?.key.equals(bob.key)).toBe(true)
    expect(again.keyById(ALICE, alice.id + 1)).toBeUndefined()
  })

  it('refuses an id that is neither a subject id nor the household', () => {
    const keys = SubjectKeys.open(dataDir(), randomBytes(32))
    expect(() => keys.keyFor('alice')).toThrow(/not a subject id/)
    expect(keys.size).toBe(0)
  })

  it('forget deletes the key on disk before it returns; another process forgetting is honoured, never written back', () => {
    const dir = dataDir()
    const master = randomBytes(32)
    const gateway = SubjectKeys.open(dir, master)
    const alice = gateway.keyFor(ALICE)
    gateway.keyFor(BOB)
    expect(gateway.forget(ALICE)).toBe(true)
    expect(gateway.keyById(ALICE, alice.id)).toBeUndefined()
    expect(gateway.forget(ALICE)).toBe(false)
    expect(SubjectKeys.open(dir, master).has(ALICE)).toBe(false)
    expect(readFileSync(join(dir, SUBJECT_KEYS_FILE), 'utf8')).not.toContain(ALICE)

    // `veil subject forget` in another process, while the gateway holds bob's key in memory.
    const bob = gateway.keyFor(BOB)
    expect(SubjectKeys.open(dir, master).forget(BOB)).toBe(true)
    gateway.keyFor('household')
    expect(SubjectKeys.open(dir, master).has(BOB)).toBe(false)
    expect(gateway.keyById(BOB, bob.id)).toBeUndefined()
    // A new key for a subject forgotten earlier is a new key: the old frames stay shut.
    const alice2 = gateway.keyFor(ALICE)
    expect(alice2.id === alice.id && alice2.key.equals(alice.key)).toBe(false)
    expect(gateway.keyById(ALICE, alice.id)).toBeUndefined()
  })

  it('reload drops from memory a key forgotten by another process', () => {
    const dir = dataDir()
    const master = randomBytes(32)
    const gateway = SubjectKeys.open(dir, master)
    const alice = gateway.keyFor(ALICE)
    SubjectKeys.open(dir, master).forget(ALICE)
    expect(gateway.keyById(ALICE, alice.id)).toBeDefined()
    gateway.reload()
    expect(gateway.keyById(ALICE, alice.id)).toBeUndefined()
  })

  it('a damaged key file stops the open, naming the file and the entry', () => {
    const dir = dataDir()
    const master = randomBytes(32)
    const keys = SubjectKeys.open(dir, master)
    keys.keyFor(ALICE)
    keys.keyFor(BOB)
    const file = join(dir, SUBJECT_KEYS_FILE)
    const good = readFileSync(file, 'utf8')
    const doc = JSON.parse(good) as { keys: { subject: string; id: number; wrapped: string }[] }
    const cases: [string, RegExp][] = []
    const variant = (edit: (d: typeof doc) => void): string => {
      const d = structuredClone(doc)
      edit(d)
      return JSON.stringify(d)
    }
    const flip = (s: string): string => {
      const b = Buffer.from(s, 'base64')
      b[20] = (b[20] as number) ^ 1
      return b.toString('base64')
    }
    cases.push([good.slice(0, 40), /not JSON/])
    cases.push([variant((d) => Object.assign(d, { version: 2 })), /version/])
    cases.push([
      variant((d) => {
        ;(d.keys[1] as { wrapped: string }).wrapped = flip((d.keys[1] as { wrapped: string }).wrapped)
      }),
      new RegExp(`keys\\[1\\] \\(subject ${BOB}\\): the wrapped key does not open`),
    ])
    cases.push([
      variant((d) => {
        ;(d.keys[0] as { id: number }).id += 1
      }),
      new RegExp(`keys\\[0\\] \\(subject ${ALICE}\\): the wrapped key does not open`),
    ])
    cases.push([
      variant((d) => {
        ;(d.keys[0] as { subject: string }).subject = BOB
      }),
      /keys\[0\] \(subject b70e6a21c9d3f048\): the wrapped key does not open/,
    ])
    cases.push([
      variant((d) => {
        ;(d.keys[1] as { subject: string }).subject = 'bob'
      }),
      /keys\[1\]: subject/,
    ])
    cases.push([
      variant((d) => {
        ;(d.keys[0] as { wrapped: string }).wrapped = 'AAAA'
      }),
      /keys\[0\] \(subject 3f9c0a7d12e4b605\): the wrapped key is not base64 of the expected length/,
    ])
    for (const [text, problem] of cases) {
      writeFileSync(file, text, { mode: 0o600 })
      let message = ''
      try {
        SubjectKeys.open(dir, master)
      } catch (err) {
        message = (err as Error).message
      }
      expect(message, text).toContain(file)
      expect(message, text).toMatch(problem)
    }
    writeFileSync(file, good)
    expect(() => SubjectKeys.open(dir, randomBytes(32))).toThrow(/keys\[0\].*another master\.key/)
    chmodSync(file, 0o644)
    expect(() => SubjectKeys.open(dir, master)).toThrow(/readable by group or others/)
  })
})
