import { createHmac, hkdfSync, randomBytes } from 'node:crypto'
import { closeSync, fstatSync, openSync, readFileSync, writeSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { VeilError } from '../errors.ts'
import type { Domain } from '../model.ts'

export const MASTER_KEY_FILE = 'master.key'
const MASTER_KEY_BYTES = 32
const HKDF_SALT = Buffer.from('veil/pseudonym/v1')
/** 128 bits of HMAC output: collisions stay negligible far beyond any household's device count. */
const PSEUDONYM_BYTES = 16
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'

/**
 * Reads the master secret from the data directory, creating it on first start. The file is created with mode 0600
 * in one step (no window in which it is readable by others), and a key file that group or others can read stops
 * the start: a leaked master key un-pseudonymises every device.
 */
export function loadOrCreateMasterKey(dataDir: string): Buffer {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const file = join(dataDir, MASTER_KEY_FILE)
  let fd: number
  try {
    fd = openSync(file, 'wx', 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new VeilError('VEIL_ERR_KEY', `${file}: cannot create the master key: ${(err as Error).message}`)
    }
    return readMasterKey(file)
  }
  try {
    writeSync(fd, randomBytes(MASTER_KEY_BYTES))
  } finally {
    closeSync(fd)
  }
  return readMasterKey(file)
}

function readMasterKey(file: string): Buffer {
  const fd = openSync(file, 'r')
  try {
    const mode = fstatSync(fd).mode & 0o777
    if ((mode & 0o077) !== 0) {
      throw new VeilError(
        'VEIL_ERR_KEY',
        `${file}: the master key is readable by group or others (mode ${mode.toString(8)}); run chmod 600 on it`,
      )
    }
  } finally {
    closeSync(fd)
  }
  const key = readFileSync(file)
  if (key.length !== MASTER_KEY_BYTES) {
    throw new VeilError('VEIL_ERR_KEY', `${file}: the master key must be ${MASTER_KEY_BYTES} bytes, found ${key.length}`)
  }
  return key
}

/** How often a domain's pseudonym key changes; 0 means never (the owner's own service keeps stable pseudonyms). */
export interface DomainKeyPolicy {
  epochSeconds: number
}

/**
 * Derives per-domain, per-epoch keys with HKDF and turns device ids into keyed pseudonyms:
 * base32(trunc128(HMAC-SHA256(K[domain, epoch], category | id))). Plain hashes are never used: a MAC address
 * falls to a dictionary attack in under a minute (privacy.md, A1).
 */
export class Keyring {
  readonly #master: Buffer
  readonly #domains: ReadonlyMap<Domain, DomainKeyPolicy>
  readonly #keys = new Map<string, Buffer>()
  /** Per domain: the epoch its memo belongs to, then kind -> id -> pseudonym (no key string built per lookup). */
  readonly #memo = new Map<Domain, { epoch: number; byKind: Map<string, Map<string, string>> }>()
  #memoSize = 0
  readonly #memoLimit: number

  constructor(master: Buffer, domains: ReadonlyMap<Domain, DomainKeyPolicy>, memoLimit = 10_000) {
    this.#master = master
    this.#domains = domains
    this.#memoLimit = memoLimit
  }

  epochOf(domain: Domain, nowMs: number): number {
    const seconds = this.#domains.get(domain)?.epochSeconds ?? 0
    return seconds > 0 ? Math.floor(nowMs / 1000 / seconds) : 0
  }

  keyFor(domain: Domain, epoch: number): Buffer {
    const id = `${domain}|${epoch}`
    let key = this.#keys.get(id)
    if (key === undefined) {
      key = Buffer.from(hkdfSync('sha256', this.#master, HKDF_SALT, Buffer.from(`domain=${domain};epoch=${epoch}`), 32))
      // Old epochs are forgotten so that old and new pseudonyms cannot be linked by this process.
      for (const existing of this.#keys.keys()) if (existing.startsWith(`${domain}|`)) this.#keys.delete(existing)
      this.#keys.set(id, key)
    }
    return key
  }

  /**
   * Secret, stable bytes for an operator's hidden parameters (a privacy zone's centre offset and radius): derived
   * from the master key, so they survive restarts and differ between gateways, yet are never stored or logged.
   */
  secretBytes(label: string, length: number): Buffer {
    return Buffer.from(hkdfSync('sha256', this.#master, Buffer.from('veil/operator-secret/v1'), Buffer.from(label), length))
  }

  /**
   * The memo is keyed by domain, epoch and id and bounded: when full it is cleared, which costs one HMAC per
   * device on the next message and keeps memory flat however many ids an attacker invents.
   */
  pseudonym(domain: Domain, kind: string, id: string, nowMs: number): string {
    const epoch = this.epochOf(domain, nowMs)
    let memo = this.#memo.get(domain)
    // A new epoch forgets the domain's old pseudonyms, as keyFor forgets its old key.
    if (memo === undefined || memo.epoch !== epoch) {
      if (memo !== undefined) for (const ids of memo.byKind.values()) this.#memoSize -= ids.size
      memo = { epoch, byKind: new Map() }
      this.#memo.set(domain, memo)
    }
    let ids = memo.byKind.get(kind)
    const cached = ids?.get(id)
    if (cached !== undefined) return cached
    const mac = createHmac('sha256', this.keyFor(domain, epoch)).update(kind).update('\u0000').update(id).digest()
    const value = base32(mac.subarray(0, PSEUDONYM_BYTES))
    if (this.#memoSize >= this.#memoLimit) {
      for (const m of this.#memo.values()) m.byKind.clear()
      this.#memoSize = 0
      ids = undefined
    }
    if (ids === undefined) {
      ids = new Map()
      memo.byKind.set(kind, ids)
    }
    ids.set(id, value)
    this.#memoSize++
    return value
  }

  /** Pseudonyms held in the memo (bounded by the memo limit). */
  get memoSize(): number {
    return this.#memoSize
  }
}

export function base32(bytes: Uint8Array): string {
  let out = ''
  let bits = 0
  let value = 0
  for (const byte of bytes) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31]
  return out
}
