import { isPlainObject, MAX_NESTING, SUPPRESS } from '#veil/sdk'

/** Deeper than any device payload; a deeper document is an attack on the stack and is refused. */

const REMOVE: unique symbol = Symbol('veil.remove')

export type Leaf = string | number | boolean | null | Uint8Array

/** What makes a value go. A test may throw to refuse a value it cannot judge (the pipeline drops the message). */
export interface GateTests {
  /** True when a scalar (or raw bytes) must go. */
  leaf(value: Leaf): boolean
  /** True when a whole array must go (a serialised byte array, say). */
  array?(value: readonly unknown[]): boolean
  /** True when a field must go whatever its value. */
  key?(key: string): boolean
}

function isLeaf(value: unknown): value is Leaf {
  return (
    typeof value === 'string' ||
    typeof value === 'number' ||
    typeof value === 'boolean' ||
    value === null ||
    value instanceof Uint8Array
  )
}

/**
 * The walk shared by content gates (image_gate, pii_scan): `drop_field` removes every matching field or array
 * element in place, `drop_message` withholds the message if anything matches. A matching whole payload has no
 * field to drop, so it withholds the message either way. Anything that is not JSON data is refused (fail closed).
 */
export function compileJsonGate(
  name: string,
  tests: GateTests,
  action: 'drop_field' | 'drop_message',
): (doc: unknown) => unknown {
  const { leaf, array, key } = tests

  const strip = (value: unknown, depth: number): unknown => {
    if (isLeaf(value)) return leaf(value) ? REMOVE : value
    if (depth > MAX_NESTING) throw new Error(`${name}: document nested too deeply`)
    if (Array.isArray(value)) {
      if (array?.(value) === true) return REMOVE
      let kept = 0
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i]
        if (strip(item, depth + 1) !== REMOVE) value[kept++] = item
      }
      value.length = kept
      return value
    }
    if (isPlainObject(value)) {
      for (const k in value) if (key?.(k) === true || strip(value[k], depth + 1) === REMOVE) delete value[k]
      return value
    }
    throw new Error(`${name}: the document is not JSON data`)
  }

  const contains = (value: unknown, depth: number): boolean => {
    if (isLeaf(value)) return leaf(value)
    if (depth > MAX_NESTING) throw new Error(`${name}: document nested too deeply`)
    if (Array.isArray(value)) {
      if (array?.(value) === true) return true
      for (const item of value) if (contains(item, depth + 1)) return true
      return false
    }
    if (isPlainObject(value)) {
      for (const k in value) if (key?.(k) === true || contains(value[k], depth + 1)) return true
      return false
    }
    throw new Error(`${name}: the document is not JSON data`)
  }

  if (action === 'drop_message') return (doc) => (contains(doc, 0) ? SUPPRESS : doc)
  return (doc) => (strip(doc, 0) === REMOVE ? SUPPRESS : doc)
}
