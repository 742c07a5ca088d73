import { CATEGORIES, DOMAINS } from '../sdk/model.ts'
import type { ConsentBook, ConsentDropReason } from '../consent/book.ts'
import type { Subject } from '../consent/model.ts'
import type { PolicySet } from '../policy/load.ts'
import type { Classifier } from '../streams/classifier.ts'
import type { JsonSchema } from '../sdk/profile.ts'
import { builtinPlugins } from '../builtins.ts'

/** Sparkplug B's policy extension section (schemas/policy.schema.json `metrics`), as a description shows it. */
type MetricsSection = { allow: readonly string[]; operators?: readonly Record<string, unknown>[] } | undefined

/**
 * "What leaves this gateway", generated from the compiled policy set and the profiles' schemas: per category and
 * recipient domain, each stream's kept fields, the operators that transform them, and the known fields dropped.
 */
export function describePolicies(
  set: PolicySet,
  classifier: Classifier,
  optIn: ReadonlySet<string> = new Set(),
): string {
  const lines: string[] = [`Policies in ${set.dir}: ${set.files.length} files, version ${set.version}`, '']
  for (const [category, doc] of set.documents) {
    lines.push(`${category}${doc.description ? `: ${doc.description}` : ''}`)
    // Streams sharing a policy key (canonical JSON and protobuf, Sparkplug's message types) are described once.
    const streams = [...new Map(classifier.streamsOf(category).map((s) => [s.key, s])).values()]
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
        lines.push(`    ${stream.key}`)
        describeVariant(lines, '      ', policy.allow, policy.operators, known, policy.metrics as MetricsSection)
        for (const [name, variant] of Object.entries(policy.opt_in ?? {})) {
          lines.push(`      opt-in ${name} (${optIn.has(name) ? 'ON' : 'off'}):`)
          describeVariant(lines, '        ', variant.allow, variant.operators, known, variant.metrics as MetricsSection)
        }
      }
      const silent = streams.filter((s) => section.streams[s.key] === undefined).map((s) => s.key)
      if (silent.length > 0) lines.push(`    not forwarded: ${silent.join(', ')}`)
    }
    lines.push('')
  }
  return `${lines.join('\n')}\n`
}

/**
 * `veil policy check --subject NAME`: what leaves for one person's devices under their consents as they stand,
 * per device, recipient domain and stream: the policy variant in force (and the purpose it rests on) or why nothing
 * leaves (sharing withdrawn, a region the person does not allow, a minor's protected data, no policy without consent).
 */
export function describeSubject(set: PolicySet, classifier: Classifier, book: ConsentBook, subject: Subject): string {
  const flags = [
    subject.minor ? 'a minor' : undefined,
    subject.regions === undefined ? undefined : `data stays in ${subject.regions.join(', ')}`,
  ].filter((f) => f !== undefined)
  const lines: string[] = [
    `What leaves for ${subject.name}${flags.length > 0 ? ` (${flags.join('; ')})` : ''}, policies version ${set.version}`,
    '',
  ]
  const view = book.byId(subject.id) ?? book.household
  const devices =
    subject.devices.length > 0 ? subject.devices : [{ profile: '*', deviceId: 'every device no subject claims' }]
  for (const device of devices) {
    const streams =
      device.profile === '*'
        ? CATEGORIES.flatMap((c) => classifier.streamsOf(c))
        : CATEGORIES.flatMap((c) => classifier.streamsOf(c)).filter((s) => s.profile === device.profile)
    lines.push(`${device.profile === '*' ? device.deviceId : `${device.profile}:${device.deviceId}`}`)
    for (const stream of new Map(streams.map((s) => [s.key, s])).values()) {
      const entries = set.byStream.get(stream) ?? []
      const doc = set.documents.get(stream.category)
      const known = knownFields(stream.profile, stream.category, stream.name)
      for (const domain of DOMAINS) {
        const entry = entries.find((e) => e.domain === domain)
        const policyDoc = doc?.domains[domain]?.streams[stream.key]
        if (entry === undefined || policyDoc === undefined) continue
        const granted = view.granted[entry.domainIndex] as number
        const policy = entry.variants.find((v) => (granted & v.purposeBit) !== 0) ?? entry.fallback
        const blocked = view.blocked[entry.domainIndex] ?? (view.minor && entry.minorProtected ? 'minor' : undefined)
        const head = `  ${domain} ${stream.key}`
        if (policy === undefined) {
          const offered = entry.variants.map((v) => v.purpose).join(', ')
          lines.push(`${head}: nothing without consent to ${offered}`)
          continue
        }
        if (blocked !== undefined) {
          lines.push(`${head}: nothing (${BLOCKED[blocked]})`)
          continue
        }
        const variant = policy.purpose === undefined ? undefined : policyDoc.opt_in?.[policy.purpose]
        lines.push(`${head}${policy.purpose === undefined ? '' : ` (with consent to ${policy.purpose})`}:`)
        describeVariant(
          lines,
          '    ',
          variant?.allow ?? policyDoc.allow,
          variant?.operators ?? policyDoc.operators,
          known,
          (variant ?? policyDoc).metrics as MetricsSection,
        )
      }
    }
    lines.push('')
  }
  return `${lines.join('\n')}\n`
}

const BLOCKED: Record<ConsentDropReason, string> = {
  consent_withdrawn: 'sharing with this recipient withdrawn',
  residency: 'its upstream is not in a region the person allows',
  minor: "a minor's location, health and camera data never leave for ana or 3p",
}

function describeVariant(
  lines: string[],
  indent: string,
  allow: readonly string[],
  operators: readonly Record<string, unknown>[] | undefined,
  known: readonly string[],
  metrics?: MetricsSection,
): void {
  if (metrics !== undefined) {
    lines.push(`${indent}kept:        type${allow.length > 0 ? `, ${allow.join(', ')}` : ''}`)
    lines.push(
      `${indent}metrics:     ${metrics.allow.length > 0 ? metrics.allow.join(', ') : 'none'}; string values through pii_scan`,
    )
    for (const op of metrics.operators ?? []) {
      const { metric, ...rest } = op
      const [name, settings] = Object.entries(rest)[0] ?? ['?', {}]
      lines.push(`${indent}transformed: ${String(metric)}: ${describeOperator(name, settings)}`)
    }
    for (const op of operators ?? []) {
      const [name, settings] = Object.entries(op)[0] ?? ['?', {}]
      lines.push(`${indent}transformed: ${describeOperator(name, settings)}`)
    }
    lines.push(
      `${indent}dropped:     every metric not named, metric properties and metadata, DataSet, Bytes, File and Template values`,
    )
    return
  }
  if (allow.length === 0 && (operators ?? []).length === 0) {
    lines.push(`${indent}nothing (empty allowlist)`)
    return
  }
  const dropped = known.filter((f) => !allow.some((k) => f === k || f.startsWith(`${k}.`) || f.startsWith(`${k}[]`)))
  lines.push(`${indent}kept:        ${allow.length > 0 ? allow.join(', ') : '(raw bytes, to the operators only)'}`)
  for (const op of operators ?? []) {
    const [name, settings] = Object.entries(op)[0] ?? ['?', {}]
    lines.push(`${indent}transformed: ${describeOperator(name, settings)}`)
  }
  lines.push(
    `${indent}dropped:     ${dropped.length > 0 ? dropped.join(', ') : '(no other known field)'}; and any field not listed`,
  )
}

/**
 * An operator item as written, then the schema defaults it relies on (the loader fills them in), so the description
 * shows every setting in force. Long default lists are counted, not spelled out.
 */
function describeOperator(name: string, settings: unknown): string {
  const written = `${name} ${JSON.stringify(settings)}`
  const properties = builtinPlugins.operators.find((op) => op.name === name)?.configSchema.properties as
    | Record<string, { default?: unknown }>
    | undefined
  const given = settings !== null && typeof settings === 'object' ? settings : {}
  const defaults = Object.entries(properties ?? {})
    .filter(([key, property]) => property.default !== undefined && !Object.hasOwn(given, key))
    .map(
      ([key, { default: value }]) =>
        `${key}: ${Array.isArray(value) && value.length > 4 ? `[${value.length} items]` : JSON.stringify(value)}`,
    )
  return defaults.length === 0 ? written : `${written} (defaults: ${defaults.join(', ')})`
}

function knownFields(profile: string, category: string, stream: string): string[] {
  const def = builtinPlugins.profiles.find((p) => p.name === profile && p.category === category)?.streams[stream]
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
