// The subject registry over a real subjects.json: what a CLI change writes is what the next open reads, the file is
// private and replaced whole, and every damage is named by file, JSON path and problem.
import { chmodSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { builtinProfiles } from '../../../filters/profiles/index.ts'
import { tempDir } from '../../../test/helpers/gateway.ts'
import { VeilError } from '../errors.ts'
import { HOUSEHOLD } from './model.ts'
import { SUBJECTS_FILE, SubjectRegistry, parseDeviceRef } from './registry.ts'

const dirs: { remove(): void }[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) d.remove()
})

function dataDir(): string {
  const dir = tempDir('veil-subjects-')
  dirs.push(dir)
  return dir.path
}

const ref = (text: string) => {
  const r = parseDeviceRef(text, builtinProfiles)
  if (typeof r === 'string') throw new Error(r)
  return r
}

function errorOf(run: () => unknown): VeilError {
  try {
    run()
  } catch (err) {
    if (err instanceof VeilError) return err
    throw err
  }
  throw new Error('expected a VeilError')
}

function writeRegistry(dir: string, body: unknown): string {
  const file = join(dir, SUBJECTS_FILE)
  writeFileSync(file, typeof body === 'string' ? body : JSON.stringify(body), { mode: 0o600 })
  return file
}

const alice = {
  name: 'alice',
  id: '0123456789abcdef',
  devices: ['owntracks:alice/phone'],
  minor: false,
  created: '2026-01-01T00:00:00.000Z',
}
const bob = {
  name: 'bob',
  id: 'fedcba9876543210',
  devices: ['miscale:bob'],
  minor: true,
  regions: ['EU'],
  created: '2026-01-01T00:00:00.000Z',
}

describe('parseDeviceRef', () => {
  it('reads PROFILE:ID with the id normalised as the validate stage normalises it', () => {
    expect(parseDeviceRef('owntracks:Alice/Phone', builtinProfiles)).toEqual({
      profile: 'owntracks',
      deviceId: 'alice/phone',
    })
    expect(parseDeviceRef('tasmota: tasmota_CA11A7 ', builtinProfiles)).toEqual({
      profile: 'tasmota',
      deviceId: 'tasmota_ca11a7',
    })
    // Sparkplug B ids are case-sensitive by specification; BLE MACs have one canonical form.
    expect(parseDeviceRef('sparkplug:Plant1/Node', builtinProfiles)).toEqual({
      profile: 'sparkplug',
      deviceId: 'Plant1/Node',
    })
    expect(parseDeviceRef('omg_scale:AA:BB:CC:DD:EE:FF', builtinProfiles)).toEqual({
      profile: 'omg_scale',
      deviceId: 'aabbccddeeff',
    })
  })

  it('names the problem of a reference that is none', () => {
    expect(parseDeviceRef('foo:x', builtinProfiles)).toMatch(/^unknown profile "foo"; known: .*tasmota.*owntracks/)
    expect(parseDeviceRef('owntracks', builtinProfiles)).toMatch(/not PROFILE:DEVICE_ID/)
    expect(parseDeviceRef(':x', builtinProfiles)).toMatch(/not PROFILE:DEVICE_ID/)
    expect(parseDeviceRef('owntracks:  ', builtinProfiles)).toMatch(/empty device id/)
    expect(parseDeviceRef('owntracks:alice/#', builtinProfiles)).toMatch(/wildcards/)
  })
})

describe('SubjectRegistry', () => {
  it('opens a missing file as empty, with the household implicit', () => {
    const registry = SubjectRegistry.open(dataDir(), builtinProfiles)
    expect(registry.list()).toEqual([])
    expect(registry.get(HOUSEHOLD)).toMatchObject({ name: HOUSEHOLD, id: HOUSEHOLD, minor: false, regions: undefined })
    expect(registry.subjectOf(ref('owntracks:alice/phone')).name).toBe(HOUSEHOLD)
  })

  it('adds, saves atomically in a 0600 file, reads back and removes', () => {
    const dir = dataDir()
    const registry = SubjectRegistry.open(dir, builtinProfiles)
    const added = registry.add({
      name: 'alice',
      devices: [ref('owntracks:alice/phone'), ref('miscale:alice')],
      minor: false,
      regions: ['EU', 'EU', 'US'],
    })
    expect(added.id).toMatch(/^[0-9a-f]{16}$/)
    expect(added.regions).toEqual(['EU', 'US'])
    const file = join(dir, SUBJECTS_FILE)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    // No temporary file is left behind.
    expect(readdirSync(dir)).toEqual([SUBJECTS_FILE])
    const stored = JSON.parse(readFileSync(file, 'utf8'))
    expect(stored).toEqual({
      version: 1,
      subjects: [
        {
          name: 'alice',
          id: added.id,
          devices: ['owntracks:alice/phone', 'miscale:alice'],
          minor: false,
          regions: ['EU', 'US'],
          created: added.created,
        },
      ],
    })

    const again = SubjectRegistry.open(dir, builtinProfiles)
    expect(again.get('alice')).toEqual(added)
    expect(again.subjectOf(ref('owntracks:Alice/Phone')).id).toBe(added.id)
    const kid = again.add({ name: 'kid', devices: [ref('owntracks:kid/phone')], minor: true })
    expect(kid.id).not.toBe(added.id)
    expect(kid.regions).toBeUndefined()
    expect(again.list().map((s) => s.name)).toEqual(['alice', 'kid'])

    expect(again.remove('alice')).toBe(true)
    expect(again.remove('alice')).toBe(false)
    expect(again.subjectOf(ref('owntracks:alice/phone')).name).toBe(HOUSEHOLD)
    expect(
      SubjectRegistry.open(dir, builtinProfiles)
        .list()
        .map((s) => s.name),
    ).toEqual(['kid'])
  })

  it('replaces a subject keeping its id and creation time', () => {
    const registry = SubjectRegistry.open(dataDir(), builtinProfiles)
    const first = registry.add({ name: 'alice', devices: [ref('owntracks:alice/phone')], minor: false })
    const second = registry.add(
      { name: 'alice', devices: [ref('owntracks:alice/phone'), ref('miscale:alice')], minor: false, regions: ['EU'] },
      { replace: true },
    )
    expect(second).toMatchObject({ id: first.id, created: first.created, regions: ['EU'] })
    expect(second.devices).toHaveLength(2)
  })

  it('refuses the household, bad or taken names, claimed devices and bad regions, leaving the file as it was', () => {
    const dir = dataDir()
    const registry = SubjectRegistry.open(dir, builtinProfiles)
    registry.add({ name: 'alice', devices: [ref('owntracks:alice/phone')], minor: false })
    const file = join(dir, SUBJECTS_FILE)
    const before = readFileSync(file)
    const phone = [ref('owntracks:alice/phone')]
    const other = [ref('miscale:x')]
    const cases: [() => unknown, RegExp][] = [
      [() => registry.add({ name: HOUSEHOLD, devices: other, minor: false }), /household is reserved/],
      [() => registry.remove(HOUSEHOLD), /household is reserved/],
      [() => registry.add({ name: 'Alice', devices: other, minor: false }), /not a subject name/],
      [() => registry.add({ name: 'alice', devices: other, minor: false }), /already exists/],
      [() => registry.add({ name: 'bob', devices: other, minor: false }, { replace: true }), /no subject bob/],
      [
        () => registry.add({ name: 'bob', devices: phone, minor: false }),
        /owntracks:alice\/phone already belongs to alice/,
      ],
      [() => registry.add({ name: 'bob', devices: [...other, ...other], minor: false }), /named twice/],
      [() => registry.add({ name: 'bob', devices: other, minor: false, regions: ['eu'] }), /not a region code/],
      [() => registry.add({ name: 'bob', devices: other, minor: false, regions: [] }), /at least one region/],
    ]
    for (const [run, message] of cases) {
      const err = errorOf(run)
      expect(err.code).toBe('VEIL_ERR_USAGE')
      expect(err.message).toMatch(message)
    }
    expect(readFileSync(file).equals(before)).toBe(true)
    expect(registry.list().map((s) => s.name)).toEqual(['alice'])
  })

  it('names the file, the JSON path and the problem of a damaged registry', () => {
    const dir = dataDir()
    const cases: [unknown, string][] = [
      ['{"version":1,', '/: not JSON'],
      [[], '/: expected an object'],
      [{ version: 2, subjects: [] }, '/version: expected 1'],
      [{ version: 1 }, '/subjects: expected an array'],
      [{ version: 1, subjects: [], extra: 1 }, '/extra: unknown property'],
      [
        { version: 1, subjects: [alice, { ...bob, devices: ['foo:x'] }] },
        '/subjects/1/devices/0: unknown profile "foo"; known: ',
      ],
      [
        { version: 1, subjects: [alice, { ...bob, devices: ['miscale:'] }] },
        '/subjects/1/devices/0: "miscale:" has an empty device id',
      ],
      [
        { version: 1, subjects: [alice, { ...bob, devices: ['owntracks:Alice/Phone'] }] },
        '/subjects/1/devices/0: owntracks:alice/phone is claimed by both alice and bob',
      ],
      [{ version: 1, subjects: [alice, { ...alice, id: bob.id }] }, '/subjects/1/name: alice is listed twice'],
      [{ version: 1, subjects: [alice, { ...bob, id: alice.id }] }, '/subjects/1/id: the same id as alice'],
      [{ version: 1, subjects: [{ ...alice, name: 'Alice' }] }, '/subjects/0/name: must match'],
      [{ version: 1, subjects: [{ ...alice, name: HOUSEHOLD }] }, '/subjects/0/name: household is reserved'],
      [{ version: 1, subjects: [{ ...alice, id: 'x' }] }, '/subjects/0/id: must be 16 lower-case hex digits'],
      [{ version: 1, subjects: [{ ...alice, minor: 'no' }] }, '/subjects/0/minor: expected true or false'],
      [{ version: 1, subjects: [{ ...bob, regions: ['EU', 'eu'] }] }, '/subjects/0/regions/1: must match'],
      [{ version: 1, subjects: [{ ...bob, regions: [] }] }, '/subjects/0/regions: expected a non-empty array'],
      [
        { version: 1, subjects: [{ ...alice, created: 'yesterday' }] },
        '/subjects/0/created: expected an ISO 8601 time',
      ],
      [{ version: 1, subjects: [{ ...alice, nickname: 'al' }] }, '/subjects/0/nickname: unknown property'],
    ]
    for (const [body, message] of cases) {
      const file = writeRegistry(dir, body)
      const err = errorOf(() => SubjectRegistry.open(dir, builtinProfiles))
      expect(err.code).toBe('VEIL_ERR_CONFIG')
      expect(err.exitCode).toBe(2)
      expect(err.message).toContain(`${file}: ${message}`)
    }
  })

  it('refuses a registry others may read, and keeps the last good state when a reload fails', () => {
    const dir = dataDir()
    const file = writeRegistry(dir, { version: 1, subjects: [alice] })
    const registry = SubjectRegistry.open(dir, builtinProfiles)
    writeRegistry(dir, { version: 1, subjects: [alice, { ...bob, devices: ['owntracks:alice/phone'] }] })
    expect(() => registry.reload()).toThrow(/claimed by both alice and bob/)
    expect(registry.list().map((s) => s.name)).toEqual(['alice'])
    chmodSync(file, 0o644)
    expect(errorOf(() => SubjectRegistry.open(dir, builtinProfiles)).message).toMatch(
      /readable by group or others \(mode 644\)/,
    )
  })
})
