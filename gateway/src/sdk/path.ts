/**
 * Dotted paths (`after.camera`, `ENERGY.Total`) compiled once into accessors, so no path string is split per
 * message. Only own properties of plain objects are followed: `__proto__` or `constructor` never resolve.
 */
export type Getter = (doc: unknown) => unknown

export interface Accessor {
  readonly path: string
  get(doc: unknown): unknown
  /** Sets the value if every parent object exists; returns false otherwise. */
  set(doc: unknown, value: unknown): boolean
  /** Removes the key if present. */
  delete(doc: unknown): void
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value)
}

/** Keys that would reach an object's prototype if followed or copied naively; no path may name them. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype'])

export function compileGetter(path: string): Getter {
  return compileAccessor(path).get
}

export function compileAccessor(path: string): Accessor {
  const keys = path.split('.')
  for (const key of keys)
    if (FORBIDDEN_KEYS.has(key) || key === '') throw new Error(`path ${path}: the key "${key}" is not allowed`)
  const last = keys[keys.length - 1] as string
  const parents = keys.slice(0, -1)
  const parentOf = (doc: unknown): Record<string, unknown> | undefined => {
    let current: unknown = doc
    for (const key of parents) {
      if (!isPlainObject(current) || !Object.hasOwn(current, key)) return undefined
      current = current[key]
    }
    return isPlainObject(current) ? current : undefined
  }
  return {
    path,
    get(doc) {
      const parent = parentOf(doc)
      return parent !== undefined && Object.hasOwn(parent, last) ? parent[last] : undefined
    },
    set(doc, value) {
      const parent = parentOf(doc)
      if (parent === undefined) return false
      parent[last] = value
      return true
    },
    delete(doc) {
      const parent = parentOf(doc)
      if (parent !== undefined) delete parent[last]
    },
  }
}
