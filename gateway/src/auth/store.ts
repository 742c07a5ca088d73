import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import {
  closeSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import { VeilError } from '../errors.ts'
import { isDomain, type Domain } from '../sdk/model.ts'

export const CREDENTIALS_FILE = 'credentials.json'

export const ROLES = ['device', 'consumer', 'local', 'admin'] as const
export type Role = (typeof ROLES)[number]

/** scrypt as OWASP's password storage cheat sheet suggests for N = 2^15 (r 8, p 1): 32 MiB and ~50 ms per check. */
export const DEFAULT_SCRYPT = { N: 2 ** 15, r: 8, p: 1, keylen: 32 } as const

export interface ScryptHash {
  readonly N: number
  readonly r: number
  readonly p: number
  readonly keylen: number
  /** base64 */
  readonly salt: string
  /** base64 */
  readonly hash: string
}

/**
 * One broker account. Its name is what a client sends as MQTT user name; for a device it is the device id, which
 * is also the common name (or a DNS/URI subject alternative name) of its client certificate under mutual TLS.
 */
export interface Account {
  readonly name: string
  readonly role: Role
  /** device: the profile whose topics it may publish (`veil device add --profile`). */
  readonly profile?: string
  /** consumer: the only recipient domain whose filtered topics it may read. */
  readonly domain?: Domain
  readonly password: ScryptHash
  readonly created: string
}

interface StoreFile {
  readonly version: 1
  readonly accounts: readonly Account[]
}

/**
 * The broker's accounts: one JSON file in the data directory, mode 0600, replaced atomically (written to a
 * temporary file, fsynced, renamed) so a crash never leaves half a file. Passwords are stored as scrypt hashes with
 * their salt and parameters; the clear text exists only in the output of `veil device add` / `veil user add`.
 */
export class CredentialStore {
  readonly file: string
  #accounts: Map<string, Account>

  private constructor(file: string, accounts: Map<string, Account>) {
    this.file = file
    this.#accounts = accounts
  }

  static open(dataDir: string): CredentialStore {
    const file = join(dataDir, CREDENTIALS_FILE)
    return new CredentialStore(file, readAccounts(file))
  }

  get size(): number {
    return this.#accounts.size
  }

  list(): Account[] {
    return [...this.#accounts.values()].sort((a, b) => a.name.localeCompare(b.name))
  }

  get(name: string): Account | undefined {
    return this.#accounts.get(name)
  }

  /**
   * Adds (or, with `replace`, replaces) an account with a new random password and saves the file. Returns the
   * password: the caller shows it once.
   */
  async add(
    entry: { name: string; role: Role; profile?: string; domain?: Domain },
    options: { replace?: boolean; scrypt?: Partial<typeof DEFAULT_SCRYPT> } = {},
  ): Promise<string> {
    if (!options.replace && this.#accounts.has(entry.name)) {
      throw new VeilError('VEIL_ERR_USAGE', `${entry.name} already exists; remove it first or pass --replace`)
    }
    // 24 random bytes: 192 bits, far beyond guessing, and short enough for a device's configuration page.
    const password = randomBytes(24).toString('base64url')
    const account: Account = {
      ...entry,
      password: await hashPassword(password, options.scrypt),
      created: new Date().toISOString(),
    }
    this.#accounts.set(entry.name, account)
    this.save()
    return password
  }

  remove(name: string): boolean {
    const removed = this.#accounts.delete(name)
    if (removed) this.save()
    return removed
  }

  /** Reads the file again (after `veil device add` in another process), keeping the old set if it is unreadable. */
  reload(): void {
    this.#accounts = readAccounts(this.file)
  }

  save(): void {
    const body: StoreFile = { version: 1, accounts: this.list() }
    writeAtomically(this.file, `${JSON.stringify(body, null, 2)}\n`)
  }
}

export function hashPassword(password: string, params: Partial<typeof DEFAULT_SCRYPT> = {}): Promise<ScryptHash> {
  const p = { ...DEFAULT_SCRYPT, ...params }
  const salt = randomBytes(16)
  return derive(password, salt, p).then((hash) => ({
    ...p,
    salt: salt.toString('base64'),
    hash: hash.toString('base64'),
  }))
}

/** Constant-time comparison of the derived key; parameters come from the stored hash, so they can be raised later. */
export async function verifyPassword(password: Buffer | string, stored: ScryptHash): Promise<boolean> {
  const expected = Buffer.from(stored.hash, 'base64')
  const actual = await derive(password, Buffer.from(stored.salt, 'base64'), stored)
  return actual.length === expected.length && timingSafeEqual(actual, expected)
}

function derive(
  password: Buffer | string,
  salt: Buffer,
  p: { N: number; r: number; p: number; keylen: number },
): Promise<Buffer> {
  // scrypt needs 128·N·r bytes; Node's default ceiling (32 MiB) is exactly N 2^15, r 8, so leave headroom.
  const options: ScryptOptions = { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r + 1024 * 1024 }
  return new Promise((resolve, reject) =>
    scrypt(password, salt, p.keylen, options, (err, key) => (err === null ? resolve(key) : reject(err))),
  )
}

function readAccounts(file: string): Map<string, Account> {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map()
    throw new VeilError('VEIL_ERR_CONFIG', `${file}: cannot read the credentials: ${(err as Error).message}`)
  }
  let text: string
  try {
    const mode = fstatSync(fd).mode & 0o777
    if ((mode & 0o077) !== 0) {
      throw new VeilError(
        'VEIL_ERR_CONFIG',
        `${file}: the credentials are readable by group or others (mode ${mode.toString(8)}); run chmod 600 on it`,
      )
    }
    text = readFileSync(fd, 'utf8')
  } finally {
    closeSync(fd)
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new VeilError('VEIL_ERR_CONFIG', `${file}: /: not JSON`)
  }
  const accounts = new Map<string, Account>()
  const list = (value as Partial<StoreFile> | null)?.accounts
  if (!Array.isArray(list)) throw new VeilError('VEIL_ERR_CONFIG', `${file}: /accounts: expected an array`)
  list.forEach((entry: unknown, i) => {
    const problem = accountProblem(entry)
    if (problem !== undefined) throw new VeilError('VEIL_ERR_CONFIG', `${file}: /accounts/${i}: ${problem}`)
    const account = entry as Account
    accounts.set(account.name, account)
  })
  return accounts
}

function accountProblem(entry: unknown): string | undefined {
  if (typeof entry !== 'object' || entry === null) return 'expected an object'
  const a = entry as Record<string, unknown>
  if (typeof a.name !== 'string' || a.name === '') return 'name must be a non-empty string'
  if (typeof a.role !== 'string' || !(ROLES as readonly string[]).includes(a.role))
    return `role must be one of ${ROLES.join(', ')}`
  if (a.role === 'device' && typeof a.profile !== 'string') return 'a device needs a profile'
  if (a.role === 'consumer' && (typeof a.domain !== 'string' || !isDomain(a.domain))) return 'a consumer needs a domain'
  const h = a.password as Record<string, unknown> | undefined
  if (typeof h !== 'object' || h === null) return 'password must be a scrypt hash'
  for (const k of ['N', 'r', 'p', 'keylen'])
    if (!Number.isInteger(h[k]) || (h[k] as number) < 1) return `password.${k} must be a positive integer`
  for (const k of ['salt', 'hash']) if (typeof h[k] !== 'string') return `password.${k} must be base64`
  return undefined
}

/** Temporary file, fsync, rename: readers see the old file or the new one, never a partial write. */
export function writeAtomically(file: string, text: string): void {
  const dir = join(file, '..')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const fd = openSync(tmp, 'wx', 0o600)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } catch (err) {
    closeSync(fd)
    rmSync(tmp, { force: true })
    throw err
  }
  closeSync(fd)
  renameSync(tmp, file)
}
