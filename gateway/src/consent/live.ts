import { watch, type FSWatcher } from 'node:fs'
import type { GatewayConfig } from '../config/config.ts'
import type { Domain } from '../sdk/model.ts'
import type { ProfileDefinition } from '../sdk/profile.ts'
import { ConsentBook, type ConsentHolder } from './book.ts'
import { CONSENT_LOG_FILE, ConsentLog } from './log.ts'
import { SUBJECTS_FILE, SubjectRegistry } from './registry.ts'
import { ERASURE_JOURNAL } from './forget.ts'

/** Each domain's declared upstream region (configuration `domains.<d>.upstream.region`). */
export function regionsOf(config: Pick<GatewayConfig, 'domains'>): Map<Domain, string | undefined> {
  return new Map([...config.domains].map(([domain, c]) => [domain, c.upstream?.region]))
}

/** Reads subjects.json and consent.jsonl and compiles them: a damaged file throws, naming the file and where. */
export function loadConsentBook(
  dataDir: string,
  profiles: readonly ProfileDefinition[],
  config: Pick<GatewayConfig, 'domains' | 'optIn'>,
): ConsentBook {
  const registry = SubjectRegistry.open(dataDir, profiles)
  const log = ConsentLog.open(dataDir)
  return ConsentBook.compile({
    subjects: registry.list(),
    records: log.records(),
    defaults: config.optIn,
    regions: regionsOf(config),
  })
}

export type ConsentReload = { ok: true; subjects: number; records: number } | { ok: false; error: string }

/**
 * The gateway's consent: compiled at start (a damaged file stops it), compiled again when `veil subject` or
 * `veil consent` changes a file (the data directory is watched), on SIGHUP and on the API's changes. A reload that
 * fails keeps the last good book in force.
 */
export class LiveConsent {
  readonly holder: ConsentHolder
  readonly #dataDir: string
  readonly #profiles: readonly ProfileDefinition[]
  readonly #config: Pick<GatewayConfig, 'domains' | 'optIn'>
  #watcher: FSWatcher | undefined
  #timer: NodeJS.Timeout | undefined
  #onErasure: (() => void) | undefined

  constructor(
    dataDir: string,
    profiles: readonly ProfileDefinition[],
    config: Pick<GatewayConfig, 'domains' | 'optIn'>,
  ) {
    this.#dataDir = dataDir
    this.#profiles = profiles
    this.#config = config
    this.holder = { current: loadConsentBook(dataDir, profiles, config) }
  }

  reload(): ConsentReload {
    try {
      const next = loadConsentBook(this.#dataDir, this.#profiles, this.#config)
      this.holder.current = next
      return { ok: true, subjects: next.source.subjects.length, records: next.source.records.length }
    } catch (err) {
      return { ok: false, error: (err as Error).message }
    }
  }

  /**
   * Reloads shortly after subjects.json or consent.jsonl changes. The CLI replaces the registry by a rename and
   * appends whole lines to the log, so a short debounce is enough to see one complete change.
   */
  watch(onReload: (result: ConsentReload) => void, debounceMs = 20, onErasure?: () => void): void {
    if (this.#watcher !== undefined) return
    this.#onErasure = onErasure
    this.#watcher = watch(this.#dataDir, (_event, name) => {
      if (name === ERASURE_JOURNAL) {
        this.#onErasure?.()
        return
      }
      if (name !== SUBJECTS_FILE && name !== CONSENT_LOG_FILE) return
      clearTimeout(this.#timer)
      this.#timer = setTimeout(() => onReload(this.reload()), debounceMs)
    })
    this.#watcher.on('error', () => this.close())
  }

  close(): void {
    this.#watcher?.close()
    this.#watcher = undefined
    clearTimeout(this.#timer)
  }
}
