import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, randomBytes } from 'node:crypto'
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
import type { FrameKeys, SubjectKey } from '../forward/queue/frame.ts'

export const SUBJECT_KEYS_FILE = 'subject-keys.json'
const KEY_BYTES = 32
const NONCE = 12
const TAG = 16
const WRAP_SALT = Buffer.from('veil/subject-keys/v1')
const WRAP_INFO = Buffer.from('wrap')
/** A subject id of the registry (16 hex digits) or the household's. */
const SUBJECT = /^(?:[0-9a-f]{16}|household)$/

interface StoredKey {
  readonly subject: string
  readonly id: number
  readonly created: string
  /** base64 of nonce | AES-256-GCM(data key) | tag, under the wrapping key, with `subject:id` as associated data. */
  readonly wrapped: string
}

interface KeyFile {
  readonly version: 1
  readonly keys: readonly StoredKey[]
}

interface Held {
  readonly stored: StoredKey
  readonly key: SubjectKey
}

/**
 * One random 256-bit data key per subject, for the durable queue's frames (forward/queue/frame.ts, version 4).
 * Stored in `<dataDir>/subject-keys.json` (mode 0600, replaced atomically and fsynced) wrapped under a key derived
 * from the master key with a label of its own, so the file alone opens nothing. Unwrapped keys live only in this
 * process's memory. `forget` deletes a subject's key on disk at once: every frame sealed under it is unreadable from
 * then on, wherever its bytes remain (crypto-shredding, privacy.md `crypto_shred`).
 *
 * Another process (`veil subject forget`) may change the file while the gateway runs: every write starts from the
 * file as it is on disk, so a key forgotten there is never written back, and `reload` drops it from memory.
 */
export class SubjectKeys implements FrameKeys {
  readonly file: string
  readonly #wrap: Buffer
  #held = new Map<string, Held>()

  private constructor(file: string, wrap: Buffer) {
    this.file = file
    this.#wrap = wrap
    this.#held = this.#read()
  }

  /** Opens the store of `dataDir` (an absent file is an empty store); a damaged file stops here, naming the entry. */
  static open(dataDir: string, master: Buffer): SubjectKeys {
    const wrap = Buffer.from(hkdfSync('sha256', master, WRAP_SALT, WRAP_INFO, KEY_BYTES))
    return new SubjectKeys(join(dataDir, SUBJECT_KEYS_FILE), wrap)
  }

  get size(): number {
    return this.#held.size
  }

  has(subject: string): boolean {
    return this.#held.has(subject)
  }

  /** The subject's data key, created and stored (fsynced) before it is first used. */
  keyFor(subject: string): SubjectKey {
    const held = this.#held.get(subject)
    if (held !== undefined) return held.key
    if (!SUBJECT.test(subject)) throw new VeilError('VEIL_ERR_KEY', `not a subject id: ${JSON.stringify(subject)}`)
    const key = randomBytes(KEY_BYTES)
    // Never 0, so that a zeroed field never names a key.
    const id = (randomBytes(4).readUInt32LE(0) % 0xffff_fffe) + 1
    const stored: StoredKey = {
      subject,
      id,
      created: new Date().toISOString(),
      wrapped: this.#wrapKey(subject, id, key),
    }
    const next = this.#read()
    const created: Held = { stored, key: { id, key, secret: createSecretKey(key) } }
    next.set(subject, created)
    this.#write(next)
    this.#held = next
    return created.key
  }

  keyById(subject: string, id: number): SubjectKey | undefined {
    const held = this.#held.get(subject)
    return held !== undefined && held.key.id === id ? held.key : undefined
  }

  /**
   * Deletes the subject's key, on disk (fsynced, the directory too) before this returns: its queued frames can never
   * be opened again. False when it had none.
   */
  forget(subject: string): boolean {
    const next = this.#read()
    const had = next.delete(subject) || this.#held.has(subject)
    this.#held.get(subject)?.key.key.fill(0)
    this.#held.delete(subject)
    if (had) this.#write(next)
    this.#held = next
    return had
  }

  /** Takes the file as it is now: keys forgotten by another process are dropped from memory. */
  reload(): void {
    const next = this.#read()
    for (const [subject, held] of this.#held) if (next.get(subject)?.key.id !== held.key.id) held.key.key.fill(0)
    this.#held = next
  }

  #wrapKey(subject: string, id: number, key: Buffer): string {
    const nonce = randomBytes(NONCE)
    const cipher = createCipheriv('aes-256-gcm', this.#wrap, nonce)
    cipher.setAAD(Buffer.from(`${subject}:${id}`))
    const sealed = Buffer.concat([nonce, cipher.update(key), cipher.final(), cipher.getAuthTag()])
    return sealed.toString('base64')
  }

  #unwrap(where: string, subject: string, id: number, wrapped: string): Buffer {
    const sealed = Buffer.from(wrapped, 'base64')
    if (sealed.length !== NONCE + KEY_BYTES + TAG || sealed.toString('base64') !== wrapped)
      throw this.#damaged(where, 'the wrapped key is not base64 of the expected length')
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#wrap, sealed.subarray(0, NONCE))
      decipher.setAAD(Buffer.from(`${subject}:${id}`))
      decipher.setAuthTag(sealed.subarray(NONCE + KEY_BYTES))
      const key = decipher.update(sealed.subarray(NONCE, NONCE + KEY_BYTES))
      decipher.final()
      return key
    } catch {
      throw this.#damaged(where, 'the wrapped key does not open under this master key (altered, or another master.key)')
    }
  }

  #damaged(where: string, problem: string): VeilError {
    return new VeilError('VEIL_ERR_KEY', `${this.file}: ${where}: ${problem}`)
  }

  #read(): Map<string, Held> {
    let text: string
    let fd: number
    try {
      fd = openSync(this.file, 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map()
      throw new VeilError('VEIL_ERR_KEY', `${this.file}: cannot read the subject keys: ${(err as Error).message}`)
    }
    try {
      const mode = fstatSync(fd).mode & 0o777
      if ((mode & 0o077) !== 0)
        throw new VeilError(
          'VEIL_ERR_KEY',
          `${this.file}: the subject keys are readable by group or others (mode ${mode.toString(8)}); run chmod 600 on it`,
        )
      text = readFileSync(fd, 'utf8')
    } finally {
      closeSync(fd)
    }
    let doc: unknown
    try {
      doc = JSON.parse(text)
    } catch (err) {
      throw this.#damaged('not JSON', (err as Error).message)
    }
    if (typeof doc !== 'object' || doc === null || (doc as { version?: unknown }).version !== 1)
      throw this.#damaged('version', 'expected an object with "version": 1')
    const keys = (doc as { keys?: unknown }).keys
    if (!Array.isArray(keys)) throw this.#damaged('keys', 'expected an array')
    const out = new Map<string, Held>()
    keys.forEach((entry: unknown, i: number) => {
      const where = `keys[${i}]`
      if (typeof entry !== 'object' || entry === null) throw this.#damaged(where, 'expected an object')
      const { subject, id, created, wrapped } = entry as Record<string, unknown>
      if (typeof subject !== 'string' || !SUBJECT.test(subject))
        throw this.#damaged(where, 'subject: expected 16 hex digits or "household"')
      const at = `${where} (subject ${subject})`
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > 0xffff_ffff)
        throw this.#damaged(at, 'id: expected an integer from 1 to 2^32-1')
      if (typeof created !== 'string') throw this.#damaged(at, 'created: expected a string')
      if (typeof wrapped !== 'string') throw this.#damaged(at, 'wrapped: expected a string')
      if (out.has(subject)) throw this.#damaged(at, 'a second key for the same subject')
      const previous = this.#held.get(subject)
      // Keys already unwrapped are kept, not unwrapped again on every write.
      let key = previous?.key
      if (key?.id !== id) {
        const raw = this.#unwrap(at, subject, id, wrapped)
        key = { id, key: raw, secret: createSecretKey(raw) }
      }
      out.set(subject, { stored: { subject, id, created, wrapped }, key })
    })
    return out
  }

  /** Temporary file (0600), fsynced, renamed over the file, directory fsynced: a crash leaves the old or the new. */
  #write(keys: Map<string, Held>): void {
    const body: KeyFile = { version: 1, keys: [...keys.values()].map((h) => h.stored) }
    const dir = join(this.file, '..')
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
    const fd = openSync(tmp, 'wx', 0o600)
    try {
      writeSync(fd, `${JSON.stringify(body, null, 2)}\n`)
      fsyncSync(fd)
    } catch (err) {
      closeSync(fd)
      rmSync(tmp, { force: true })
      throw new VeilError('VEIL_ERR_KEY', `${this.file}: cannot write the subject keys: ${(err as Error).message}`)
    }
    closeSync(fd)
    renameSync(tmp, this.file)
    const dirFd = openSync(dir, 'r')
    try {
      fsyncSync(dirFd)
    } finally {
      closeSync(dirFd)
    }
  }
}
