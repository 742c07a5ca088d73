import { statSync, writeFileSync, chmodSync, readFileSync } from 'node:fs'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { builtinProfiles } from '../../../filters/profiles/index.ts'
import { Classifier } from '../streams/classifier.ts'
import { AccessControl, commandFilters, covers, publishFilters, type Principal } from './access.ts'
import { ConnectionGuard, DEFAULT_CONNECTION_LIMITS } from './guard.ts'
import { CREDENTIALS_FILE, CredentialStore, hashPassword, verifyPassword } from './store.ts'

const profile = (name: string) => {
  const p = builtinProfiles.find((d) => d.name === name)
  if (p === undefined) throw new Error(name)
  return p
}
const access = new AccessControl(builtinProfiles, new Classifier(builtinProfiles), ['tele/+/SENSOR'])
const device = (name: string, prof: string): Principal => {
  const p = access.principalOf({
    name,
    role: 'device',
    profile: prof,
    password: { N: 1, r: 1, p: 1, keylen: 1, salt: '', hash: '' },
    created: '',
  })
  if (p === undefined) throw new Error('no principal')
  return p
}

describe('covers: one MQTT filter inside another', () => {
  it.each([
    ['cmnd/a/#', 'cmnd/a/POWER', true],
    ['cmnd/a/#', 'cmnd/a', true],
    ['cmnd/a/#', 'cmnd/a/#', true],
    ['cmnd/a/#', 'cmnd/+/#', false],
    ['cmnd/a/#', 'cmnd/b/POWER', false],
    ['cmnd/a/#', '#', false],
    ['veil/svc/#', 'veil/svc/+/+/sensor', true],
    ['veil/svc/#', 'veil/+/smart_plug/#', false],
    ['veil/#', '+/#', false],
    ['+/rpc', '$SYS/rpc', false],
    ['#', '$SYS/x', false],
    ['$SYS/#', '$SYS/#', true],
    ['a/+/c', 'a/+/c', true],
    ['a/+/c', 'a/b/c', true],
    ['a/+/c', 'a/#', false],
    ['a/b', 'a/b/c', false],
  ])('%s covers %s: %s', (allowed, filter, expected) => {
    expect(covers(allowed, filter)).toBe(expected)
  })
})

describe('topics a device account derives from its profile', () => {
  it('binds {id} to the account: Tasmota, OwnTracks (two levels), Shelly gen2 (id first)', () => {
    expect(publishFilters(profile('tasmota'), 'tasmota_A').sort()).toEqual([
      'stat/tasmota_A/#',
      'tasmota/discovery/tasmota_A/#',
      'tele/tasmota_A/#',
    ])
    expect(commandFilters(profile('tasmota'), 'tasmota_A')).toEqual(['cmnd/tasmota_A/#'])
    expect(publishFilters(profile('owntracks'), 'alice/phone').sort()).toEqual([
      'owntracks/alice/phone',
      'owntracks/alice/phone/#',
    ])
    expect(commandFilters(profile('owntracks'), 'alice/phone')).toEqual(['owntracks/alice/phone/cmd'])
    expect(publishFilters(profile('shelly_gen2'), 'shellyplus1pm-a8032ab1')).toEqual(['shellyplus1pm-a8032ab1/#'])
  })

  it('gives a hub (Frigate) its fixed topics and + for the cameras it publishes for', () => {
    expect(publishFilters(profile('frigate'), 'nvr').sort()).toEqual([
      'frigate/+/#',
      'frigate/available',
      'frigate/events',
      'frigate/reviews',
      'frigate/stats',
      'frigate/tracked_object_update',
      'frigate/triggers',
    ])
  })

  it("refuses ids that do not fit, that hold wildcards, or that would take another profile's root", () => {
    expect(access.deviceProblem('alice', 'owntracks')).toMatch(/does not fit/)
    expect(access.deviceProblem('a/#', 'tasmota')).toMatch(/\+, #/)
    expect(access.deviceProblem('$SYS', 'tasmota')).toMatch(/\$/)
    expect(access.deviceProblem('tele', 'shelly_gen2')).toMatch(/root of profile tasmota/)
    expect(access.deviceProblem('x', 'nosuch')).toMatch(/unknown profile/)
    expect(access.deviceProblem('tasmota_A', 'tasmota')).toBeUndefined()
  })
})

describe('decisions per role', () => {
  const plug = device('tasmota_A', 'tasmota')
  const nvr = device('nvr', 'frigate')
  const consumer: Principal = { role: 'consumer', domain: 'svc' }
  const local: Principal = { role: 'local' }
  const admin: Principal = { role: 'admin' }

  it('a device publishes its own topics to the pipeline and nothing else', () => {
    expect(access.decidePublish(plug, 'tele/tasmota_A/SENSOR')).toBe('pipeline')
    expect(access.decidePublish(plug, 'tele/tasmota_A/UNKNOWN_THING')).toBe('pipeline')
    expect(access.decidePublish(plug, 'tele/tasmota_B/SENSOR')).toBe('refuse')
    expect(access.decidePublish(plug, 'owntracks/a/b')).toBe('refuse')
    expect(access.decidePublish(plug, 'cmnd/tasmota_A/POWER')).toBe('refuse')
    expect(access.decidePublish(nvr, 'frigate/front/motion')).toBe('pipeline')
    expect(access.decidePublish(nvr, 'frigate/events')).toBe('pipeline')
    expect(access.decidePublish(nvr, 'tele/tasmota_A/SENSOR')).toBe('refuse')
  })

  it("a multi-channel device publishes its channels (devices <id>/<n>), never another device's", () => {
    const gen1 = device('shelly25-AABB', 'shelly_gen1')
    expect(access.decidePublish(gen1, 'shellies/shelly25-AABB/relay/1/power')).toBe('pipeline')
    expect(access.decidePublish(gen1, 'shellies/shelly25-AABB/emeter/2/total')).toBe('pipeline')
    expect(access.decidePublish(gen1, 'shellies/shelly25-AABBX/relay/1/power')).toBe('refuse')
    const gen2 = device('shellyplus2pm-aabb', 'shelly_gen2')
    expect(access.decidePublish(gen2, 'shellyplus2pm-aabb/status/switch:1')).toBe('pipeline')
    expect(access.decidePublish(gen2, 'shellyplus2pm-aabbc/status/switch:1')).toBe('refuse')
  })

  it('consumers never publish; local clients publish commands only; admins commands or telemetry', () => {
    expect(access.decidePublish(consumer, 'tele/tasmota_A/SENSOR')).toBe('refuse')
    expect(access.decidePublish(local, 'cmnd/tasmota_A/POWER')).toBe('command')
    expect(access.decidePublish(local, 'tele/tasmota_A/SENSOR')).toBe('refuse')
    expect(access.decidePublish(admin, 'tele/tasmota_A/SENSOR')).toBe('pipeline')
    expect(access.decidePublish(admin, 'zigbee2mqtt/plug/set')).toBe('command')
  })

  it('subscriptions: devices their commands, consumers their domain, local veil/ and configured raw topics', () => {
    for (const f of ['#', '+/#', '$SYS/#', 'veil/#', 'cmnd/+/#', 'cmnd/tasmota_B/#', 'tele/tasmota_A/SENSOR'])
      expect(access.maySubscribe(plug, f), f).toBe(false)
    expect(access.maySubscribe(plug, 'cmnd/tasmota_A/#')).toBe(true)
    expect(access.maySubscribe(plug, 'cmnd/tasmota_A/POWER')).toBe(true)
    for (const f of ['#', '+/#', '$SYS/#', 'veil/#', 'veil/ana/#', 'veil/+/smart_plug/#', 'tele/+/SENSOR'])
      expect(access.maySubscribe(consumer, f), f).toBe(false)
    expect(access.maySubscribe(consumer, 'veil/svc/#')).toBe(true)
    expect(access.maySubscribe(local, 'tele/+/SENSOR')).toBe(true)
    expect(access.maySubscribe(local, 'tele/#')).toBe(false)
    expect(access.maySubscribe(local, '$SYS/#')).toBe(false)
    expect(access.maySubscribe(admin, '$SYS/#')).toBe(true)
    expect(access.maySubscribe(admin, '#')).toBe(false)
  })

  it('raw deliveries: commands from local to the addressed device only; raw telemetry to local only where configured', () => {
    const other = device('tasmota_B', 'tasmota')
    expect(access.mayReceiveRaw(plug, local, 'cmnd/tasmota_A/POWER')).toBe(true)
    expect(access.mayReceiveRaw(other, local, 'cmnd/tasmota_A/POWER')).toBe(false)
    expect(access.mayReceiveRaw(plug, other, 'cmnd/tasmota_A/POWER')).toBe(false)
    expect(access.mayReceiveRaw(local, plug, 'tele/tasmota_A/SENSOR')).toBe(true)
    expect(access.mayReceiveRaw(local, plug, 'tele/tasmota_A/STATE')).toBe(false)
    // A refused publish (another device's topic) reaches nobody.
    expect(access.mayReceiveRaw(local, other, 'tele/tasmota_A/SENSOR')).toBe(false)
    expect(access.mayReceiveRaw(consumer, plug, 'tele/tasmota_A/SENSOR')).toBe(false)
  })

  it('refuses a raw-read configuration that would open veil/ or $ topics', () => {
    for (const bad of ['#', '+/#', 'veil/#', '$SYS/#'])
      expect(() => new AccessControl(builtinProfiles, new Classifier(builtinProfiles), [bad])).toThrow(/localRawTopics/)
  })
})

describe('credential store', () => {
  it('keeps scrypt hashes in a 0600 file, verifies in constant time, and never stores the password', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'veil-store-'))
    try {
      const store = CredentialStore.open(dir)
      const password = await store.add(
        { name: 'tasmota_A', role: 'device', profile: 'tasmota' },
        { scrypt: { N: 1024 } },
      )
      expect(password).toMatch(/^[A-Za-z0-9_-]{32}$/)
      const file = join(dir, CREDENTIALS_FILE)
      expect(statSync(file).mode & 0o777).toBe(0o600)
      const text = readFileSync(file, 'utf8')
      expect(text).not.toContain(password)
      const again = CredentialStore.open(dir).get('tasmota_A')
      expect(again?.password).toMatchObject({ N: 1024, r: 8, p: 1, keylen: 32 })
      expect(await verifyPassword(password, again!.password)).toBe(true)
      expect(await verifyPassword(`${password}x`, again!.password)).toBe(false)
      await expect(store.add({ name: 'tasmota_A', role: 'device', profile: 'tasmota' })).rejects.toThrow(
        /already exists/,
      )
      expect(store.remove('tasmota_A')).toBe(true)
      expect(CredentialStore.open(dir).size).toBe(0)

      chmodSync(file, 0o644)
      expect(() => CredentialStore.open(dir)).toThrow(/chmod 600/)
      writeFileSync(file, '{"version":1,"accounts":[{"name":"x","role":"consumer"}]}', { mode: 0o600 })
      chmodSync(file, 0o600)
      expect(() => CredentialStore.open(dir)).toThrow(/\/accounts\/0: a consumer needs a domain/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('salts every hash', async () => {
    const [a, b] = await Promise.all([hashPassword('same', { N: 1024 }), hashPassword('same', { N: 1024 })])
    expect(a.salt).not.toBe(b.salt)
    expect(a.hash).not.toBe(b.hash)
  })
})

describe('connection guard', () => {
  it('limits connections in total and per address, and doubles the delay after each failed login', () => {
    const guard = new ConnectionGuard({
      ...DEFAULT_CONNECTION_LIMITS,
      maxConnections: 3,
      burst: 2,
      ratePerSecond: 1,
      failedLoginDelayMs: 100,
      failedLoginMaxDelayMs: 350,
    })
    expect(guard.admit('a', 0)).toBeUndefined()
    expect(guard.admit('a', 0)).toBeUndefined()
    expect(guard.admit('a', 0)).toBe('rate_limited')
    expect(guard.admit('a', 1000)).toBeUndefined()
    expect(guard.admit('b', 1000)).toBe('max_connections')
    guard.closed()
    expect(guard.admit('b', 1000)).toBeUndefined()
    expect([1, 2, 3, 4].map(() => guard.failedLogin('c', 0))).toEqual([100, 200, 350, 350])
    guard.succeededLogin('c')
    expect(guard.failedLogin('c', 0)).toBe(100)
  })
})
