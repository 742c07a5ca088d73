import { VeilError } from '../errors.ts'
import { DOMAINS, isDomain, type Domain } from '../sdk/model.ts'
import type { ConsentLog } from './log.ts'
import {
  CONSENT_SOURCES,
  HOUSEHOLD,
  SHARE_PREFIX,
  grantedPurposes,
  offeredPurposes,
  type ConsentRecord,
  type ConsentSource,
  type DeviceRef,
  type Subject,
} from './model.ts'
import type { SubjectRegistry } from './registry.ts'

/**
 * The rules every change of subjects and consent follows, whoever makes it (`veil subject`, `veil consent`, the
 * HTTP API): each check runs before anything is written, and a refusal is a VEIL_ERR_USAGE that names the problem.
 */

type PolicyDocuments = Parameters<typeof offeredPurposes>[0]

/** The purposes the policies offer, per domain: what a person can grant or withdraw there. */
export function offeredByDomain(documents: PolicyDocuments): Map<Domain, Set<string>> {
  const docs = [...documents]
  const byDomain = new Map<Domain, Set<string>>()
  for (const domain of DOMAINS) {
    const purposes = offeredPurposes(docs.map((doc) => ({ domains: { [domain]: doc.domains[domain] } })))
    // A share purpose is about its own domain only.
    for (const p of purposes) if (p.startsWith(SHARE_PREFIX) && p !== `${SHARE_PREFIX}${domain}`) purposes.delete(p)
    byDomain.set(domain, purposes)
  }
  return byDomain
}

export function checkPurpose(purpose: string, domain: Domain | undefined, byDomain: Map<Domain, Set<string>>): void {
  const all = new Set([...byDomain.values()].flatMap((s) => [...s]))
  if (!all.has(purpose))
    throw new VeilError('VEIL_ERR_USAGE', `no policy offers ${purpose}; offered: ${[...all].sort().join(', ')}`)
  if (domain !== undefined && !byDomain.get(domain)?.has(purpose)) {
    const where = DOMAINS.filter((d) => byDomain.get(d)?.has(purpose))
    throw new VeilError(
      'VEIL_ERR_USAGE',
      `no policy offers ${purpose} for ${domain}; it is offered for ${where.join(', ')}`,
    )
  }
}

export function domainOf(value: string | undefined): Domain | undefined {
  if (value === undefined) return undefined
  if (!isDomain(value)) throw new VeilError('VEIL_ERR_USAGE', `unknown domain ${value}; one of ${DOMAINS.join(', ')}`)
  return value
}

export function sourceOf(value: string | undefined, what = '--by'): ConsentSource {
  if (value === undefined) return 'subject'
  if (!(CONSENT_SOURCES as readonly string[]).includes(value))
    throw new VeilError('VEIL_ERR_USAGE', `${what} must be one of ${CONSENT_SOURCES.join(', ')}, not ${value}`)
  return value as ConsentSource
}

export function knownSubject(registry: SubjectRegistry, name: string): Subject {
  const s = registry.get(name)
  if (s === undefined) {
    const names = [HOUSEHOLD, ...registry.list().map((x) => x.name)]
    throw new VeilError('VEIL_ERR_USAGE', `unknown subject ${name}; known: ${names.join(', ')}`)
  }
  return s
}

/** Adds (or with `replace` changes) a subject, refusing a name that still carries an earlier person's history. */
export function addSubject(
  registry: SubjectRegistry,
  log: ConsentLog,
  entry: { name: string; devices: readonly DeviceRef[]; minor: boolean; regions?: readonly string[] | undefined },
  replace = false,
): Subject {
  if (entry.devices.length === 0)
    throw new VeilError('VEIL_ERR_USAGE', `subject add ${entry.name}: name at least one --device PROFILE:ID`)
  if (!replace && registry.get(entry.name) === undefined && log.records().some((r) => r.subject === entry.name)) {
    throw new VeilError(
      'VEIL_ERR_USAGE',
      `subject add ${entry.name}: ${log.file} holds the consent history of an earlier subject of that name; choose another name`,
    )
  }
  return registry.add(entry, { replace })
}

/** Checks and appends one grant or withdrawal. Withdrawing is always possible; a minor's grant needs a guardian. */
export function recordConsent(
  registry: SubjectRegistry,
  log: ConsentLog,
  change: { subject: string; purpose: string; domain: Domain | undefined; granted: boolean; by: ConsentSource },
  byDomain: Map<Domain, Set<string>>,
  now: Date = new Date(),
): ConsentRecord {
  const s = knownSubject(registry, change.subject)
  checkPurpose(change.purpose, change.domain, byDomain)
  if (change.granted && s.minor && change.by === 'subject')
    throw new VeilError('VEIL_ERR_USAGE', `${s.name} is a minor: a consent needs --by guardian`)
  const record: ConsentRecord = {
    time: now.toISOString(),
    subject: s.name,
    purpose: change.purpose,
    domain: change.domain,
    granted: change.granted,
    by: change.by,
  }
  log.append(record)
  return record
}

/** Per domain, the purposes in force that some policy offers there. */
export function consentsInForce(
  s: Subject,
  records: readonly ConsentRecord[],
  defaults: ReadonlySet<string>,
  byDomain: Map<Domain, Set<string>>,
): Record<Domain, string[]> {
  const out = {} as Record<Domain, string[]>
  for (const d of DOMAINS)
    out[d] = [...grantedPurposes(s, d, records, defaults)].filter((p) => byDomain.get(d)?.has(p)).sort()
  return out
}
