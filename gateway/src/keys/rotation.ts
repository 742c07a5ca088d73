import { CATEGORIES, DOMAINS, type Category, type Domain } from '../sdk/model.ts'

const HOUR_S = 3600
export const DAY_S = 24 * HOUR_S

/**
 * Categories whose streams are derived from where a person is. privacy.md §1 (hmac_pseudo) sets their rotating
 * domains to a 1-day epoch: a location stream under one pseudonym for a month is a month of someone's movements.
 * The robot vacuum's map is a floor plan, not a place on earth, and keeps its domain's epoch.
 */
export const LOCATION_CATEGORIES: ReadonlySet<Category> = new Set<Category>(['gps_tracker'])
export const LOCATION_EPOCH_S = DAY_S

/** svc keeps stable pseudonyms (the owner's own service); ana and 3p rotate every 30 days (privacy.md §1). */
export const DEFAULT_EPOCH_S: Readonly<Record<Domain, number>> = { svc: 0, ana: 30 * DAY_S, '3p': 30 * DAY_S }

/** Longest default gap: exceeds a daily aggregate window plus an hourly release batch (see defaultGapSeconds). */
export const MAX_DEFAULT_GAP_S = 26 * HOUR_S

/**
 * The default silent gap around a rotation moment: a twelfth of the epoch, at most 26 h (2 h for a 1-day epoch,
 * 26 h for 30 days). The gap must exceed the spacing of the domain's messages, or the last copy under the old
 * pseudonym and the first under the new one sit one ordinary interval apart and join by continuity:
 * - ana/3p copies are released in hourly batches and aggregated per hour or per day. 26 h holds at least one whole
 *   day window and one whole hourly batch with nothing of the device in it, so the old and the new pseudonym never
 *   share a batch, and a daily record is missed once (the day's record that falls in the gap does not leave);
 * - a 1-day (location) epoch cannot hold a day-long gap; 2 h holds at least one whole hourly window and batch, and
 *   a daily record leaves under a new pseudonym every day anyway, for every device, so it joins nothing.
 * What it costs: 26 h of 30 days (3.6 %) and 2 h of each day (8.3 %) of the device's copies to that domain.
 */
export function defaultGapSeconds(epochSeconds: number): number {
  return epochSeconds === 0 ? 0 : Math.min(MAX_DEFAULT_GAP_S, Math.floor(epochSeconds / 12))
}

/** How one (domain, category) rotates: the epoch, and the silent gap centred on each device's rotation moment. */
export interface RotationSchedule {
  readonly epochSeconds: number
  readonly gapSeconds: number
}

export const NEVER: RotationSchedule = { epochSeconds: 0, gapSeconds: 0 }

/** The configuration's `domains.<d>` rotation settings (schemas/gateway.config.schema.json). */
export interface RotationSettings {
  readonly epochSeconds?: number
  readonly rotationGapSeconds?: number
  readonly categories?: Partial<
    Record<Category, { readonly epochSeconds?: number; readonly rotationGapSeconds?: number }>
  >
}

export interface RotationProblem {
  readonly path: string
  readonly problem: string
}

/**
 * Every (domain, category)'s schedule from the configuration and the defaults. A location category of a rotating
 * domain rotates at least daily unless its own section says otherwise; a category's gap is the domain's, capped at
 * its own default when its epoch is shorter. Problems name the JSON path: a gap must leave at least half of each
 * epoch live, and a schedule that never rotates has no gap.
 */
export function resolveRotation(settings: Partial<Record<Domain, RotationSettings | undefined>>): {
  schedules: ReadonlyMap<Domain, ReadonlyMap<Category, RotationSchedule>>
  problems: RotationProblem[]
} {
  const problems: RotationProblem[] = []
  const schedules = new Map<Domain, Map<Category, RotationSchedule>>()
  for (const domain of DOMAINS) {
    const section = settings[domain]
    const epoch = section?.epochSeconds ?? DEFAULT_EPOCH_S[domain]
    const gap = section?.rotationGapSeconds ?? defaultGapSeconds(epoch)
    check(problems, `/domains/${domain}`, epoch, gap, section?.rotationGapSeconds !== undefined)
    const byCategory = new Map<Category, RotationSchedule>()
    for (const category of CATEGORIES) {
      const own = section?.categories?.[category]
      const located = LOCATION_CATEGORIES.has(category) && epoch > 0 ? Math.min(epoch, LOCATION_EPOCH_S) : epoch
      const e = own?.epochSeconds ?? located
      const g = own?.rotationGapSeconds ?? (e === epoch ? gap : Math.min(gap, defaultGapSeconds(e)))
      if (own !== undefined)
        check(problems, `/domains/${domain}/categories/${category}`, e, g, own.rotationGapSeconds !== undefined)
      byCategory.set(category, e === 0 ? NEVER : { epochSeconds: e, gapSeconds: g })
    }
    schedules.set(domain, byCategory)
  }
  return { schedules, problems }
}

function check(problems: RotationProblem[], path: string, epoch: number, gap: number, gapGiven: boolean): void {
  if (epoch === 0 && gapGiven && gap > 0)
    problems.push({
      path: `${path}/rotationGapSeconds`,
      problem: 'a domain that never rotates (epochSeconds 0) has no gap',
    })
  if (epoch > 0 && gap * 2 > epoch)
    problems.push({
      path: `${path}/rotationGapSeconds`,
      problem: `${gap} s must not exceed half of the epoch (${epoch} s)`,
    })
}
