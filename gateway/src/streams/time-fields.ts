import type { JsonSchema } from '../sdk/profile.ts'
import { TIME_UNITS, type TimeUnit } from '../sdk/time.ts'

/**
 * How a stream's time fields are declared: each time property of a stream schema carries `"x-veil-time"` with its
 * one unit (`epoch_s`, `epoch_ms` or `iso`), so that policies can be checked against it at load (policy/time-check.ts:
 * every declared time that leaves is floored by a time_floor of the same format).
 */
export const TIME_KEYWORD = 'x-veil-time'

/** Paths in allowlist syntax (`a.b`, `items[].ts`, `$` for a scalar payload) to the declared unit. */
export type TimeFields = ReadonlyMap<string, TimeUnit>

/**
 * The time fields a schema declares. Follows `properties`, `items`, local `$ref`s (`#/$defs/...`) and the branches
 * of `anyOf`, `oneOf` and `allOf` (a branch is the same field). One field has one unit: two branches declaring two
 * units for one path throw.
 */
export function declaredTimeFields(schema: JsonSchema): Map<string, TimeUnit> {
  const out = new Map<string, TimeUnit>()
  const walk = (node: unknown, path: string, depth: number): void => {
    if (depth > 32 || node === null || typeof node !== 'object' || Array.isArray(node)) return
    const s = node as JsonSchema
    const unit = s[TIME_KEYWORD]
    if (unit !== undefined) {
      if (!TIME_UNITS.includes(unit as TimeUnit))
        throw new Error(`${path}: ${TIME_KEYWORD} must be one of ${TIME_UNITS.join(', ')}`)
      const seen = out.get(path)
      if (seen !== undefined && seen !== unit)
        throw new Error(`${path}: declared both ${seen} and ${String(unit)}; a time field has one unit`)
      out.set(path, unit as TimeUnit)
    }
    const ref = s.$ref
    if (typeof ref === 'string') {
      const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref)
      const defs = m === null ? undefined : (schema[m[1] as string] as Record<string, unknown> | undefined)
      if (m !== null && defs !== undefined) walk(defs[m[2] as string], path, depth + 1)
    }
    const props = s.properties
    if (props !== null && typeof props === 'object') {
      for (const [key, child] of Object.entries(props as Record<string, unknown>))
        walk(child, path === '$' ? key : `${path}.${key}`, depth + 1)
    }
    if (s.items !== undefined && !Array.isArray(s.items)) walk(s.items, path === '$' ? '$[]' : `${path}[]`, depth + 1)
    for (const key of ['anyOf', 'oneOf', 'allOf']) {
      const branches = s[key]
      if (Array.isArray(branches)) for (const branch of branches) walk(branch, path, depth + 1)
    }
  }
  walk(schema, '$', 0)
  return out
}
