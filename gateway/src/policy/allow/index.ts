import { FORBIDDEN_KEYS, isPlainObject } from '../../sdk/path.ts'

import { NOTHING, type Projection } from '../../sdk/policy.ts'

// In the SDK: a policy extension's steps return it too, and must be the same symbol.
export { NOTHING, type Nothing, type Projection } from '../../sdk/policy.ts'

interface Node {
  leaf: boolean
  items: Node | undefined
  children: Map<string, Node>
}

const newNode = (): Node => ({ leaf: false, items: undefined, children: new Map() })

function isScalar(value: unknown): value is string | number | boolean | null {
  return value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
}

/**
 * Compiles an allowlist into one projection closure. Fail closed by construction:
 * - the projection copies only listed paths into a fresh object, so a field the list does not name (including one
 *   a firmware update adds tomorrow) cannot reach the output;
 * - a listed path keeps only a scalar or an array of scalars: to keep part of an object, list its leaves;
 * - `$` keeps a scalar payload (`ON`, `85`) and nothing else;
 * - an empty list keeps nothing.
 */
export function compileAllowlist(paths: readonly string[]): Projection {
  if (paths.length === 0) return () => NOTHING
  const root = newNode()
  for (const path of paths) {
    if (path === '$') {
      root.leaf = true
      continue
    }
    let node = root
    for (const segment of path.split('.')) {
      const isArray = segment.endsWith('[]')
      const key = isArray ? segment.slice(0, -2) : segment
      if (FORBIDDEN_KEYS.has(key)) throw new Error(`path ${path}: the key ${key} is not allowed`)
      let child = node.children.get(key)
      if (child === undefined) {
        child = newNode()
        node.children.set(key, child)
      }
      node = child
      if (isArray) {
        child.items ??= newNode()
        node = child.items
      }
    }
    node.leaf = true
  }
  return compileNode(root)
}

function compileNode(node: Node): Projection {
  const children = [...node.children].map(([key, child]) => [key, compileNode(child)] as const)
  const items = node.items === undefined ? undefined : compileNode(node.items)
  const leaf = node.leaf

  const projectObject = (value: unknown): unknown => {
    if (!isPlainObject(value)) return NOTHING
    let out: Record<string, unknown> | undefined
    for (const [key, project] of children) {
      if (!Object.hasOwn(value, key)) continue
      const kept = project(value[key])
      if (kept !== NOTHING) (out ??= {})[key] = kept
    }
    return out ?? NOTHING
  }

  const projectItems = (value: unknown): unknown => {
    if (items === undefined || !Array.isArray(value)) return NOTHING
    const out: unknown[] = []
    for (const element of value) {
      const kept = items(element)
      if (kept !== NOTHING) out.push(kept)
    }
    return out
  }

  return (value) => {
    if (leaf) {
      if (isScalar(value)) return value
      if (Array.isArray(value) && value.every(isScalar)) return value.slice()
    }
    if (Array.isArray(value)) return projectItems(value)
    return children.length > 0 ? projectObject(value) : NOTHING
  }
}
