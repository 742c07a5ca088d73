/**
 * The closed vocabularies of Veil. Metric labels are drawn only from these lists, so label cardinality is bounded
 * by construction: device ids, topics and payload values can never become a label.
 */
export const CATEGORIES = ['smart_plug', 'camera', 'robot_vacuum', 'body_scale', 'gps_tracker'] as const
export type Category = (typeof CATEGORIES)[number]

export const DOMAINS = ['svc', 'ana', '3p'] as const
export type Domain = (typeof DOMAINS)[number]

export const STAGES = ['ingest', 'classify', 'decode', 'validate', 'filter', 'encode', 'route', 'forward'] as const
export type StageName = (typeof STAGES)[number]

/**
 * Why a message (or one recipient's copy of it) was not forwarded. `no_birth`: Sparkplug data, or a death, for an
 * edge node or device whose birth Veil has not seen (or has forgotten); `stale_death`: a Sparkplug NDEATH whose
 * bdSeq is not the current session's (a Will left over from an earlier connection); `rotation_gap`: a copy for a
 * rotating domain inside the silent gap around its device's pseudonym rotation.
 */
export const DROP_REASONS = [
  'unknown_topic',
  'topic_too_long',
  'too_many_topic_levels',
  'payload_too_large',
  'packet_too_large',
  'undecodable',
  'decompressed_too_large',
  'nesting_too_deep',
  'invalid',
  'no_birth',
  'stale_death',
  'no_policy',
  'empty_after_filter',
  'operator_error',
  'suppressed',
  'encode_error',
  'queue_full',
  'upstream_error',
  'internal_error',
  // The durable upstream queue: past its TTL, pushed out by the byte bound, not writable, unreadable on disk.
  'expired',
  'evicted',
  'queue_error',
  'queue_corrupt',
  'not_authorized',
  // A copy inside the silent gap around its device's pseudonym rotation (keys/keyring.ts).
  'rotation_gap',
  // A batched copy with the release schedule full (forward/release.ts): dropped rather than sent early.
  'release_full',
  // Consent (gateway/src/consent): the subject withdrew the purpose the copy was filtered under, or sharing with
  // the domain; the domain's region is not one the subject allows; a minor's location, health or camera data for
  // ana or 3p.
  'consent_withdrawn',
  'residency',
  'minor',
  // A queued copy sealed under a subject key that was forgotten (veil subject forget): crypto-shredded, never sent.
  'erased',
] as const
export type DropReason = (typeof DROP_REASONS)[number]

/** Label used before classification has named a category. */
export const UNCLASSIFIED = 'unclassified'
export type CategoryLabel = Category | typeof UNCLASSIFIED
/** Every category label, `unclassified` first: metric handles are indexed by position in this list. */
export const CATEGORY_LABELS: readonly CategoryLabel[] = [UNCLASSIFIED, ...CATEGORIES]

export function isCategory(value: string): value is Category {
  return (CATEGORIES as readonly string[]).includes(value)
}

export function isDomain(value: string): value is Domain {
  return (DOMAINS as readonly string[]).includes(value)
}

/** Topic root of the filtered namespace: `veil/<domain>/<category>/<pseudonym>/<stream>`. */
export const FILTERED_ROOT = 'veil'
