/**
 * Dotted paths (`after.camera`, `ENERGY.Total`) compiled once into getters, so no path string is split per
 * message. Only own properties of plain objects are followed: `__proto__` or `constructor` never resolve.
 */
export type Getter = (doc: unknown) => unknown

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value)
}

export function compileGetter(path: string): Getter {
  const keys = path.split('.')
  return (doc) => {
    let current: unknown = doc
    for (const key of keys) {
      if (!isPlainObject(current) || !Object.hasOwn(current, key)) return undefined
      current = current[key]
    }
    return current
  }
}
