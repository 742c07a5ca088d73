// The consent log over a real consent.jsonl: appended and fsynced line by line, never rewritten, private, and
// refused (with file:line) when a line is damaged or an append was cut short.
import { appendFileSync, chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { tempDir } from '../../../test/helpers/gateway.ts'
import { VeilError } from '../errors.ts'
import { CONSENT_LOG_FILE, ConsentLog, readConsentLog } from './log.ts'
import type { ConsentRecord } from './model.ts'

const dirs: { remove(): void }[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) d.remove()
})

function dataDir(): string {
  const dir = tempDir('veil-consent-log-')
  dirs.push(dir)
  return dir.path
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

const grant: ConsentRecord = {
  time: '2026-01-01T00:00:00.000Z',
  subject: 'alice',
  purpose: 'health_consent',
  domain: undefined,
  granted: true,
  by: 'subject',
}
const withdraw: ConsentRecord = { ...grant, time: '2026-01-02T00:00:00.000Z', domain: 'ana', granted: false }
const line = (r: Record<string, unknown>): string => `${JSON.stringify(r)}\n`

describe('ConsentLog', () => {
  it('appends one line per change, keeps every earlier line byte for byte, and reads them back in order', () => {
    const dir = dataDir()
    const log = ConsentLog.open(dir)
    expect(log.records()).toEqual([])
    log.append(grant)
    const file = join(dir, CONSENT_LOG_FILE)
    const first = readFileSync(file, 'utf8')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    log.append(withdraw)
    const both = readFileSync(file, 'utf8')
    expect(both.startsWith(first)).toBe(true)
    expect(both.split('\n')).toHaveLength(3)
    // An every-domain record carries no domain at all rather than a null.
    expect(JSON.parse(first)).toEqual({
      time: grant.time,
      subject: 'alice',
      purpose: 'health_consent',
      granted: true,
      by: 'subject',
    })
    expect(readConsentLog(file)).toEqual([grant, withdraw])
    expect(ConsentLog.open(dir).records()).toEqual([grant, withdraw])
    expect(log.records()).toEqual([grant, withdraw])
  })

  it('refuses to append a record that is none', () => {
    const log = ConsentLog.open(dataDir())
    expect(errorOf(() => log.append({ ...grant, by: 'neighbour' as ConsentRecord['by'] })).message).toMatch(
      /unknown by "neighbour"/,
    )
    expect(errorOf(() => log.append({ ...grant, subject: 'Alice' })).message).toMatch(/subject must be a subject name/)
    expect(log.records()).toEqual([])
  })

  it('names file:line and the problem of a damaged line', () => {
    const dir = dataDir()
    const file = join(dir, CONSENT_LOG_FILE)
    const good = line({ ...grant })
    const cases: [string, string][] = [
      [`${good}{"time":\n`, ':2: not JSON'],
      [`${good}\n${good}`, ':2: empty line'],
      [`${good}${line({ ...grant, by: 'neighbour' })}`, ':2: unknown by "neighbour"'],
      [`${line({ ...grant, time: 'yesterday' })}`, ':1: time must be an ISO 8601 time'],
      [`${line({ ...grant, time: '2026-13-45T99:00:00Z' })}`, ':1: time must be an ISO 8601 time'],
      [`${line({ ...grant, granted: 'yes' })}`, ':1: granted must be true or false'],
      [`${line({ ...grant, domain: 'cloud' })}`, ':1: unknown domain "cloud"'],
      [`${line({ ...grant, domain: null })}`, ':1: unknown domain null'],
      [
        `${line({ time: grant.time, subject: 'alice', granted: true, by: 'subject' })}`,
        ':1: purpose must be a purpose name',
      ],
      [`${line({ ...grant, note: 'x' })}`, ':1: unknown property note'],
      ['[]\n', ':1: expected an object'],
    ]
    for (const [text, message] of cases) {
      writeFileSync(file, text, { mode: 0o600 })
      const err = errorOf(() => readConsentLog(file))
      expect(err.code).toBe('VEIL_ERR_CONFIG')
      expect(err.message).toContain(`${file}${message}`)
    }
  })

  it('refuses a torn last line, saying so, whether or not the fragment happens to parse', () => {
    const dir = dataDir()
    const file = join(dir, CONSENT_LOG_FILE)
    const good = line({ ...grant })
    writeFileSync(file, `${good}${good.slice(0, 30)}`, { mode: 0o600 })
    const cut = errorOf(() => ConsentLog.open(dir))
    expect(cut.message).toContain(
      `${file}:2: torn last line (no newline at the end: an append was cut short), not JSON`,
    )
    writeFileSync(file, `${good}${good.trimEnd()}`, { mode: 0o600 })
    expect(errorOf(() => ConsentLog.open(dir)).message).toMatch(
      /:2: torn last line \(no newline at the end: an append was cut short\); check it/,
    )
  })

  it('keeps the last good records when a reload finds damage, and refuses a log others may read', () => {
    const dir = dataDir()
    const log = ConsentLog.open(dir)
    log.append(grant)
    const file = join(dir, CONSENT_LOG_FILE)
    appendFileSync(file, 'garbage\n')
    expect(() => log.reload()).toThrow(/:2: not JSON/)
    expect(log.records()).toEqual([grant])
    writeFileSync(file, line({ ...grant }))
    chmodSync(file, 0o640)
    expect(errorOf(() => ConsentLog.open(dir)).message).toMatch(/readable by group or others \(mode 640\)/)
  })
})
