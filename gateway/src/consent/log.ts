import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { VeilError } from '../errors.ts'
import { isDomain } from '../sdk/model.ts'
import { CONSENT_SOURCES, SUBJECT_NAME, type ConsentRecord, type ConsentSource } from './model.ts'
import { readPrivate } from './registry.ts'

export const CONSENT_LOG_FILE = 'consent.jsonl'

/** What `toISOString` writes, or with an offset: a time a person can read back and every parser agrees on. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/
/** The policies' opt-in names and the share purposes. */
const PURPOSE = /^[a-z0-9_]{1,64}$/
const KEYS = new Set(['time', 'subject', 'purpose', 'domain', 'granted', 'by'])

/** What is wrong with a value as a consent record, or undefined. */
export function consentRecordProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'expected an object'
  const r = value as Record<string, unknown>
  for (const key of Object.keys(r)) if (!KEYS.has(key)) return `unknown property ${key}`
  if (typeof r.time !== 'string' || !ISO_TIME.test(r.time) || !Number.isFinite(Date.parse(r.time)))
    return 'time must be an ISO 8601 time'
  if (typeof r.subject !== 'string' || !SUBJECT_NAME.test(r.subject)) return 'subject must be a subject name'
  if (typeof r.purpose !== 'string' || !PURPOSE.test(r.purpose)) return 'purpose must be a purpose name'
  if (r.domain !== undefined && (typeof r.domain !== 'string' || !isDomain(r.domain)))
    return `unknown domain ${JSON.stringify(r.domain)}`
  if (typeof r.granted !== 'boolean') return 'granted must be true or false'
  if (typeof r.by !== 'string' || !(CONSENT_SOURCES as readonly string[]).includes(r.by))
    return `unknown by ${JSON.stringify(r.by)}; one of ${CONSENT_SOURCES.join(', ')}`
  return undefined
}

/** Parses a log's text; a damaged line throws naming `file:line`. Pure apart from the message. */
export function parseConsentLog(text: string, file: string): ConsentRecord[] {
  const lines = text.split('\n')
  // The last element is what follows the final newline: empty unless a crash cut an append short.
  const torn = lines[lines.length - 1] !== ''
  const records: ConsentRecord[] = []
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string
    const last = i === lines.length - 1
    if (last && !torn) break
    const fail = (problem: string | undefined): never => {
      // A torn line is refused like any other: its change may have been reported as done, so guessing is wrong.
      const why = last
        ? `torn last line (no newline at the end: an append was cut short)${problem === undefined ? '' : `, ${problem}`}; check it, then end it with a newline or delete it`
        : problem
      throw new VeilError('VEIL_ERR_CONFIG', `${file}:${i + 1}: ${why}`)
    }
    if (line.trim() === '') fail('empty line')
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch {
      fail('not JSON')
    }
    const problem = consentRecordProblem(value)
    if (problem !== undefined || last) fail(problem)
    const r = value as Record<string, unknown>
    records.push({
      time: r.time as string,
      subject: r.subject as string,
      purpose: r.purpose as string,
      domain: r.domain as ConsentRecord['domain'],
      granted: r.granted as boolean,
      by: r.by as ConsentSource,
    })
  }
  return records
}

/** The records of a consent log in the order they were appended; a missing file has none. */
export function readConsentLog(file: string): ConsentRecord[] {
  const text = readPrivate(file, 'the consent log')
  return text === undefined ? [] : parseConsentLog(text, file)
}

/**
 * The consent log: `<dataDir>/consent.jsonl`, mode 0600, one ConsentRecord a line, only ever appended (each line
 * fsynced before `append` returns), so the history of every grant and withdrawal stays as evidence and the state in
 * force is derived from all of it (model.ts grantedPurposes).
 */
export class ConsentLog {
  readonly file: string
  #records: ConsentRecord[]

  private constructor(file: string) {
    this.file = file
    this.#records = readConsentLog(file)
  }

  /** Reads the whole log: a damaged line is a VEIL_ERR_CONFIG naming `file:line`, and nothing is appended to it. */
  static open(dataDir: string): ConsentLog {
    return new ConsentLog(join(dataDir, CONSENT_LOG_FILE))
  }

  records(): readonly ConsentRecord[] {
    return this.#records
  }

  /** Reads the file again; on a problem it throws and keeps the records it had. */
  reload(): void {
    this.#records = readConsentLog(this.file)
  }

  append(record: ConsentRecord): void {
    const problem = consentRecordProblem(record)
    if (problem !== undefined) throw new VeilError('VEIL_ERR_USAGE', `not a consent record: ${problem}`)
    const line = `${JSON.stringify({ time: record.time, subject: record.subject, purpose: record.purpose, domain: record.domain, granted: record.granted, by: record.by })}\n`
    mkdirSync(join(this.file, '..'), { recursive: true, mode: 0o700 })
    const fd = openSync(this.file, 'a', 0o600)
    try {
      writeSync(fd, line)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    this.#records.push(record)
  }
}
