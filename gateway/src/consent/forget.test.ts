import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { builtinProfiles } from '../../../filters/profiles/index.ts'
import { tempDir } from '../../../test/helpers/gateway.ts'
import { SubjectKeys } from '../keys/subject-keys.ts'
import { ERASURE_JOURNAL, finishErasures, forgetSubject } from './forget.ts'
import { SubjectRegistry } from './registry.ts'

const MASTER = Buffer.alloc(32, 5)
const dirs: { remove(): void }[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) d.remove()
})

function setup() {
  const dir = tempDir('veil-forget-')
  dirs.push(dir)
  const registry = SubjectRegistry.open(dir.path, builtinProfiles)
  const alice = registry.add({ name: 'alice', devices: [{ profile: 'tasmota', deviceId: 'plug_a' }], minor: false })
  const bob = registry.add({ name: 'bob', devices: [{ profile: 'tasmota', deviceId: 'plug_b' }], minor: false })
  const keys = SubjectKeys.open(dir.path, MASTER)
  keys.keyFor(alice.id)
  keys.keyFor(bob.id)
  return { dir: dir.path, registry, keys, alice, bob }
}

describe('forgetSubject', () => {
  it("destroys the subject's data key and removes it, leaves others, and drops the journal entry", () => {
    const { dir, registry, keys, alice, bob } = setup()
    const result = forgetSubject(dir, alice, { keys, registry })
    expect(result.keysShredded).toBe(true)
    expect(SubjectKeys.open(dir, MASTER).has(alice.id)).toBe(false)
    expect(SubjectKeys.open(dir, MASTER).has(bob.id)).toBe(true)
    expect(SubjectRegistry.open(dir, builtinProfiles).get('alice')).toBeUndefined()
    expect(existsSync(join(dir, ERASURE_JOURNAL))).toBe(false)
  })

  it('a journal entry left behind (a crash, or the CLI) is finished by the next finishErasures, which can run twice', () => {
    const { dir, registry, keys, alice } = setup()
    forgetSubject(dir, alice, { keys, registry }, { keepJournal: true })
    const journal = join(dir, ERASURE_JOURNAL)
    expect(statSync(journal).mode & 0o777).toBe(0o600)
    expect(JSON.parse(readFileSync(journal, 'utf8')).pending).toHaveLength(1)
    const again = SubjectKeys.open(dir, MASTER)
    expect(finishErasures(dir, { keys: again, registry: SubjectRegistry.open(dir, builtinProfiles) })).toEqual([
      alice.id,
    ])
    expect(finishErasures(dir, { keys: again, registry: SubjectRegistry.open(dir, builtinProfiles) })).toEqual([])
    expect(readdirSync(dir)).not.toContain(ERASURE_JOURNAL)
  })

  it('refuses the household', () => {
    const { dir, registry, keys } = setup()
    const household = registry.get('household')
    if (household === undefined) throw new Error('no household')
    expect(() => forgetSubject(dir, household, { keys, registry })).toThrow(/household cannot be forgotten/)
  })
})
