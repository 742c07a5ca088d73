/**
 * Checks of topic patterns that come from the configuration (gpsd and Traccar topics, the Zigbee2MQTT base topic),
 * so a bad one stops the start with a clear problem instead of a route that silently matches nothing or too much.
 */

/** Roots no profile may claim: Veil's own output namespace and the broker's. */
const RESERVED_ROOT = /^(veil|\$.*)$/

export interface PatternRules {
  /** `{id}` levels the pattern must have: exactly this many (gpsd: 1; Traccar: 0, the id is in the payload). */
  readonly idLevels: number
  /** Whether `+` (any one level) may appear after the first level. */
  readonly plus: boolean
}

/** Why `pattern` is not a usable topic pattern under `rules`, or undefined if it is. */
export function patternProblem(pattern: string, rules: PatternRules): string | undefined {
  const levels = pattern.split('/')
  if (pattern === '' || levels.some((l) => l === '')) return `${JSON.stringify(pattern)} has an empty level`
  const first = levels[0] as string
  if (first === '+' || first === '{id}' || first.includes('+') || first.includes('{'))
    return `${JSON.stringify(pattern)} must start with a literal level`
  if (RESERVED_ROOT.test(first)) return `${JSON.stringify(pattern)} starts with ${first}, which is reserved`
  for (const level of levels) {
    if (level.includes('#'))
      return `${JSON.stringify(pattern)}: # is not allowed (one stream, one shape: list the topics)`
    if (level === '+' && !rules.plus) return `${JSON.stringify(pattern)}: + is not allowed here`
    if (level !== '+' && level.includes('+')) return `${JSON.stringify(pattern)}: + must be a whole level`
    if (level !== '{id}' && (level.includes('{') || level.includes('}')))
      return `${JSON.stringify(pattern)}: {id} must be a whole level`
  }
  const ids = levels.filter((l) => l === '{id}').length
  if (ids !== rules.idLevels) {
    return rules.idLevels === 0
      ? `${JSON.stringify(pattern)}: no {id} level here, the device id is in the payload`
      : `${JSON.stringify(pattern)} must have exactly ${rules.idLevels} {id} level (the device), found ${ids}`
  }
  return undefined
}

/** A base topic: literal, non-empty levels (Zigbee2MQTT's `mqtt.base_topic`, e.g. `zigbee2mqtt` or `home/z2m`). */
export function baseTopicProblem(base: string): string | undefined {
  return patternProblem(base, { idLevels: 0, plus: false })
}

/**
 * Whether every topic `inner` matches is also matched by `outer`: same length, and at each level `outer` is a
 * wildcard (`+`, `{id}`) or the same literal. Two patterns that overlap only partly (each fixes a level where the
 * other has a wildcard, like `home/z2m/{id}/{id}` and OpenMQTTGateway's `home/+/BTtoMQTT/{id}`) share only the
 * topics nobody publishes in practice (a gateway named `z2m`); the first route in profile order takes those.
 */
export function patternCovers(outer: string, inner: string): boolean {
  const lo = outer.split('/')
  const li = inner.split('/')
  if (lo.length !== li.length) return false
  return lo.every(
    (level, i) => level === '+' || level === '{id}' || (level === li[i] && li[i] !== '+' && li[i] !== '{id}'),
  )
}
