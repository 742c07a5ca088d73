import type { FileProblem } from '../errors.ts'
import type { JsonSchema } from '../sdk/profile.ts'
import { FORBIDDEN_KEYS } from '../sdk/path.ts'
import { TEXT_DROP_DEFAULT_KEYS as TEXT_DROP_DEFAULTS } from '../sdk/text.ts'

/**
 * Load-time check that no free string leaves (issue 13 part 6): every string a stream policy's allowlist lets
 * through must have a declared shape in the stream's schema (`enum`, `const`, `pattern` or `format`, on the field
 * or on every branch that admits a string), or be covered by an operator that scans or replaces it: `pii_scan`
 * anywhere in the list, an operator that rewrites the field into its own output (`time_floor`, `bucket`,
 * `round`, `hmac_pseudo`, `tokenize`, `kinematics` on their paths; `energy_window`, `job_area`, `map_minimize`
 * on the whole document), or `text_drop` naming the field's key. A string without either is a load error naming
 * the file, the JSON path of the allowlist entry and the field.
 *
 * The check reads schemas only; it costs nothing per message. Every variant of a stream (default and each
 * opt-in) is checked, whichever switch is on, so a policy set cannot become unsafe by turning an opt-in on.
 */

interface VariantDocument {
  readonly allow: readonly string[]
  readonly operators?: readonly Record<string, unknown>[]
}

export interface StreamDocumentForCheck extends VariantDocument {
  readonly opt_in?: Readonly<Record<string, VariantDocument>>
}

/** What a stream looks like to the check: its key, how it is decoded, and its payload schema. */
export interface StreamForCheck {
  readonly key: string
  readonly decoding: string
  readonly schema?: JsonSchema | undefined
  /** Its policy extension checks every string that leaves itself (Sparkplug B's metric values). */
  readonly scansStrings?: boolean
}

/** Covers every string of the document (scans it, or replaces the document with the operator's own record). */
const WHOLE_DOCUMENT: ReadonlySet<string> = new Set(['pii_scan', 'energy_window', 'job_area', 'map_minimize'])

const asList = (value: unknown): string[] =>
  Array.isArray(value)
    ? value.filter((v): v is string => typeof v === 'string')
    : typeof value === 'string'
      ? [value]
      : []

/** The policy paths an operator's settings name whose strings it replaces or removes (never passes unchanged). */
function coveredPaths(name: string, settings: Record<string, unknown>): string[] {
  switch (name) {
    case 'time_floor':
      return settings.paths === undefined ? ['tst'] : asList(settings.paths)
    case 'round':
    case 'hmac_pseudo':
    case 'tokenize':
      return asList(settings.paths)
    case 'bucket':
      return asList(settings.path)
    case 'kinematics':
      return [...asList(settings.speed ?? 'vel'), ...asList(settings.drop)]
    default:
      return []
  }
}

/** text_drop's keys (its defaults when not given), matched against the last key of a path. */
function droppedKeys(settings: Record<string, unknown>, defaults: readonly string[]): string[] {
  return settings.keys === undefined ? [...defaults] : asList(settings.keys)
}

type Shape = 'shaped' | 'free' | 'absent'

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function resolveRef(node: JsonSchema, root: JsonSchema): JsonSchema | undefined {
  const ref = node.$ref
  if (typeof ref !== 'string') return node
  if (ref === '#') return root
  if (!ref.startsWith('#/')) return undefined
  let target: unknown = root
  for (const part of ref.slice(2).split('/')) {
    const key = part.replaceAll('~1', '/').replaceAll('~0', '~')
    target = isObject(target) ? target[key] : undefined
  }
  return isObject(target) ? target : undefined
}

/** The sub-schemas a value at `node` may match: `anyOf`/`oneOf` branches (each combined with the node itself). */
function branches(node: JsonSchema, root: JsonSchema, depth: number): JsonSchema[] {
  const resolved = resolveRef(node, root)
  if (resolved === undefined || depth > 16) return [{}]
  const alternatives = [resolved.anyOf, resolved.oneOf].find(Array.isArray) as unknown[] | undefined
  if (alternatives === undefined) return [resolved]
  const { anyOf: _a, oneOf: _o, ...own } = resolved
  return alternatives.flatMap((branch) => (isObject(branch) ? branches({ ...own, ...branch }, root, depth + 1) : [{}]))
}

function admitsString(node: JsonSchema): boolean {
  if (node.const !== undefined) return typeof node.const === 'string'
  if (Array.isArray(node.enum)) return node.enum.some((v) => typeof v === 'string')
  const type = node.type
  if (type === undefined) return true
  return Array.isArray(type) ? type.includes('string') : type === 'string'
}

const hasShape = (node: JsonSchema): boolean =>
  node.const !== undefined ||
  Array.isArray(node.enum) ||
  typeof node.pattern === 'string' ||
  typeof node.format === 'string'

/** Whether a value at `node` can be a free string: a string (or array of strings) with no declared shape. */
function leafShape(node: JsonSchema | undefined, root: JsonSchema, depth = 0): Shape {
  if (node === undefined) return 'free'
  for (const branch of branches(node, root, depth)) {
    if (admitsString(branch) && !hasShape(branch)) return 'free'
    // The allowlist keeps an array of scalars at a leaf: its items count too.
    if (branch.const !== undefined || Array.isArray(branch.enum)) continue
    const type = branch.type
    // A `pattern` or `format` without a type constrains strings only: an array there would be unconstrained.
    const mayBeArray = type === undefined || type === 'array' || (Array.isArray(type) && type.includes('array'))
    if (mayBeArray) {
      const items = branch.items
      if (items === undefined || items === true) return 'free'
      if (isObject(items) && leafShape(items, root, depth + 1) === 'free') return 'free'
    }
  }
  return 'shaped'
}

/** The schema of the value at an allowlist path (`a.b`, `list[].c`, `$`), or undefined where any value may be. */
function schemaAt(schema: JsonSchema, path: string): JsonSchema | 'absent' | undefined {
  if (path === '$') return schema
  let nodes: JsonSchema[] = [schema]
  for (const segment of path.split('.')) {
    const isArray = segment.endsWith('[]')
    const key = isArray ? segment.slice(0, -2) : segment
    const next: JsonSchema[] = []
    for (const node of nodes) {
      for (const branch of branches(node, schema, 0)) {
        const props = branch.properties
        if (isObject(props) && Object.hasOwn(props, key)) {
          const child = props[key]
          if (isObject(child)) next.push(child)
          else if (child !== false) return undefined
          continue
        }
        const additional = branch.additionalProperties
        if (additional === false) continue
        if (
          branch.type !== undefined &&
          branch.type !== 'object' &&
          !(Array.isArray(branch.type) && branch.type.includes('object'))
        )
          continue
        if (isObject(additional) && branch.patternProperties === undefined) next.push(additional)
        else return undefined
      }
    }
    if (isArray) {
      nodes = []
      for (const node of next) {
        for (const branch of branches(node, schema, 0)) {
          if (isObject(branch.items)) nodes.push(branch.items)
          else if (branch.items !== false) return undefined
        }
      }
    } else nodes = next
    if (nodes.length === 0) return 'absent'
  }
  // Several declarations of one path (branches): the value is shaped only if each is.
  return nodes.length === 1 ? nodes[0] : { anyOf: nodes }
}

/**
 * The problems of one stream policy: one per allowlist entry of any variant that lets a free string leave. Streams
 * without allowlisted JSON (binary bytes, or a policy extension that scans its strings: Sparkplug B's metrics) have none.
 */
export function checkFreeStrings(
  file: string,
  base: string,
  stream: StreamForCheck,
  doc: StreamDocumentForCheck,
): FileProblem[] {
  if (stream.decoding === 'binary' || stream.scansStrings === true) return []
  const problems: FileProblem[] = []
  const variants: [string, VariantDocument][] = [
    [base, doc],
    ...Object.entries(doc.opt_in ?? {}).map(([name, v]): [string, VariantDocument] => [`${base}/opt_in/${name}`, v]),
  ]
  for (const [at, variant] of variants) {
    let whole = false
    const covered = new Set<string>()
    const dropped = new Set<string>()
    for (const item of variant.operators ?? []) {
      const [name, raw] = Object.entries(item)[0] ?? ['', undefined]
      const settings = isObject(raw) ? raw : {}
      if (WHOLE_DOCUMENT.has(name)) whole = true
      for (const p of coveredPaths(name, settings)) covered.add(p)
      if (name === 'text_drop') for (const k of droppedKeys(settings, TEXT_DROP_DEFAULTS)) dropped.add(k)
    }
    if (whole) continue
    for (const [index, path] of variant.allow.entries()) {
      if (covered.has(path) || dropped.has(path.split('.').at(-1)?.replace(/\[\]$/, '') ?? '')) continue
      // The allowlist compiler refuses such a path with its own problem.
      if (path.split('.').some((k) => FORBIDDEN_KEYS.has(k.replace(/\[\]$/, '')))) continue
      const node = stream.schema === undefined ? undefined : schemaAt(stream.schema, path)
      if (node === 'absent') continue
      if (leafShape(node, stream.schema ?? {}) === 'free') {
        problems.push({
          file,
          path: `${at}/allow/${index}`,
          problem: `${stream.key} field ${path} lets a free string leave: ${node === undefined ? 'the schema does not declare it' : 'its schema declares no enum, const, pattern or format'}; declare its shape in the schema or add pii_scan (or an operator that replaces it)`,
        })
      }
    }
  }
  return problems
}
