import { DOMAINS } from '../model.ts'
import type { PolicySet } from '../policy/load.ts'
import type { Classifier } from '../profiles/classifier.ts'
import type { JsonSchema } from '../profiles/types.ts'
import { builtinProfiles } from '../../../filters/profiles/index.ts'

/**
 * "What leaves this gateway", generated from the compiled policy set and the profiles' schemas: per category and
 * recipient domain, each stream's kept fields, the operators that transform them, and the known fields dropped.
 */
export function describePolicies(set: PolicySet, classifier: Classifier): string {
  const lines: string[] = [`Policies in ${set.dir}: ${set.files.length} files, version ${set.version}`, '']
  for (const [category, doc] of set.documents) {
    lines.push(`${category}${doc.description ? `: ${doc.description}` : ''}`)
    const streams = classifier.streamsOf(category)
    for (const domain of DOMAINS) {
      const section = doc.domains[domain]
      if (section === undefined) {
        lines.push(`  ${domain}: receives nothing`)
        continue
      }
      lines.push(`  ${domain}:`)
      for (const stream of streams) {
        const policy = section.streams[stream.key]
        if (policy === undefined) continue
        const known = knownFields(stream.profile, stream.category, stream.name)
        const kept = policy.allow
        const dropped = known.filter((f) => !kept.some((k) => f === k || f.startsWith(`${k}.`) || f.startsWith(`${k}[]`)))
        const ops = (policy.operators ?? []).map((o) => Object.keys(o)[0]).join(' -> ')
        lines.push(`    ${stream.key}`)
        lines.push(`      kept:        ${kept.length > 0 ? kept.join(', ') : '(nothing)'}`)
        if (ops !== '') lines.push(`      transformed: ${ops}`)
        lines.push(`      dropped:     ${dropped.length > 0 ? dropped.join(', ') : '(no other known field)'}; and any field not listed`)
      }
      const silent = streams.filter((s) => section.streams[s.key] === undefined).map((s) => s.key)
      if (silent.length > 0) lines.push(`    not forwarded: ${silent.join(', ')}`)
    }
    lines.push('')
  }
  return `${lines.join('\n')}\n`
}

function knownFields(profile: string, category: string, stream: string): string[] {
  const def = builtinProfiles.find((p) => p.name === profile && p.category === category)?.streams[stream]
  if (def?.schema === undefined) return []
  return leaves(def.schema, def.schema, '')
}

/** Leaf paths a schema names, in allowlist syntax. */
function leaves(schema: JsonSchema, root: JsonSchema, prefix: string, depth = 0): string[] {
  if (depth > 6) return []
  const ref = schema.$ref
  if (typeof ref === 'string' && ref.startsWith('#/$defs/')) {
    const target = (root.$defs as Record<string, JsonSchema> | undefined)?.[ref.slice(8)]
    return target === undefined ? [] : leaves(target, root, prefix, depth + 1)
  }
  const props = schema.properties as Record<string, JsonSchema> | undefined
  if (props !== undefined) {
    return Object.entries(props).flatMap(([k, v]) => leaves(v, root, prefix === '' ? k : `${prefix}.${k}`, depth + 1))
  }
  const items = schema.items as JsonSchema | undefined
  if (schema.type === 'array' && items?.properties !== undefined) return leaves(items, root, `${prefix}[]`, depth + 1)
  return prefix === '' ? ['$'] : [prefix]
}
