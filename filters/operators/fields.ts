/**
 * Applies a per-value transform at a list of policy paths. Shared by the field operators (round, bucket,
 * time_floor, truncate_ip, hmac_pseudo, tokenize) so they treat paths the same way:
 * - `a.b` is a dotted path compiled once with compileAccessor;
 * - `items[].id` maps over an array (the allowlist accepts this syntax, so an operator must too: a path it
 *   silently failed to match would let the raw value through);
 * - `$` is the whole document when the stream's payload is a scalar (`allow: [$]`).
 * A value the transform rejects (REMOVE) is deleted, never passed through; an array element it rejects is dropped.
 * A rejected `$` document suppresses the message, since nothing of it is left to send.
 */
import { compileAccessor, isPlainObject, type OperatorContext, type OperatorFn, SUPPRESS } from '#veil/sdk'

export const REMOVE: unique symbol = Symbol('veil.remove')
export type Remove = typeof REMOVE
export type ValueFn = (value: unknown, ctx: OperatorContext) => unknown

/** Mutates the container in place. */
type Mapper = (container: unknown, ctx: OperatorContext) => void

function compileMapper(path: string, fn: ValueFn): Mapper {
  const cut = path.indexOf('[]')
  if (cut === -1) {
    const accessor = compileAccessor(path)
    return (container, ctx) => {
      const value = accessor.get(container)
      if (value === undefined) return
      const out = fn(value, ctx)
      if (out === REMOVE) accessor.delete(container)
      else accessor.set(container, out)
    }
  }
  const head = compileAccessor(path.slice(0, cut))
  const rest = path.slice(cut + 2)
  if (rest !== '' && !rest.startsWith('.')) throw new Error(`path ${path}: "[]" must end a segment`)
  const inner = rest === '' ? undefined : compileMapper(rest.slice(1), fn)
  return (container, ctx) => {
    const list = head.get(container)
    if (list === undefined) return
    // Something other than a list where the path expects one cannot be processed: it goes (fail closed).
    if (!Array.isArray(list)) {
      head.delete(container)
      return
    }
    let kept = 0
    for (let i = 0; i < list.length; i++) {
      const element: unknown = list[i]
      if (inner === undefined) {
        const out = fn(element, ctx)
        if (out !== REMOVE) list[kept++] = out
      } else if (isPlainObject(element)) {
        inner(element, ctx)
        list[kept++] = element
      }
    }
    list.length = kept
  }
}

/** Validates the paths at load and returns the per-message closure. */
export function compileFieldMap(paths: readonly string[], fn: ValueFn): OperatorFn {
  if (paths.length === 0) throw new Error('paths must name at least one field')
  if (paths.includes('$')) {
    if (paths.length > 1) throw new Error('paths: "$" (the whole scalar payload) cannot be combined with other paths')
    return (doc, ctx) => {
      const out = fn(doc, ctx)
      return out === REMOVE ? SUPPRESS : out
    }
  }
  const mappers = paths.map((path) => compileMapper(path, fn))
  if (mappers.length === 1) {
    const only = mappers[0] as Mapper
    return (doc, ctx) => {
      only(doc, ctx)
      return doc
    }
  }
  return (doc, ctx) => {
    for (let i = 0; i < mappers.length; i++) (mappers[i] as Mapper)(doc, ctx)
    return doc
  }
}

/** JSON Schema for a `paths` setting. */
export const pathsSchema = {
  type: 'array',
  minItems: 1,
  uniqueItems: true,
  items: { type: 'string', minLength: 1, maxLength: 200 },
} as const

/** The `paths` setting, checked again here because compile must not trust a caller that skipped validation. */
export function readPaths(options: { readonly paths?: unknown }): readonly string[] {
  const paths = options.paths
  if (!Array.isArray(paths) || paths.length === 0 || !paths.every((p) => typeof p === 'string' && p.length > 0)) {
    throw new Error('paths must be a non-empty list of field paths')
  }
  return paths as readonly string[]
}
