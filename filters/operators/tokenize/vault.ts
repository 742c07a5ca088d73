/**
 * The token vault: `<dataDir>/vault/<domain>.jsonl`, one `{"token":…,"value":…}` row per tokenised value. It is
 * the only place where a token can be turned back into its value (access requests) and the place erasure deletes
 * from (privacy.md 2.7, P11). The file is 0600 in a 0700 directory: it holds the raw personal data.
 *
 * One Vault object per file per process, shared by every compiled tokenize operator of that domain: two instances
 * with separate maps would mint two tokens for one value.
 */
import { randomBytes } from 'node:crypto'
import {
  chmodSync,
  closeSync,
  existsSync,
  fstatSync,
  fchmodSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import { base32 } from '#veil/sdk'

/** Past this many rows new values are refused (a counted drop): a device inventing values cannot fill the disk. */
export const VAULT_LIMIT = 100_000
export const TOKEN_PREFIX = 'tok_'

interface Row {
  token: string
  value: string
}

export function canonicalValue(value: string | number): string {
  return String(value).trim().toLowerCase()
}

export function vaultFile(dataDir: string, domain: string): string {
  if (!/^[a-z0-9_-]{1,32}$/i.test(domain)) throw new Error(`vault domain ${JSON.stringify(domain)} is not a plain name`)
  return join(dataDir, 'vault', `${domain}.jsonl`)
}

function ensureDirectory(dataDir: string): void {
  const dir = join(dataDir, 'vault')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  // mkdir leaves an existing directory's mode alone; the vault's directory must not be listable by others.
  chmodSync(dir, 0o700)
}

/** The rows of the file, and whether its last line was torn (a crash during an append). */
function readRows(file: string): { rows: Row[]; torn: boolean } {
  if (!existsSync(file)) return { rows: [], torn: false }
  const text = readFileSync(file, 'utf8')
  const lines = text.split('\n')
  const torn = text.length > 0 && !text.endsWith('\n')
  const rows: Row[] = []
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string
    if (line === '') continue
    let row: unknown
    try {
      row = JSON.parse(line)
    } catch {
      // A torn last line is a crash during an append: its token was never sent (the append precedes the send).
      if (torn && i === lines.length - 1) break
      throw new Error(`${file}: line ${i + 1} is not JSON; the vault is damaged`)
    }
    const r = row as Partial<Row> | null
    if (r === null || typeof r !== 'object' || typeof r.token !== 'string' || typeof r.value !== 'string') {
      throw new Error(`${file}: line ${i + 1} is not a vault row`)
    }
    rows.push({ token: r.token, value: r.value })
  }
  return { rows, torn }
}

/** Replaces the file (temporary file + rename: a crash leaves either the old or the new file, never half). */
function writeRows(file: string, rows: readonly Row[]): void {
  const tmp = `${file}.tmp`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    fchmodSync(fd, 0o600)
    writeSync(fd, rows.map((row) => `${JSON.stringify(row)}\n`).join(''))
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, file)
}

export class Vault {
  readonly #file: string
  readonly #dataDir: string
  #byValue: Map<string, string> | undefined
  #byToken: Map<string, string> | undefined

  constructor(dataDir: string, domain: string) {
    this.#dataDir = dataDir
    this.#file = vaultFile(dataDir, domain)
  }

  /** Loaded on first use, not at compile: a policy that never sees a value never touches the disk. */
  #load(): Map<string, string> {
    if (this.#byValue !== undefined) return this.#byValue
    const byValue = new Map<string, string>()
    const byToken = new Map<string, string>()
    const { rows, torn } = readRows(this.#file)
    if (torn) {
      // Without repair the next append would be glued to the torn fragment.
      ensureDirectory(this.#dataDir)
      writeRows(this.#file, rows)
    }
    for (const row of rows) {
      byValue.set(row.value, row.token)
      byToken.set(row.token, row.value)
    }
    this.#byValue = byValue
    this.#byToken = byToken
    return byValue
  }

  tokenFor(canonical: string): string {
    const byValue = this.#load()
    const known = byValue.get(canonical)
    if (known !== undefined) return known
    if (byValue.size >= VAULT_LIMIT) throw new Error(`the vault ${this.#file} is full (${VAULT_LIMIT} rows)`)
    // Tokens must be unguessable, not merely uniform: 128 bits from the OS CSPRNG, never the noise PRNG.
    const token = `${TOKEN_PREFIX}${base32(randomBytes(16))}`
    this.#append({ token, value: canonical })
    byValue.set(canonical, token)
    this.#byToken?.set(token, canonical)
    return token
  }

  valueOf(token: string): string | undefined {
    this.#load()
    return this.#byToken?.get(token)
  }

  /** Written before the token is used, so a token that left the gateway is always in the vault. */
  #append(row: Row): void {
    ensureDirectory(this.#dataDir)
    const fd = openSync(this.#file, 'a', 0o600)
    try {
      if ((fstatSync(fd).mode & 0o077) !== 0) fchmodSync(fd, 0o600)
      writeSync(fd, `${JSON.stringify(row)}\n`)
    } finally {
      closeSync(fd)
    }
  }

  /** Rewrites the file without the value's rows. */
  erase(canonical: string): number {
    const { rows, torn } = readRows(this.#file)
    const kept = rows.filter((row) => row.value !== canonical)
    const removed = rows.length - kept.length
    if (removed > 0 || torn) {
      ensureDirectory(this.#dataDir)
      writeRows(this.#file, kept)
    }
    // Forget the cached maps so the next use reloads what is now on disk.
    this.#byValue = undefined
    this.#byToken = undefined
    return removed
  }
}

const vaults = new Map<string, Vault>()

export function vaultFor(dataDir: string, domain: string): Vault {
  const file = vaultFile(dataDir, domain)
  let vault = vaults.get(file)
  if (vault === undefined) {
    vault = new Vault(dataDir, domain)
    vaults.set(file, vault)
  }
  return vault
}

/** Erasure (privacy.md 2.7, P11): removes every row of the value; returns how many were removed. */
export function eraseFromVault(dataDir: string, domain: string, value: string | number): number {
  return vaultFor(dataDir, domain).erase(canonicalValue(value))
}

/** An access request: the value behind a token, or undefined. */
export function detokenize(dataDir: string, domain: string, token: string): string | undefined {
  return vaultFor(dataDir, domain).valueOf(token)
}

/** Drops the in-memory vaults, as a restart would (tests; a policy reload keeps them on purpose). */
export function forgetVaults(): void {
  vaults.clear()
}
