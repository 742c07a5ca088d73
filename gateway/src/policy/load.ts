import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { basename, extname, join } from 'node:path'
import { Ajv } from 'ajv'
import { describeAjvError, parseYaml } from '../config/yaml.ts'
import policySchema from '../../../schemas/policy.schema.json' with { type: 'json' }
import { compileAllowlist, NOTHING, type Projection } from './allow/index.ts'
import { VeilError, formatProblems, type FileProblem } from '../errors.ts'
import { CATEGORIES, DOMAINS, isCategory, type Category, type Domain } from '../sdk/model.ts'
import type { Classifier, CompiledStream } from '../streams/classifier.ts'
import type { Keyring } from '../keys/keyring.ts'
import {
  isScheduled,
  type CompileEnv,
  type OperatorDefinition,
  type OperatorFn,
  type ScheduledOperatorFn,
} from '../sdk/operator.ts'
import { checkTimeFloors } from './time-check.ts'
import { checkFreeStrings } from './string-check.ts'
import { operatorSettings } from './settings.ts'
import { decodingName } from '../sdk/codec.ts'
import type { PolicyExtension } from '../sdk/policy.ts'
import { domainIndex, purposeBit } from '../consent/book.ts'
import { MINOR_CATEGORIES, MINOR_DOMAINS } from '../consent/model.ts'

/** One domain's compiled policy for one stream: the allowlist projection, then the operators in order. */
export interface StreamPolicy {
  readonly domain: Domain
  readonly allow: Projection
  readonly operators: readonly { readonly name: string; readonly run: OperatorFn }[]
  /** The last operator, when it releases on the gateway's clock (energy_window, aggregate); see Pipeline.tick. */
  readonly scheduled: ScheduledOperatorFn | undefined
  /** 0: copies leave at once; else they are held and released at aligned multiples of this many ms (`release`). */
  readonly releaseMs: number
  /** The opt-in purpose this variant needs (`opt_in.<purpose>`), or undefined for the stream's default. */
  readonly purpose: string | undefined
  /** `purposeBit(purpose)`, 0 for the default: what the filter stage ANDs with a subject's grants. */
  readonly purposeBit: number
}

/**
 * One domain's policies for one stream: every opt-in variant, compiled at load, and the default. Which one a copy
 * gets is decided per message by its subject's consent (the filter stage): the first variant whose purpose is
 * granted, else the default, else no copy.
 */
export interface DomainPolicy {
  readonly domain: Domain
  /** The domain's position in DOMAINS: the index into a subject's consent arrays. */
  readonly domainIndex: number
  /** A minor's copies never leave under this entry (location, health or camera data for ana or 3p). */
  readonly minorProtected: boolean
  readonly variants: readonly StreamPolicy[]
  readonly fallback: StreamPolicy | undefined
}

/** A stream policy whose last operator is scheduled, with the stream its records are routed as. */
export interface ScheduledPolicy {
  readonly stream: CompiledStream
  readonly policy: StreamPolicy
}

export interface PolicySet {
  /** Hash of the policy files (16 hex digits: 12 would read as a bare MAC to a P2 scanner), stamped on every output. */
  readonly version: string
  readonly dir: string
  readonly files: readonly string[]
  /** A stream no domain may receive has no entry. Keyed by the classifier's stream objects: no string per message. */
  readonly byStream: ReadonlyMap<CompiledStream, readonly DomainPolicy[]>
  /** Each stream policy with a scheduled operator once (streams sharing a policy key share its state). */
  readonly scheduled: readonly ScheduledPolicy[]
  /** The parsed documents, for `veil policy check` to describe what leaves the gateway. */
  readonly documents: ReadonlyMap<Category, PolicyDocument>
}

export interface PolicyDocument {
  category: Category
  description?: string
  domains: Partial<Record<Domain, { streams: Record<string, StreamPolicyDocument> }>>
}

export interface StreamPolicyDocument {
  allow: string[]
  operators?: Record<string, unknown>[]
  /** When copies leave: at once, or batched at aligned boundaries (see schemas/policy.schema.json). */
  release?: ReleaseDocument
  /** Replaces allow and operators when the named opt-in switch is on. */
  opt_in?: Record<string, StreamVariantDocument>
  /** A policy extension's section (Sparkplug B's `metrics`), read by the extension of the stream's codec only. */
  [extension: string]: unknown
}

export interface StreamVariantDocument {
  allow: string[]
  operators?: Record<string, unknown>[]
  [extension: string]: unknown
}

export type ReleaseDocument = 'immediate' | { every_s: number }

/** Recipients for statistics and third parties: nothing they get should say when a device acted. */
const BATCHED_DOMAINS: ReadonlySet<Domain> = new Set(['ana', '3p'])
const HOUR_MS = 3_600_000

/**
 * The release interval of a stream policy, in ms (0: immediate). An explicit `release` wins; otherwise ana and 3p
 * are hourly, and a svc stream whose operators floor times is released at the floor's interval (the longest, if
 * several), so a copy's arrival says no more than its floored times do. `operators` are the stream policy's items
 * with their checked settings, so time_floor's `seconds` is there even where the policy relies on its default.
 */
export function releaseIntervalMs(
  domain: Domain,
  release: ReleaseDocument | undefined,
  operators: readonly { readonly name: string; readonly settings: unknown }[],
): number {
  if (release === 'immediate') return 0
  if (release !== undefined) return release.every_s * 1000
  if (BATCHED_DOMAINS.has(domain)) return HOUR_MS
  let floorS = 0
  for (const { name, settings } of operators) {
    if (name !== 'time_floor') continue
    const seconds = (settings as { seconds?: unknown }).seconds
    if (typeof seconds === 'number' && seconds > floorS) floorS = seconds
  }
  return floorS * 1000
}

/** The stream policy one variant names: `opt_in.<variant>`, or the default for undefined. */
export function streamVariant(
  doc: StreamPolicyDocument,
  variant: string | undefined,
): StreamVariantDocument & { variant: string | undefined } {
  const chosen = variant === undefined ? undefined : doc.opt_in?.[variant]
  if (chosen !== undefined) return { ...chosen, variant }
  const { opt_in: _optIn, release: _release, ...rest } = doc
  return { ...rest, variant: undefined }
}

/** Which policy a household with these switches gets: the first variant whose purpose is on, else the default. */
export function selectPolicy(entry: DomainPolicy, optIn: ReadonlySet<string>): StreamPolicy | undefined {
  return entry.variants.find((v) => optIn.has(v.purpose as string)) ?? entry.fallback
}

/** The stream policy in force: the first opt-in variant whose switch is on, else the default. */
export function effectiveStreamPolicy(
  doc: StreamPolicyDocument,
  optIn: ReadonlySet<string>,
): StreamVariantDocument & { variant: string | undefined } {
  for (const [name, variant] of Object.entries(doc.opt_in ?? {}))
    if (optIn.has(name)) return { ...variant, variant: name }
  const { opt_in: _optIn, release: _release, ...variant } = doc
  return { ...variant, variant: undefined }
}

/** The policy extension of a stream's codec, if it has one. */
export function policyExtensionOf(stream: Pick<CompiledStream, 'decoding'>): PolicyExtension<never> | undefined {
  return typeof stream.decoding === 'string' ? undefined : stream.decoding.policy
}

export { NOTHING }

const policyAjv = new Ajv({ allErrors: true, allowUnionTypes: true, strict: false })
const validatePolicyDocument = policyAjv.compile<PolicyDocument>(policySchema)

export interface LoadPolicyOptions {
  readonly classifier: Classifier
  readonly operators: readonly OperatorDefinition[]
  readonly keyring: Keyring
  readonly dataDir: string
  readonly random?: () => number
  /** Values from the configuration that operator settings may name, such as `$privacy_zones`. */
  readonly variables?: Readonly<Record<string, unknown>>
}

const SKIP = Symbol('skip')

/** Configuration values policies may name, with their value when the configuration gives none. */
const DEFAULT_VARIABLES: Readonly<Record<string, unknown>> = { privacy_zones: [], stay_zones: true }

function unknownVariable(value: unknown): string | undefined {
  if (typeof value === 'string') return /^\$[a-z_]+$/.test(value) ? value : undefined
  if (Array.isArray(value)) return value.map(unknownVariable).find((v) => v !== undefined)
  if (value !== null && typeof value === 'object')
    return Object.values(value)
      .map(unknownVariable)
      .find((v) => v !== undefined)
  return undefined
}

/**
 * Replaces `$name` strings in operator settings with configuration values. An operator whose variable is an empty
 * list (no privacy zones configured) has nothing to do and is left out.
 */
function substitute(value: unknown, variables: Readonly<Record<string, unknown>>): unknown {
  if (typeof value === 'string' && value.startsWith('$') && Object.hasOwn(variables, value.slice(1))) {
    const bound = variables[value.slice(1)]
    return Array.isArray(bound) && bound.length === 0 ? SKIP : bound
  }
  if (Array.isArray(value)) {
    const items = value.map((v) => substitute(v, variables))
    return items.includes(SKIP) ? SKIP : items
  }
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      const r = substitute(v, variables)
      if (r === SKIP) return SKIP
      out[k] = r
    }
    return out
  }
  return value
}

/**
 * Uniform in [0, 1) from the operating system's CSPRNG, 53 random bits per call. Bytes are drawn 4 KiB at a
 * time: one randomBytes call per number cost ~7 µs, most of a noisy fix's budget.
 */
const POOL_BYTES = 4096
let pool = Buffer.alloc(0)
let poolOffset = POOL_BYTES
export function secureRandom(): number {
  if (poolOffset + 8 > pool.length) {
    pool = randomBytes(POOL_BYTES)
    poolOffset = 0
  }
  const high = pool.readUInt32BE(poolOffset)
  const low = pool.readUInt32BE(poolOffset + 4)
  poolOffset += 8
  return (high * 2 ** 21 + (low >>> 11)) / 2 ** 53
}

/**
 * Loads every `<category>.yaml` in a directory, checks it completely, and compiles it into closures. All problems
 * of all files are collected before failing, each naming the file, the JSON path and what is wrong, so one run of
 * `veil policy check` shows everything to fix.
 */
export function loadPolicySet(dir: string, options: LoadPolicyOptions): PolicySet {
  let names: string[]
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory')
    names = readdirSync(dir)
      .filter((n) => ['.yaml', '.yml'].includes(extname(n)))
      .sort()
  } catch (err) {
    throw new VeilError('VEIL_ERR_POLICY', `${dir}: cannot read the policy directory: ${(err as Error).message}`)
  }
  if (names.length === 0) {
    throw new VeilError('VEIL_ERR_POLICY', `${dir}: no policy files (*.yaml); without policies Veil forwards nothing`)
  }

  const problems: FileProblem[] = []
  const hash = createHash('sha256')
  const documents = new Map<Category, PolicyDocument>()
  const byStream = new Map<CompiledStream, DomainPolicy[]>()
  const scheduled: ScheduledPolicy[] = []
  const operatorsByName = new Map(options.operators.map((op) => [op.name, op]))

  for (const name of names) {
    const file = join(dir, name)
    const text = readFileSync(file, 'utf8')
    hash.update(name).update('\u0000').update(text).update('\u0000')
    const parsed = parseYaml(file, text)
    problems.push(...parsed.problems)
    const doc = parsed.value
    if (parsed.problems.length > 0) continue
    if (!validatePolicyDocument(doc)) {
      for (const e of validatePolicyDocument.errors ?? [])
        problems.push({ file, path: e.instancePath, problem: describeAjvError(e) })
      continue
    }
    const expected = basename(name, extname(name))
    if (doc.category !== expected) {
      problems.push({
        file,
        path: '/category',
        problem: `is ${doc.category} but the file is named ${name}; name it ${doc.category}.yaml`,
      })
      continue
    }
    documents.set(doc.category, doc)
    compileDocument(file, doc, options, operatorsByName, byStream, scheduled, problems)
  }

  if (problems.length > 0) throw new VeilError('VEIL_ERR_POLICY', formatProblems(problems))
  return { version: hash.digest('hex').slice(0, 16), dir, files: names, byStream, scheduled, documents }
}

const pointer = (...parts: string[]): string =>
  `/${parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/')}`

function compileDocument(
  file: string,
  doc: PolicyDocument,
  options: LoadPolicyOptions,
  operatorsByName: ReadonlyMap<string, OperatorDefinition>,
  byStream: Map<CompiledStream, DomainPolicy[]>,
  scheduledPolicies: ScheduledPolicy[],
  problems: FileProblem[],
): void {
  if (!isCategory(doc.category)) return
  // Several streams may share a policy key (Sparkplug's NBIRTH, NDATA and NDEATH are all sparkplug/node).
  const streams = new Map<string, CompiledStream[]>()
  for (const s of options.classifier.streamsOf(doc.category)) streams.set(s.key, [...(streams.get(s.key) ?? []), s])
  // Every extension the profiles bring, so a section given to a stream of another format is refused, not ignored.
  const extensions = new Set<PolicyExtension<never>>()
  for (const category of CATEGORIES)
    for (const s of options.classifier.streamsOf(category)) {
      const extension = policyExtensionOf(s)
      if (extension !== undefined) extensions.add(extension)
    }
  const random = options.random ?? secureRandom
  for (const domain of DOMAINS) {
    const section = doc.domains[domain]
    if (section === undefined) continue
    for (const [key, streamDocument] of Object.entries(section.streams)) {
      const base = pointer('domains', domain, 'streams', key)
      const shared = streams.get(key)
      const stream = shared?.[0]
      if (shared === undefined || stream === undefined) {
        problems.push({
          file,
          path: base,
          problem: `no ${doc.category} profile has the stream ${key}; known: ${[...streams.keys()].join(', ')}`,
        })
        continue
      }
      problems.push(...checkTimeFloors(file, base, domain, streamDocument, stream, operatorsByName.get('time_floor')))
      const extension = policyExtensionOf(stream)
      problems.push(
        ...checkFreeStrings(
          file,
          base,
          {
            key: stream.key,
            decoding: decodingName(stream.decoding),
            schema: stream.schema,
            scansStrings: extension?.scansStrings === true,
          },
          streamDocument,
        ),
      )
      // Every variant is compiled now, whatever anyone consents to: a grant or a withdrawal picks among them per
      // message, with no reload.
      let fallback: StreamPolicy | undefined
      const variants: StreamPolicy[] = []
      for (const name of [undefined, ...Object.keys(streamDocument.opt_in ?? {})]) {
        const policy = compileVariant(domain, streamDocument, name, base, stream)
        if (policy === undefined) continue
        if (policy.scheduled !== undefined) scheduledPolicies.push({ stream, policy })
        if (name === undefined) fallback = policy
        else variants.push(policy)
      }
      if (fallback === undefined && variants.length === 0) continue
      const entry: DomainPolicy = {
        domain,
        domainIndex: domainIndex(domain),
        minorProtected: MINOR_DOMAINS.has(domain) && MINOR_CATEGORIES.has(doc.category),
        variants,
        fallback,
      }
      for (const s of shared) {
        let list = byStream.get(s)
        if (list === undefined) {
          list = []
          byStream.set(s, list)
        }
        list.push(entry)
      }
    }
  }

  /** One variant of a domain's stream policy compiled, or undefined (its problems recorded, or nothing to forward). */
  function compileVariant(
    domain: Domain,
    streamDocument: StreamPolicyDocument,
    variantName: string | undefined,
    base: string,
    stream: CompiledStream,
  ): StreamPolicy | undefined {
    const key = stream.key
    const streamPolicy = streamVariant(streamDocument, variantName)
    const at = variantName === undefined ? base : `${base}/opt_in/${variantName}`
    const extension = policyExtensionOf(stream)
    const binary = stream.decoding === 'binary'
    const section = extension === undefined ? undefined : (streamPolicy[extension.key] as never)
    const misplaced = [...extensions].find((e) => e !== extension && streamPolicy[e.key] !== undefined)
    if (misplaced !== undefined) {
      problems.push({ file, path: `${at}/${misplaced.key}`, problem: misplaced.misplaced(key) })
      return undefined
    }
    if (binary && streamPolicy.allow.length > 0) {
      problems.push({
        file,
        path: `${at}/allow`,
        problem: `${key} carries raw bytes; an allowlist cannot forward them: leave allow empty and name an operator (image_gate)`,
      })
      return undefined
    }
    // An empty allowlist with no operator forwards nothing: the domain simply has no policy for the stream.
    if (
      streamPolicy.allow.length === 0 &&
      (streamPolicy.operators ?? []).length === 0 &&
      !(extension?.forwards(section) ?? false)
    )
      return undefined
    let allow: Projection
    try {
      // Binary payloads go to the operators as they are; encode refuses any bytes that come out (fail closed).
      allow = binary
        ? (value) => value
        : extension !== undefined
          ? extension.compileAllow(streamPolicy.allow)
          : compileAllowlist(streamPolicy.allow)
    } catch (err) {
      problems.push({ file, path: `${at}/allow`, problem: (err as Error).message })
      return undefined
    }
    const env: CompileEnv = {
      category: doc.category,
      domain,
      streamKey: key,
      keyring: options.keyring,
      random,
      dataDir: options.dataDir,
    }
    /** One operator item compiled, or undefined (its problem recorded, or an operator with nothing to do). */
    const compileItem = (
      name: string,
      rawConfig: unknown,
      opPath: string,
      adapt?: (config: unknown, definition: OperatorDefinition) => unknown,
      checkedSettings?: (settings: unknown) => void,
    ): OperatorFn | undefined => {
      const substituted = substitute(rawConfig, { ...DEFAULT_VARIABLES, ...options.variables })
      const unknown = unknownVariable(substituted)
      if (unknown !== undefined) {
        problems.push({
          file,
          path: opPath,
          problem: `unknown variable ${unknown}; known: ${Object.keys(DEFAULT_VARIABLES)
            .map((v) => `$${v}`)
            .join(', ')}`,
        })
        return undefined
      }
      if (substituted === SKIP) return undefined
      const definition = operatorsByName.get(name)
      if (definition === undefined) {
        problems.push({
          file,
          path: opPath,
          problem: `unknown operator ${name}; known: ${[...operatorsByName.keys()].join(', ') || 'none'}`,
        })
        return undefined
      }
      const checked = operatorSettings(definition, adapt === undefined ? substituted : adapt(substituted, definition))
      if (!checked.ok) {
        for (const e of checked.errors)
          problems.push({ file, path: `${opPath}${e.instancePath}`, problem: describeAjvError(e) })
        return undefined
      }
      checkedSettings?.(checked.settings)
      try {
        return definition.compile(checked.settings, env)
      } catch (err) {
        problems.push({ file, path: opPath, problem: (err as Error).message })
        return undefined
      }
    }
    const operators: { name: string; run: OperatorFn }[] = []
    if (extension !== undefined) {
      const context = {
        at,
        problem: (path: string, problem: string) => problems.push({ file, path, problem }),
        compileOperator: compileItem,
      }
      operators.push(...extension.compileSteps(section, streamPolicy.allow, context))
    }
    const itemSettings: { name: string; settings: unknown }[] = []
    for (const [index, item] of (streamPolicy.operators ?? []).entries()) {
      const [name, rawConfig] = Object.entries(item)[0] as [string, unknown]
      const run = compileItem(name, rawConfig, `${at}/operators/${index}/${name}`, undefined, (settings) =>
        itemSettings.push({ name, settings }),
      )
      if (run !== undefined) operators.push({ name, run })
    }
    if (binary && operators.length === 0) {
      problems.push({
        file,
        path: `${at}/operators`,
        problem: `${key} carries raw bytes and no operator is left to transform them`,
      })
      return undefined
    }
    const last = operators.at(-1)
    const scheduledAt = operators.findIndex((op) => isScheduled(op.run))
    if (scheduledAt !== -1 && scheduledAt !== operators.length - 1) {
      problems.push({
        file,
        path: `${at}/operators/${scheduledAt}`,
        problem: `${operators[scheduledAt]?.name ?? 'a scheduled operator'} releases records on the gateway's clock and must be the last operator of the stream`,
      })
      return undefined
    }
    const scheduled = last !== undefined && isScheduled(last.run) ? last.run : undefined
    // The default variant's release applies to its opt-in variants too, unless the variant is immediate anyway.
    const releaseMs = scheduled === undefined ? releaseIntervalMs(domain, streamDocument.release, itemSettings) : 0
    return {
      domain,
      allow,
      operators,
      scheduled,
      releaseMs,
      purpose: variantName,
      purposeBit: variantName === undefined ? 0 : purposeBit(variantName),
    }
  }
}
