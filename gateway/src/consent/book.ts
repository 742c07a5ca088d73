import { VeilError } from '../errors.ts'
import { DOMAINS, type Category, type Domain, type DropReason } from '../sdk/model.ts'
import {
  HOUSEHOLD,
  MINOR_CATEGORIES,
  MINOR_DOMAINS,
  grantedPurposes,
  sharePurpose,
  type ConsentRecord,
  type Subject,
} from './model.ts'

/**
 * Purposes are interned once per process into bits, so a compiled policy variant and a compiled subject meet in one
 * AND per copy. 31 purposes fit (the shipped policies offer four, plus one share purpose per domain).
 */
const PURPOSE_BITS = new Map<string, number>()
const MAX_PURPOSES = 31

export function purposeBit(purpose: string): number {
  let bit = PURPOSE_BITS.get(purpose)
  if (bit === undefined) {
    if (PURPOSE_BITS.size >= MAX_PURPOSES) {
      throw new VeilError(
        'VEIL_ERR_POLICY',
        `more than ${MAX_PURPOSES} consent purposes (opt_in names and share purposes); ${purpose} is one too many`,
      )
    }
    bit = 1 << PURPOSE_BITS.size
    PURPOSE_NAMES.push(purpose)
    PURPOSE_BITS.set(purpose, bit)
  }
  return bit
}

const PURPOSE_NAMES: string[] = []

/** The purpose a bit stands for ('' for 0, the default policy): what a queued copy records. */
export function purposeName(bit: number): string {
  return bit === 0 ? '' : (PURPOSE_NAMES[31 - Math.clz32(bit)] ?? '')
}

/** The bit of a purpose read back from disk; undefined for one this process does not know (fail closed). */
export function knownPurposeBit(purpose: string): number | undefined {
  return purpose === '' ? 0 : PURPOSE_BITS.get(purpose)
}

const DOMAIN_INDEX: ReadonlyMap<Domain, number> = new Map(DOMAINS.map((d, i) => [d, i]))
export const domainIndex = (domain: Domain): number => DOMAIN_INDEX.get(domain) as number

/** Why a subject's consent stops a copy. */
export type ConsentDropReason = Extract<DropReason, 'consent_withdrawn' | 'residency' | 'minor'>

/** One subject as the filter stage reads it: a few arrays indexed by domain, built when consent changes. */
export interface SubjectView {
  /** The subject's id (never its name): what queued copies and the audit carry. */
  readonly id: string
  readonly minor: boolean
  /** Per domain (DOMAINS order): the bits of the purposes granted for it. */
  readonly granted: Uint32Array
  /** Per domain: why no copy may leave for it at all (sharing withdrawn, region not allowed), or undefined. */
  readonly blocked: readonly (ConsentDropReason | undefined)[]
}

export interface BookSource {
  readonly subjects: readonly Subject[]
  readonly records: readonly ConsentRecord[]
  /** The configuration's `optIn`: the household's defaults, and every adult subject's until a record says otherwise. */
  readonly defaults: ReadonlySet<string>
  /** Each domain's upstream region (configuration `domains.<d>.upstream.region`); undefined: not declared. */
  readonly regions: ReadonlyMap<Domain, string | undefined>
}

/**
 * The consent in force, compiled for the hot path: which subject a device belongs to and what that subject allows,
 * by profile and device id (no string is built per message). Immutable: a change compiles a new book, which the
 * holder swaps in, so a message sees one consistent state.
 */
export class ConsentBook {
  /** By device id alone (one Map read per message); ids two profiles share chain their claims. */
  readonly #byDevice: ReadonlyMap<string, Claim>
  readonly #byId: ReadonlyMap<string, SubjectView>
  readonly household: SubjectView
  /** The source it was compiled from, for the CLI, the API and a recompile when one part changes. */
  readonly source: BookSource

  private constructor(source: BookSource) {
    this.source = source
    const compile = (subject: Pick<Subject, 'name' | 'id' | 'minor' | 'regions'>): SubjectView => {
      const granted = new Uint32Array(DOMAINS.length)
      const blocked: (ConsentDropReason | undefined)[] = []
      for (const [i, domain] of DOMAINS.entries()) {
        const purposes = grantedPurposes(subject, domain, source.records, source.defaults)
        let bits = 0
        for (const p of purposes) bits |= purposeBit(p)
        granted[i] = bits
        const region = source.regions.get(domain)
        if (!purposes.has(sharePurpose(domain))) blocked.push('consent_withdrawn')
        else if (subject.regions !== undefined && (region === undefined || !subject.regions.includes(region)))
          blocked.push('residency')
        else blocked.push(undefined)
      }
      return { id: subject.id, minor: subject.minor, granted, blocked }
    }
    this.household = compile({ name: HOUSEHOLD, id: HOUSEHOLD, minor: false, regions: undefined })
    const byDevice = new Map<string, Claim>()
    const byId = new Map<string, SubjectView>([[HOUSEHOLD, this.household]])
    for (const subject of source.subjects) {
      const view = compile(subject)
      byId.set(subject.id, view)
      for (const device of subject.devices) {
        byDevice.set(device.deviceId, { profile: device.profile, view, next: byDevice.get(device.deviceId) })
      }
    }
    this.#byDevice = byDevice
    this.#byId = byId
  }

  static compile(source: BookSource): ConsentBook {
    return new ConsentBook(source)
  }

  /** Everything belongs to the household and its switches are `optIn`: Veil before subjects, and `veil filter`. */
  static household(defaults: ReadonlySet<string> = new Set()): ConsentBook {
    return new ConsentBook({ subjects: [], records: [], defaults, regions: new Map() })
  }

  /** The subject of a device: the one that claims it, else the household. */
  of(profile: string, deviceId: string): SubjectView {
    if (this.#byDevice.size === 0) return this.household
    for (let claim = this.#byDevice.get(deviceId); claim !== undefined; claim = claim.next) {
      if (claim.profile === profile) return claim.view
    }
    return this.household
  }

  /** Undefined for a subject removed since: its copies are nobody's to send. */
  byId(id: string): SubjectView | undefined {
    return this.#byId.get(id)
  }
}

interface Claim {
  readonly profile: string
  readonly view: SubjectView
  readonly next: Claim | undefined
}

/** Holds the book in force; a change swaps `current` only after the new book compiled. */
export interface ConsentHolder {
  current: ConsentBook
}

/**
 * consentBlocks for a copy that waited (held for release, queued on disk): its subject and purpose as recorded, the
 * consent as it is now. A subject removed since, or a purpose no policy offers any more, blocks (fail closed).
 */
export function consentBlocksNow(
  book: ConsentBook,
  subjectId: string,
  domain: Domain,
  category: Category,
  purpose: string,
): ConsentDropReason | undefined {
  const subject = book.byId(subjectId)
  const bit = knownPurposeBit(purpose)
  if (subject === undefined || bit === undefined) return 'consent_withdrawn'
  return consentBlocks(subject, domain, category, bit)
}

/**
 * Whether a copy filtered for `subject` under `purposeBit` (0: the policy's default, which needs no consent) may
 * still leave for `domain` now: undefined if so, else the drop reason. Checked when a copy is made and again when a
 * held or queued copy leaves, so a withdrawal reaches what is waiting.
 */
export function consentBlocks(
  subject: SubjectView,
  domain: Domain,
  category: Category,
  purposeBit: number,
): ConsentDropReason | undefined {
  const d = domainIndex(domain)
  const blocked = subject.blocked[d]
  if (blocked !== undefined) return blocked
  if (subject.minor && MINOR_DOMAINS.has(domain) && MINOR_CATEGORIES.has(category)) return 'minor'
  if (purposeBit !== 0 && ((subject.granted[d] as number) & purposeBit) === 0) return 'consent_withdrawn'
  return undefined
}
