import { createHmac, hkdfSync, randomBytes } from 'node:crypto'
import { closeSync, fstatSync, openSync, readFileSync, writeSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { VeilError } from '../errors.ts'
import { DOMAINS, type Category, type Domain } from '../sdk/model.ts'
import { base32, type Keyring as OperatorKeyring, type PseudonymScope } from '../sdk/keyring.ts'
import { NEVER, resolveRotation, type RotationSchedule, type RotationSettings } from './rotation.ts'

export const MASTER_KEY_FILE = 'master.key'
const MASTER_KEY_BYTES = 32
const HKDF_SALT = Buffer.from('veil/pseudonym/v1')
/** 128 bits of HMAC output: collisions stay negligible far beyond any household's device count. */
const PSEUDONYM_BYTES = 16

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
    throw new VeilError(
      'VEIL_ERR_KEY',
      `${file}: the master key must be ${MASTER_KEY_BYTES} bytes, found ${key.length}`,
    )
  }
  return key
}

/**
 * A domain's rotation settings as the configuration gives them (resolveRotation fills in the defaults of the
 * categories and the gap). A domain the keyring is not given never rotates: tests and tools that want stable
 * pseudonyms pass an empty map; the gateway passes every domain with the configuration's defaults.
 */
export type DomainKeyPolicy = RotationSettings

/** One device's place in its schedule, memoised: the epoch, its live span and the pseudonyms computed in it. */
interface DeviceMemo {
  readonly phaseMs: number
  epoch: number
  /** [liveFrom, liveTo): the epoch without the gaps at both ends; outside it the epoch is recomputed. */
  liveFrom: number
  liveTo: number
  /** kind -> id -> pseudonym, for this epoch only (no key string built per lookup). */
  readonly byKind: Map<string, Map<string, string>>
}

interface CompiledSchedule {
  readonly epochMs: number
  /** The gap is [R - before, R + after) around each rotation moment R (before + after = the gap). */
  readonly beforeMs: number
  readonly afterMs: number
  /** `domain=<d>;period=<s>`: the HKDF info's prefix and the key map's id. */
  readonly keyId: string
}

/**
 * Derives per-domain, per-epoch keys with HKDF and turns device ids into keyed pseudonyms:
 * base32(trunc128(HMAC-SHA256(K[domain, period, epoch], kind | id))). Plain hashes are never used: a MAC address
 * falls to a dictionary attack in under a minute (privacy.md, A1).
 *
 * Rotation (privacy.md §1: SVC never, ANA 30 d, GPS-ANA 1 d). Each device of a rotating (domain, category) has a
 * secret phase φ in [0, epoch), derived from the master key and the device id (never stored, the same after a
 * restart), so the devices of a gateway do not all switch at one instant. The device's epoch at t is
 * n = floor((t - φ) / epoch) and its pseudonyms are HMACs under K[.., n]: the phase only picks the instant of the
 * switch, the pseudonym depends on n, the kind and the id alone, so nothing of the phase can link two epochs.
 * Around each rotation moment R = n·epoch + φ lies a silent gap: `pseudonym` returns undefined for the gap's
 * instants and the caller drops the copy (the route stage counts `rotation_gap`), so a continuous stream shows a
 * hole of at least the gap between its last copy under the old pseudonym and its first under the new one.
 */
export class Keyring implements OperatorKeyring {
  readonly #master: Buffer
  readonly #schedules: ReadonlyMap<Domain, ReadonlyMap<Category, CompiledSchedule>>
  readonly #phaseKey: Buffer
  /** keyId -> epoch -> key; at most the epochs next to the latest one derived are kept. */
  readonly #keys = new Map<string, Map<number, Buffer>>()
  readonly #memo = new Map<Domain, Map<Category, Map<string, DeviceMemo>>>()
  #memoSize = 0
  readonly #memoLimit: number

  constructor(master: Buffer, domains: ReadonlyMap<Domain, DomainKeyPolicy>, memoLimit = 10_000) {
    this.#master = master
    // A device and its first pseudonym must fit.
    this.#memoLimit = Math.max(2, memoLimit)
    const settings: Partial<Record<Domain, RotationSettings>> = {}
    for (const domain of DOMAINS) settings[domain] = domains.get(domain) ?? { epochSeconds: 0 }
    const { schedules, problems } = resolveRotation(settings)
    if (problems.length > 0)
      throw new VeilError('VEIL_ERR_CONFIG', problems.map((p) => `${p.path}: ${p.problem}`).join('; '))
    const compiled = new Map<Domain, Map<Category, CompiledSchedule>>()
    for (const [domain, byCategory] of schedules) {
      const out = new Map<Category, CompiledSchedule>()
      for (const [category, s] of byCategory) out.set(category, compile(domain, s))
      compiled.set(domain, out)
    }
    this.#schedules = compiled
    this.#phaseKey = this.secretBytes('veil/rotation-phase/v1', 32)
  }

  /** The schedule of a (domain, category), for tools and tests. */
  scheduleOf(domain: Domain, category: Category): RotationSchedule {
    const s = this.#schedule(domain, category)
    return s.epochMs === 0 ? NEVER : { epochSeconds: s.epochMs / 1000, gapSeconds: (s.beforeMs + s.afterMs) / 1000 }
  }

  /**
   * The device's rotation phase in ms, in [0, epoch): keyed by the master key, the domain, the category and the
   * device id. 0 where the schedule never rotates. Exposed for tests; never output.
   */
  phaseMs(domain: Domain, category: Category, deviceId: string): number {
    const s = this.#schedule(domain, category)
    if (s.epochMs === 0) return 0
    const mac = createHmac('sha256', this.#phaseKey)
      .update(s.keyId)
      .update('\u0000')
      .update(category)
      .update('\u0000')
      .update(deviceId)
      .digest()
    // 48 bits, reduced modulo the epoch: the bias is below epoch / 2^48, nothing for any epoch in ms.
    return mac.readUIntBE(0, 6) % s.epochMs
  }

  /** The device's epoch at scope.nowMs, or undefined inside the silent gap around one of its rotation moments. */
  epochOf(scope: PseudonymScope): number | undefined {
    const s = this.#schedule(scope.domain, scope.category)
    if (s.epochMs === 0) return 0
    const phase = this.phaseMs(scope.domain, scope.category, scope.deviceId)
    const n = Math.floor((scope.nowMs - phase) / s.epochMs)
    const start = n * s.epochMs + phase
    return scope.nowMs < start + s.afterMs || scope.nowMs >= start + s.epochMs - s.beforeMs ? undefined : n
  }

  /** K[domain, period, epoch]. Old epochs are forgotten so that old and new pseudonyms cannot be linked by this process. */
  keyFor(domain: Domain, category: Category, epoch: number): Buffer {
    const s = this.#schedule(domain, category)
    let keys = this.#keys.get(s.keyId)
    if (keys === undefined) {
      keys = new Map()
      this.#keys.set(s.keyId, keys)
    }
    let key = keys.get(epoch)
    if (key === undefined) {
      // `domain=svc;epoch=0` for a schedule that never rotates: svc's pseudonyms stay those of earlier versions.
      const info = s.epochMs === 0 ? `domain=${domain};epoch=${epoch}` : `${s.keyId};epoch=${epoch}`
      key = Buffer.from(hkdfSync('sha256', this.#master, HKDF_SALT, Buffer.from(info), 32))
      // The devices' phases spread them over two epochs at any instant (n - 1 and n); anything further is destroyed.
      for (const held of keys.keys()) if (Math.abs(held - epoch) > 1) keys.delete(held)
      keys.set(epoch, key)
    }
    return key
  }

  /** The epochs whose keys this process still holds for a (domain, category), for tests. */
  heldEpochs(domain: Domain, category: Category): number[] {
    return [...(this.#keys.get(this.#schedule(domain, category).keyId)?.keys() ?? [])].sort((a, b) => a - b)
  }

  /**
   * Secret, stable bytes for an operator's hidden parameters (a privacy zone's centre offset and radius): derived
   * from the master key, so they survive restarts and differ between gateways, yet are never stored or logged.
   */
  secretBytes(label: string, length: number): Buffer {
    return Buffer.from(
      hkdfSync('sha256', this.#master, Buffer.from('veil/operator-secret/v1'), Buffer.from(label), length),
    )
  }

  /**
   * The pseudonym of `id` (of the id space `kind`) in the scope's device epoch, or undefined inside the device's
   * silent gap: the caller drops the copy. The route stage passes the category and the device id; hmac_pseudo
   * passes the payload's ids under the same device's epoch, so every pseudonym of one copy switches at one instant.
   * The memo is keyed by domain, category, device, kind and id, holds the device's phase (one HMAC per device, not
   * per message) and is bounded: when full it is cleared, which costs one HMAC per device on the next message and
   * keeps memory flat however many ids an attacker invents.
   */
  pseudonym(scope: PseudonymScope, kind: string, id: string): string | undefined {
    const device = this.#device(scope)
    const t = scope.nowMs
    if ((t < device.liveFrom || t >= device.liveTo) && !this.#enter(scope, device)) return undefined
    let ids = device.byKind.get(kind)
    const cached = ids?.get(id)
    if (cached !== undefined) return cached
    const mac = createHmac('sha256', this.keyFor(scope.domain, scope.category, device.epoch))
      .update(kind)
      .update('\u0000')
      .update(id)
      .digest()
    const value = base32(mac.subarray(0, PSEUDONYM_BYTES))
    if (this.#memoSize >= this.#memoLimit) {
      this.#clear()
      device.byKind.clear()
      this.#devicesOf(scope).set(scope.deviceId, device)
      this.#memoSize = 1
      ids = undefined
    }
    if (ids === undefined) {
      ids = new Map()
      device.byKind.set(kind, ids)
    }
    ids.set(id, value)
    this.#memoSize++
    return value
  }

  /** Entries held in the memo, devices and pseudonyms (bounded by the memo limit). */
  get memoSize(): number {
    return this.#memoSize
  }

  #schedule(domain: Domain, category: Category): CompiledSchedule {
    const s = this.#schedules.get(domain)?.get(category)
    if (s === undefined) throw new VeilError('VEIL_ERR_CONFIG', `no rotation schedule for ${domain}/${category}`)
    return s
  }

  #devicesOf(scope: PseudonymScope): Map<string, DeviceMemo> {
    let byCategory = this.#memo.get(scope.domain)
    if (byCategory === undefined) {
      byCategory = new Map()
      this.#memo.set(scope.domain, byCategory)
    }
    let devices = byCategory.get(scope.category)
    if (devices === undefined) {
      devices = new Map()
      byCategory.set(scope.category, devices)
    }
    return devices
  }

  #clear(): void {
    for (const byCategory of this.#memo.values()) byCategory.clear()
    this.#memoSize = 0
  }

  #device(scope: PseudonymScope): DeviceMemo {
    let devices = this.#devicesOf(scope)
    const cached = devices.get(scope.deviceId)
    if (cached !== undefined) return cached
    // Full: the whole memo goes (cheap to rebuild, bounded memory however many ids are invented).
    if (this.#memoSize >= this.#memoLimit) {
      this.#clear()
      devices = this.#devicesOf(scope)
    }
    const s = this.#schedule(scope.domain, scope.category)
    const device: DeviceMemo =
      s.epochMs === 0
        ? { phaseMs: 0, epoch: 0, liveFrom: -Infinity, liveTo: Infinity, byKind: new Map() }
        : {
            phaseMs: this.phaseMs(scope.domain, scope.category, scope.deviceId),
            epoch: NaN,
            liveFrom: Infinity,
            liveTo: -Infinity,
            byKind: new Map(),
          }
    devices.set(scope.deviceId, device)
    this.#memoSize++
    return device
  }

  /** Moves a device to the epoch of scope.nowMs; false inside a gap. A new epoch forgets the device's old pseudonyms. */
  #enter(scope: PseudonymScope, device: DeviceMemo): boolean {
    const s = this.#schedule(scope.domain, scope.category)
    const n = Math.floor((scope.nowMs - device.phaseMs) / s.epochMs)
    const start = n * s.epochMs + device.phaseMs
    const liveFrom = start + s.afterMs
    const liveTo = start + s.epochMs - s.beforeMs
    if (scope.nowMs < liveFrom || scope.nowMs >= liveTo) return false
    if (n !== device.epoch) {
      for (const ids of device.byKind.values()) this.#memoSize -= ids.size
      device.byKind.clear()
      device.epoch = n
    }
    device.liveFrom = liveFrom
    device.liveTo = liveTo
    return true
  }
}

function compile(domain: Domain, s: RotationSchedule): CompiledSchedule {
  const epochMs = s.epochSeconds * 1000
  const gapMs = s.gapSeconds * 1000
  // Centred on the rotation moment: the copies just before it would otherwise join the new pseudonym's first ones.
  const beforeMs = Math.floor(gapMs / 2)
  return { epochMs, beforeMs, afterMs: gapMs - beforeMs, keyId: `domain=${domain};period=${s.epochSeconds}` }
}
