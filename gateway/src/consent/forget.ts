import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { VeilError } from '../errors.ts'
import { forgetDevices } from '../sdk/state.ts'
import { HOUSEHOLD, type Subject } from './model.ts'
import type { SubjectRegistry } from './registry.ts'

/** Erasures begun and not yet finished: the next start (or the running gateway) finishes them. */
export const ERASURE_JOURNAL = 'erasure.journal.json'

/** One pending erasure. Kept only until it is finished: the journal then forgets the devices too. */
export interface PendingErasure {
  readonly subjectId: string
  readonly subjectName: string
  readonly deviceIds: readonly string[]
  readonly begun: string
}

/** What an erasure touches, given by whoever runs it (the gateway in process, the CLI with the gateway stopped). */
export interface ErasureParts {
  /** Crypto-shredding: the subject's queue data keys (keys/subject-keys.ts). */
  readonly keys: { forget(subjectId: string): boolean }
  readonly registry: SubjectRegistry
}

export interface ErasureResult {
  readonly subjectId: string
  readonly keysShredded: boolean
  readonly stateEntries: number
}

function readJournal(file: string): PendingErasure[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw new VeilError('VEIL_ERR_CONFIG', `${file}: ${(err as Error).message}`)
  }
  try {
    const value = JSON.parse(text) as { pending?: unknown }
    if (!Array.isArray(value.pending)) throw new Error('no pending list')
    return value.pending as PendingErasure[]
  } catch (err) {
    throw new VeilError('VEIL_ERR_CONFIG', `${file}: damaged erasure journal: ${(err as Error).message}`)
  }
}

/** Replaced atomically (temporary file, fsync, rename): a crash leaves the old journal or the new one. */
function writeJournal(file: string, pending: readonly PendingErasure[]): void {
  if (pending.length === 0) {
    rmSync(file, { force: true })
    return
  }
  const tmp = `${file}.tmp`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    writeSync(fd, `${JSON.stringify({ version: 1, pending })}\n`)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, file)
}

/**
 * Forgets a subject in one step, in an order a crash cannot leave half done: the erasure is written to a journal
 * first (fsynced), then the subject's queue data keys are destroyed (every queued copy of theirs becomes unreadable,
 * whatever segment files remain), every operator's state of their devices is deleted, and the subject is removed
 * (its devices belong to the household again); only then is the journal entry dropped. Each step can run again, so
 * `finishErasures` at the next start completes whatever a crash interrupted.
 */
export function forgetSubject(
  dataDir: string,
  subject: Subject,
  parts: ErasureParts,
  options: { keepJournal?: boolean } = {},
): ErasureResult {
  if (subject.name === HOUSEHOLD)
    throw new VeilError('VEIL_ERR_USAGE', `${HOUSEHOLD} cannot be forgotten: it is every device no subject claims`)
  const file = join(dataDir, ERASURE_JOURNAL)
  const pending = readJournal(file).filter((p) => p.subjectId !== subject.id)
  const entry: PendingErasure = {
    subjectId: subject.id,
    subjectName: subject.name,
    deviceIds: subject.devices.map((d) => d.deviceId),
    begun: new Date().toISOString(),
  }
  writeJournal(file, [...pending, entry])
  const result = run(entry, parts)
  // The CLI leaves the entry for the gateway: only the process holding the operators' state can forget it (the
  // running gateway sees the journal change at once, a stopped one finishes it at its next start).
  if (options.keepJournal !== true) writeJournal(file, pending)
  return result
}

/** Finishes every erasure a crash (or the CLI) left in the journal; returns the ids it finished. */
export function finishErasures(dataDir: string, parts: ErasureParts): string[] {
  const file = join(dataDir, ERASURE_JOURNAL)
  const pending = readJournal(file)
  for (const entry of pending) run(entry, parts)
  writeJournal(file, [])
  return pending.map((p) => p.subjectId)
}

function run(entry: PendingErasure, parts: ErasureParts): ErasureResult {
  const keysShredded = parts.keys.forget(entry.subjectId)
  const stateEntries = forgetDevices(entry.deviceIds)
  parts.registry.reload()
  if (parts.registry.get(entry.subjectName)?.id === entry.subjectId) parts.registry.remove(entry.subjectName)
  return { subjectId: entry.subjectId, keysShredded, stateEntries }
}
