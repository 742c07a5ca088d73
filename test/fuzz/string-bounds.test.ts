/**
 * The string-length limit is the schemas': every field a shipped policy keeps that can hold a string is bounded in
 * its stream's schema (maxLength, enum, const or pattern), so a device cannot push a megabyte of free text through
 * an allowlist. Payload and decompressed size bound everything else. Streams whose operators replace the whole
 * document (map_minimize) are exempt: none of their strings leave. Sparkplug B streams have no JSON Schema: their
 * documents are built from protobuf fields whose types the wire check enforces (a timestamp is a uint64), and their
 * string metrics pass pii_scan.
 */
import { tmpdir } from 'node:os'
import { describe, expect, it } from 'vitest'
import { builtinOperators } from '../../filters/operators/index.ts'
import { builtinProfiles } from '../../filters/profiles/index.ts'
import { DEFAULT_POLICIES } from '../../gateway/src/config/config.ts'
import { Keyring } from '../../gateway/src/keys/keyring.ts'
import { loadPolicySet } from '../../gateway/src/policy/load.ts'
import { Classifier } from '../../gateway/src/streams/classifier.ts'
import { decodingName } from '../../gateway/src/sdk/codec.ts'

type Schema = Readonly<Record<string, unknown>>
const REPLACES_DOCUMENT = new Set(['map_minimize'])

function deref(root: Schema, node: unknown): Schema | undefined {
  if (node === null || typeof node !== 'object') return undefined
  const ref = (node as Schema).$ref
  if (typeof ref === 'string')
    return deref(root, (root.$defs as Record<string, unknown> | undefined)?.[ref.replace('#/$defs/', '')])
  return node as Schema
}

/** The node and its oneOf/anyOf alternatives, dereferenced. */
function alternatives(root: Schema, node: Schema): Schema[] {
  const alts = [node, ...((node.oneOf as unknown[]) ?? []), ...((node.anyOf as unknown[]) ?? [])]
  return alts.map((a) => deref(root, a)).filter((a): a is Schema => a !== undefined)
}

/** The schema nodes an allowlist path (`a.b`, `items[].x`, `$`) can reach; an unnamed field is unconstrained (`{}`). */
function nodesAt(root: Schema, path: string): Schema[] {
  let nodes: Schema[] = [root]
  if (path === '$') return nodes
  for (const segment of path.split('.')) {
    const isArray = segment.endsWith('[]')
    const key = isArray ? segment.slice(0, -2) : segment
    const next: Schema[] = []
    for (const node of nodes.flatMap((n) => alternatives(root, n))) {
      if (
        node.type !== undefined &&
        node.type !== 'object' &&
        !(Array.isArray(node.type) && node.type.includes('object'))
      )
        continue
      const properties = (node.properties ?? {}) as Record<string, unknown>
      const extra = node.additionalProperties
      const child = Object.hasOwn(properties, key)
        ? deref(root, properties[key])
        : extra === false
          ? undefined
          : (deref(root, extra) ?? {})
      if (child === undefined) continue
      next.push(isArray ? (deref(root, child.items) ?? {}) : child)
    }
    nodes = next
  }
  return nodes
}

function unboundedString(root: Schema, node: Schema): boolean {
  return alternatives(root, node).some((a) => {
    if (a.enum !== undefined || a.const !== undefined || a.maxLength !== undefined || a.pattern !== undefined)
      return false
    if ((a.oneOf !== undefined || a.anyOf !== undefined) && a !== node) return false
    const type = a.type
    if (a.oneOf !== undefined || a.anyOf !== undefined) return type === 'string'
    return type === undefined || type === 'string' || (Array.isArray(type) && type.includes('string'))
  })
}

describe('string lengths are bounded by the schemas', () => {
  it('every field a shipped policy keeps that can hold a string has a length bound', () => {
    const classifier = new Classifier(builtinProfiles)
    const policies = loadPolicySet(DEFAULT_POLICIES, {
      classifier,
      operators: builtinOperators,
      keyring: new Keyring(Buffer.alloc(32), new Map()),
      dataDir: tmpdir(),
    })
    const unbounded: string[] = []
    let checked = 0
    for (const doc of policies.documents.values()) {
      for (const [domain, section] of Object.entries(doc.domains)) {
        for (const [key, policy] of Object.entries(section?.streams ?? {})) {
          const stream = classifier.streams.find((s) => s.key === key && s.category === doc.category)
          const definition = builtinProfiles.find((p) => p.name === stream?.profile && p.category === doc.category)
            ?.streams[stream?.name ?? '']
          if (definition !== undefined && decodingName(definition.decoding) === 'sparkplug') continue
          const schema = definition?.schema
          const variants = [policy, ...Object.values(policy.opt_in ?? {})]
          for (const variant of variants) {
            if ((variant.operators ?? []).some((op) => Object.keys(op).some((name) => REPLACES_DOCUMENT.has(name))))
              continue
            for (const path of variant.allow) {
              checked++
              const nodes = schema === undefined ? [{}] : nodesAt(schema, path)
              if (schema !== undefined && nodes.some((n) => unboundedString(schema, n)))
                unbounded.push(`${domain} ${key} ${path}`)
              if (schema === undefined) unbounded.push(`${domain} ${key} ${path} (no schema)`)
            }
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(50)
    expect(unbounded).toEqual([])
  })

  it('finds an unbounded string where there is one', () => {
    const schema: Schema = {
      type: 'object',
      properties: { a: { type: 'string' }, b: { type: 'string', maxLength: 8 }, c: { $ref: '#/$defs/n' } },
      $defs: { n: { oneOf: [{ type: 'number' }, { type: 'string' }] } },
    }
    expect(nodesAt(schema, 'a').some((n) => unboundedString(schema, n))).toBe(true)
    expect(nodesAt(schema, 'b').some((n) => unboundedString(schema, n))).toBe(false)
    expect(nodesAt(schema, 'c').some((n) => unboundedString(schema, n))).toBe(true)
    expect(nodesAt(schema, 'zz').some((n) => unboundedString(schema, n))).toBe(true)
    expect(nodesAt({ type: 'object', additionalProperties: false }, 'zz')).toEqual([])
  })
})
