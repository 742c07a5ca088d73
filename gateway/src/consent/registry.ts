import { randomBytes } from 'node:crypto'
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeAtomically } from '../auth/store.ts'
import { VeilError } from '../errors.ts'
import type { ProfileDefinition } from '../sdk/profile.ts'
import { HOUSEHOLD, REGION, SUBJECT_NAME, deviceRefText, type DeviceRef, type Subject } from './model.ts'

export const SUBJECTS_FILE = 'subjects.json'

/** The implicit subject of every device no one claims; never stored, so it can be neither added nor removed. */
export const HOUSEHOLD_SUBJECT: Subject = Object.freeze({
  name: HOUSEHOLD,
  id: HOUSEHOLD,
  devices: [],
  minor: false,
  regions: undefined,
  created: '',
})

const ID = /^[0-9a-f]{16}$/

interface StoredSubject {
  readonly name: string
  readonly id: string
  readonly devices: readonly string[]
  readonly minor: boolean
  readonly regions?: readonly string[]
  readonly created: string
}

interface RegistryFile {
  readonly version: 1
  readonly subjects: readonly StoredSubject[]
}

/**
 * Reads `profile:deviceId` as accounts and topics name a device, with the id normalised the way the validate stage
 * normalises it (pipeline/validate.ts), so that `Alice/Phone` and `alice/phone` are one device unless the profile's
 * ids are case-sensitive. Returns the problem as text when the reference is not one.
 */
export function parseDeviceRef(text: string, profiles: readonly ProfileDefinition[]): DeviceRef | string {
  const colon = text.indexOf(':')
  if (colon <= 0) return `${JSON.stringify(text)} is not PROFILE:DEVICE_ID`
  const name = text.slice(0, colon)
  const profile = profiles.find((p) => p.name === name)
  if (profile === undefined)
    return `unknown profile ${JSON.stringify(name)}; known: ${profiles.map((p) => p.name).join(', ')}`
  const raw = text.slice(colon + 1).trim()
  if (raw === '') return `${JSON.stringify(text)} has an empty device id`
  // What a topic level or payload id can never be: such a reference would silently match no device.
  if (/[+#\u0000-\u001f\u007f]/.test(raw))
    return `${JSON.stringify(text)}: a device id has no MQTT wildcards or control characters`
  const streams = Object.values(profile.streams)
  const caseSensitive = streams.some((s) => s.caseSensitiveId === true)
  let deviceId = caseSensitive ? raw : raw.toLowerCase()
  // A profile whose streams agree on one canonical form (BLE MACs): the id the pipeline will see.
  const normalizers = new Set(streams.map((s) => s.normalizeDeviceId).filter((f) => f !== undefined))
  if (normalizers.size === 1) deviceId = [...normalizers][0]!(deviceId)
  if (deviceId === '') return `${JSON.stringify(text)} has an empty device id`
  return { profile: profile.name, deviceId }
}

/**
 * The subjects: persons to whom devices belong, in `<dataDir>/subjects.json` (mode 0600, replaced atomically like
 * the accounts). Every device no subject claims belongs to the household, which is implicit and never stored.
 */
export class SubjectRegistry {
  readonly file: string
  readonly #profiles: readonly ProfileDefinition[]
  #subjects: Map<string, Subject>
  #byDevice: Map<string, Subject>

  private constructor(file: string, profiles: readonly ProfileDefinition[]) {
    this.file = file
    this.#profiles = profiles
    this.#subjects = readSubjects(file, profiles)
    this.#byDevice = indexDevices(this.#subjects.values())
  }

  /** A missing file is an empty registry; a damaged one a VEIL_ERR_CONFIG naming the file, the path and the problem. */
  static open(dataDir: string, profiles: readonly ProfileDefinition[]): SubjectRegistry {
    return new SubjectRegistry(join(dataDir, SUBJECTS_FILE), profiles)
  }

  get size(): number {
    return this.#subjects.size
  }

  /** The stored subjects by name; the household is not among them. */
  list(): Subject[] {
    return [...this.#subjects.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  /** A stored subject, or the household for its reserved name. */
  get(name: string): Subject | undefined {
    return name === HOUSEHOLD ? HOUSEHOLD_SUBJECT : this.#subjects.get(name)
  }

  /** Whose device this is: its subject, else the household. */
  subjectOf(device: DeviceRef): Subject {
    return this.#byDevice.get(deviceRefText(device)) ?? HOUSEHOLD_SUBJECT
  }

  /** The stored subject that claims `device`, if any. */
  claimant(device: DeviceRef): Subject | undefined {
    return this.#byDevice.get(deviceRefText(device))
  }

  parseDevice(text: string): DeviceRef | string {
    return parseDeviceRef(text, this.#profiles)
  }

  /**
   * Adds a subject with a new random id and saves the file; with `replace`, an existing subject keeps its id and
   * creation time (and so its consent history) and gets the new devices and flags. Nothing is written on a problem.
   */
  add(
    entry: { name: string; devices: readonly DeviceRef[]; minor: boolean; regions?: readonly string[] | undefined },
    options: { replace?: boolean } = {},
  ): Subject {
    const fail = (problem: string): never => {
      throw new VeilError('VEIL_ERR_USAGE', problem)
    }
    if (entry.name === HOUSEHOLD) fail(`${HOUSEHOLD} is reserved: it is every device no subject claims`)
    if (!SUBJECT_NAME.test(entry.name))
      fail(
        `${JSON.stringify(entry.name)} is not a subject name: lower case, digits, _ . - (at most 64), starting with a letter or digit`,
      )
    const existing = this.#subjects.get(entry.name)
    if (existing !== undefined && options.replace !== true)
      fail(`${entry.name} already exists; remove it first or pass --replace`)
    if (existing === undefined && options.replace === true) fail(`no subject ${entry.name} to replace`)
    const seen = new Set<string>()
    for (const device of entry.devices) {
      const text = deviceRefText(device)
      if (seen.has(text)) fail(`${text} is named twice`)
      seen.add(text)
      const owner = this.#byDevice.get(text)
      if (owner !== undefined && owner.name !== entry.name)
        fail(`${text} already belongs to ${owner.name}; remove it there first`)
    }
    const regions = entry.regions === undefined ? undefined : [...new Set(entry.regions)]
    if (regions !== undefined) {
      if (regions.length === 0) fail('--regions needs at least one region (leave it out for anywhere)')
      for (const r of regions)
        if (!REGION.test(r))
          fail(`${JSON.stringify(r)} is not a region code (2 to 8 capital letters: EU, EEA, US, DE...)`)
    }
    const ids = new Set([...this.#subjects.values()].map((s) => s.id))
    let id = existing?.id ?? randomBytes(8).toString('hex')
    while (existing === undefined && ids.has(id)) id = randomBytes(8).toString('hex')
    const subject: Subject = {
      name: entry.name,
      id,
      devices: [...entry.devices],
      minor: entry.minor,
      regions,
      created: existing?.created ?? new Date().toISOString(),
    }
    const next = new Map(this.#subjects)
    next.set(subject.name, subject)
    this.#commit(next)
    return subject
  }

  remove(name: string): boolean {
    if (name === HOUSEHOLD) throw new VeilError('VEIL_ERR_USAGE', `${HOUSEHOLD} is reserved: it cannot be removed`)
    if (!this.#subjects.has(name)) return false
    const next = new Map(this.#subjects)
    next.delete(name)
    this.#commit(next)
    return true
  }

  /** Reads the file again; on a problem it throws and keeps the set it had. */
  reload(): void {
    const subjects = readSubjects(this.file, this.#profiles)
    this.#byDevice = indexDevices(subjects.values())
    this.#subjects = subjects
  }

  save(): void {
    writeAtomically(this.file, serialize(this.list()))
  }

  // Written first, adopted after: a failed write leaves the registry as the file is.
  #commit(next: Map<string, Subject>): void {
    const list = [...next.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    writeAtomically(this.file, serialize(list))
    this.#subjects = next
    this.#byDevice = indexDevices(next.values())
  }
}

function serialize(subjects: readonly Subject[]): string {
  const body: RegistryFile = {
    version: 1,
    subjects: subjects.map((s) => ({
      name: s.name,
      id: s.id,
      devices: s.devices.map(deviceRefText),
      minor: s.minor,
      ...(s.regions === undefined ? {} : { regions: s.regions }),
      created: s.created,
    })),
  }
  return `${JSON.stringify(body, null, 2)}\n`
}

function indexDevices(subjects: Iterable<Subject>): Map<string, Subject> {
  const byDevice = new Map<string, Subject>()
  for (const s of subjects) for (const d of s.devices) byDevice.set(deviceRefText(d), s)
  return byDevice
}

function readSubjects(file: string, profiles: readonly ProfileDefinition[]): Map<string, Subject> {
  const text = readPrivate(file, 'the subject registry')
  if (text === undefined) return new Map()
  return parseSubjects(text, file, profiles)
}

/** The file's text, undefined when it does not exist; refused when group or others may read it. */
export function readPrivate(file: string, what: string): string | undefined {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new VeilError('VEIL_ERR_CONFIG', `${file}: cannot read ${what}: ${(err as Error).message}`)
  }
  try {
    const mode = fstatSync(fd).mode & 0o777
    if ((mode & 0o077) !== 0) {
      throw new VeilError(
        'VEIL_ERR_CONFIG',
        `${file}: ${what} is readable by group or others (mode ${mode.toString(8)}); run chmod 600 on it`,
      )
    }
    return readFileSync(fd, 'utf8')
  } finally {
    closeSync(fd)
  }
}

const TOP_KEYS = new Set(['version', 'subjects'])
const SUBJECT_KEYS = new Set(['name', 'id', 'devices', 'minor', 'regions', 'created'])

/** Checks a registry file's text; every problem names the file and the JSON path. Pure apart from the message. */
export function parseSubjects(
  text: string,
  file: string,
  profiles: readonly ProfileDefinition[],
): Map<string, Subject> {
  const fail = (path: string, problem: string): never => {
    throw new VeilError('VEIL_ERR_CONFIG', `${file}: ${path}: ${problem}`)
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    fail('/', 'not JSON')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('/', 'expected an object')
  const top = value as Record<string, unknown>
  for (const key of Object.keys(top)) if (!TOP_KEYS.has(key)) fail(`/${key}`, 'unknown property')
  if (top.version !== 1) fail('/version', 'expected 1')
  if (!Array.isArray(top.subjects)) fail('/subjects', 'expected an array')
  const subjects = new Map<string, Subject>()
  const ids = new Map<string, string>()
  const owners = new Map<string, string>()
  ;(top.subjects as unknown[]).forEach((entry, i) => {
    const at = `/subjects/${i}`
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail(at, 'expected an object')
    const s = entry as Record<string, unknown>
    for (const key of Object.keys(s)) if (!SUBJECT_KEYS.has(key)) fail(`${at}/${key}`, 'unknown property')
    if (typeof s.name !== 'string' || !SUBJECT_NAME.test(s.name))
      fail(`${at}/name`, `must match ${SUBJECT_NAME.source}`)
    const name = s.name as string
    if (name === HOUSEHOLD) fail(`${at}/name`, `${HOUSEHOLD} is reserved and never stored`)
    if (subjects.has(name)) fail(`${at}/name`, `${name} is listed twice`)
    if (typeof s.id !== 'string' || !ID.test(s.id)) fail(`${at}/id`, 'must be 16 lower-case hex digits')
    const id = s.id as string
    const other = ids.get(id)
    if (other !== undefined) fail(`${at}/id`, `the same id as ${other}`)
    ids.set(id, name)
    if (!Array.isArray(s.devices)) fail(`${at}/devices`, 'expected an array of PROFILE:DEVICE_ID')
    const devices: DeviceRef[] = []
    ;(s.devices as unknown[]).forEach((d, j) => {
      if (typeof d !== 'string') fail(`${at}/devices/${j}`, 'expected PROFILE:DEVICE_ID')
      const ref = parseDeviceRef(d as string, profiles)
      if (typeof ref === 'string') fail(`${at}/devices/${j}`, ref)
      const device = ref as DeviceRef
      const key = deviceRefText(device)
      const owner = owners.get(key)
      if (owner === name) fail(`${at}/devices/${j}`, `${key} is listed twice`)
      if (owner !== undefined) fail(`${at}/devices/${j}`, `${key} is claimed by both ${owner} and ${name}`)
      owners.set(key, name)
      devices.push(device)
    })
    if (typeof s.minor !== 'boolean') fail(`${at}/minor`, 'expected true or false')
    let regions: string[] | undefined
    if (s.regions !== undefined) {
      if (!Array.isArray(s.regions) || s.regions.length === 0)
        fail(`${at}/regions`, 'expected a non-empty array of region codes (leave it out for anywhere)')
      regions = []
      ;(s.regions as unknown[]).forEach((r, j) => {
        if (typeof r !== 'string' || !REGION.test(r)) fail(`${at}/regions/${j}`, `must match ${REGION.source}`)
        if (regions!.includes(r as string)) fail(`${at}/regions/${j}`, `${r as string} is listed twice`)
        regions!.push(r as string)
      })
    }
    if (typeof s.created !== 'string' || !Number.isFinite(Date.parse(s.created)))
      fail(`${at}/created`, 'expected an ISO 8601 time')
    subjects.set(name, { name, id, devices, minor: s.minor as boolean, regions, created: s.created as string })
  })
  return subjects
}
