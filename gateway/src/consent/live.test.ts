import { appendFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { builtinProfiles } from '../../../filters/profiles/index.ts'
import { tempDir } from '../../../test/helpers/gateway.ts'
import { until } from '../../../test/helpers/poll.ts'
import type { Domain } from '../sdk/model.ts'
import { purposeBit } from './book.ts'
import { LiveConsent, type ConsentReload } from './live.ts'
import { CONSENT_LOG_FILE, ConsentLog } from './log.ts'
import { SubjectRegistry } from './registry.ts'

const config = { domains: new Map<Domain, { upstream?: { region?: string } }>(), optIn: new Set<string>() } as never
const dirs: { remove(): void }[] = []
const lives: LiveConsent[] = []
afterEach(() => {
  for (const l of lives.splice(0)) l.close()
  for (const d of dirs.splice(0)) d.remove()
})

function dataDir(): string {
  const dir = tempDir('veil-consent-live-')
  dirs.push(dir)
  SubjectRegistry.open(dir.path, builtinProfiles).add({
    name: 'alice',
    devices: [{ profile: 'tasmota', deviceId: 'plug_1' }],
    minor: false,
  })
  return dir.path
}

const grant = (dir: string, granted: boolean): void =>
  ConsentLog.open(dir).append({
    time: new Date().toISOString(),
    subject: 'alice',
    purpose: 'energy_15min',
    domain: undefined,
    granted,
    by: 'subject',
  })

const grants = (live: LiveConsent): boolean =>
  ((live.holder.current.of('tasmota', 'plug_1').granted[0] as number) & purposeBit('energy_15min')) !== 0

describe('LiveConsent', () => {
  it('a damaged consent log stops the start, naming the file and the line', () => {
    const dir = dataDir()
    grant(dir, true)
    appendFileSync(join(dir, CONSENT_LOG_FILE), '{"time":"x"}\n', { mode: 0o600 })
    expect(() => new LiveConsent(dir, builtinProfiles, config)).toThrow(`${join(dir, CONSENT_LOG_FILE)}:2:`)
  })

  it('a damaged registry stops the start, naming the file and the JSON path', () => {
    const dir = dataDir()
    writeFileSync(join(dir, 'subjects.json'), '{"version":1,"subjects":[{"name":"Alice!"}]}', { mode: 0o600 })
    expect(() => new LiveConsent(dir, builtinProfiles, config)).toThrow(/subjects\.json: \/subjects\/0/)
  })

  it('a reload over a damaged file keeps the last good state; a good change applies', () => {
    const dir = dataDir()
    grant(dir, true)
    const live = new LiveConsent(dir, builtinProfiles, config)
    lives.push(live)
    expect(grants(live)).toBe(true)
    appendFileSync(join(dir, CONSENT_LOG_FILE), 'not json\n', { mode: 0o600 })
    const rejected = live.reload()
    expect(rejected.ok).toBe(false)
    expect(grants(live)).toBe(true)
    writeFileSync(join(dir, CONSENT_LOG_FILE), '', { mode: 0o600 })
    grant(dir, false)
    expect(live.reload()).toEqual({ ok: true, subjects: 1, records: 1 })
    expect(grants(live)).toBe(false)
  })

  it('watching the data directory applies an append to the consent log without a signal', async () => {
    const dir = dataDir()
    const live = new LiveConsent(dir, builtinProfiles, config)
    lives.push(live)
    const seen: ConsentReload[] = []
    live.watch((r) => seen.push(r))
    expect(grants(live)).toBe(false)
    grant(dir, true)
    await until(() => grants(live), { timeoutMs: 5000, what: 'the watched grant' })
    expect(seen.at(-1)).toMatchObject({ ok: true })
  })
})
