import { DOMAINS, type Category, type Domain } from '../sdk/model.ts'

/**
 * Subjects and consent: the data model, shared by the registry and log files (registry.ts, log.ts), the CLI, the
 * API and the compiled per-device lookup the filter stage reads (book.ts).
 */

/** The subject every device no one claims belongs to: the household as a whole, whose defaults are `optIn`. */
export const HOUSEHOLD = 'household'

/** Lower case, digits, `_`, `.` and `-`: a name that is safe in a file, a flag and a URL path, never in a topic. */
export const SUBJECT_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/

/** Region codes an upstream declares and a subject may limit its data to: `EU`, `EEA`, `US`, `DE`, `CH`... */
export const REGION = /^[A-Z]{2,8}$/

/** A device as accounts and topics name it: its profile and the device id the profile takes from the topic. */
export interface DeviceRef {
  readonly profile: string
  readonly deviceId: string
}

export interface Subject {
  readonly name: string
  /**
   * Random, stable, never shown in topics: what queue frames and the audit name the subject by (16 hex digits).
   * The household's is `household`.
   */
  readonly id: string
  readonly devices: readonly DeviceRef[]
  /** A minor: location, health and camera data never leave for ana or 3p; every consent needs a guardian. */
  readonly minor: boolean
  /** Where the subject's data may go; undefined: anywhere. */
  readonly regions: readonly string[] | undefined
  readonly created: string
}

export const CONSENT_SOURCES = ['subject', 'guardian', 'admin'] as const
export type ConsentSource = (typeof CONSENT_SOURCES)[number]

/** One line of the consent log: appended, never rewritten; the state in force is derived from all of them. */
export interface ConsentRecord {
  /** ISO 8601 time of the change. */
  readonly time: string
  readonly subject: string
  readonly purpose: string
  /** The one domain the record is about; undefined: every domain. */
  readonly domain: Domain | undefined
  readonly granted: boolean
  readonly by: ConsentSource
}

/**
 * Purposes for sharing with a recipient domain at all (`share_ana`): granted unless withdrawn, so a person can
 * stop one recipient without editing a policy. The other purposes are the policies' `opt_in` names.
 */
export const SHARE_PREFIX = 'share_'
export const sharePurpose = (domain: Domain): string => `${SHARE_PREFIX}${domain}`
export const SHARE_PURPOSES: readonly string[] = DOMAINS.map(sharePurpose)

/** Categories a minor's data never leaves in for ana and 3p, whatever is recorded (privacy.md: special categories). */
export const MINOR_CATEGORIES: ReadonlySet<Category> = new Set(['gps_tracker', 'body_scale', 'camera'])
export const MINOR_DOMAINS: ReadonlySet<Domain> = new Set(['ana', '3p'])

export const deviceRefText = (d: DeviceRef): string => `${d.profile}:${d.deviceId}`

/**
 * Which purposes are granted to `subject` for `domain` once every record is applied in order: a domain's own
 * record overrides an every-domain record before it, and a later every-domain record overrides both. Household
 * defaults (the configuration's `optIn`) hold until a record says otherwise, except for a minor; share purposes
 * are granted by default. A minor's grants count only when a guardian (or an admin) gave them.
 */
export function grantedPurposes(
  subject: Pick<Subject, 'name' | 'minor'>,
  domain: Domain,
  records: readonly ConsentRecord[],
  defaults: ReadonlySet<string>,
): Set<string> {
  // A household switch is not a guardian's consent: a minor starts from the share purposes only.
  const granted = new Set<string>(subject.minor ? [] : defaults)
  for (const p of SHARE_PURPOSES) granted.add(p)
  for (const r of records) {
    if (r.subject !== subject.name || (r.domain !== undefined && r.domain !== domain)) continue
    if (!r.granted) granted.delete(r.purpose)
    else if (!subject.minor || r.by !== 'subject') granted.add(r.purpose)
  }
  return granted
}

/** The purposes a person can grant or withdraw: the policies' opt-in names and one share purpose per domain. */
export function offeredPurposes(
  documents: Iterable<{
    readonly domains: Partial<
      Record<Domain, { readonly streams: Record<string, { readonly opt_in?: Record<string, unknown> }> }>
    >
  }>,
): Set<string> {
  const purposes = new Set<string>()
  for (const doc of documents) {
    for (const section of Object.values(doc.domains)) {
      for (const stream of Object.values(section?.streams ?? {}))
        for (const name of Object.keys(stream.opt_in ?? {})) purposes.add(name)
    }
  }
  for (const p of SHARE_PURPOSES) purposes.add(p)
  return purposes
}
