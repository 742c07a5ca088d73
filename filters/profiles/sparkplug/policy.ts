import { compileScanner, DETECTORS } from '../../operators/pii_scan/detect.ts'
import {
  definePolicyExtension,
  NOTHING,
  type OperatorContext,
  type OperatorDefinition,
  type OperatorFn,
  type Projection,
  SUPPRESS,
} from '#veil/sdk'
import type { MetricValue, SparkplugDocument, SparkplugMetric } from './codec.ts'

/** The `metrics:` section of a Sparkplug stream policy. */
export interface MetricsPolicyDocument {
  /** Metric names kept: exact (`Temperature`, `Node Control/Rebirth`), or a prefix ending in `*` (`Energy/*`). */
  allow: string[]
  /** Operators on the values of matching metrics, in order: `{ metric: <name or prefix*>, <operator>: <settings> }`. */
  operators?: Record<string, unknown>[]
}

/** Fields of a Sparkplug message a policy's `allow` may name; metrics are kept through `metrics:` only. */
export const ENVELOPE_FIELDS: readonly string[] = ['timestamp']

/**
 * The envelope projection of a Sparkplug stream: the message type always (a recipient must know a birth from a
 * death), `timestamp` when listed, and the metrics for the metrics step that follows (which always runs, so no
 * metric passes unless `metrics.allow` names it). Names no other field: `seq` is Veil's own on output.
 */
export function compileEnvelope(allow: readonly string[]): Projection {
  for (const path of allow) {
    if (!ENVELOPE_FIELDS.includes(path))
      throw new Error(
        `${path}: a Sparkplug message's allow may name only ${ENVELOPE_FIELDS.join(', ')}; metrics are kept with metrics.allow`,
      )
  }
  const keepTimestamp = allow.includes('timestamp')
  return (value) => {
    const doc = value as SparkplugDocument
    const out: SparkplugDocument = { type: doc.type, metrics: doc.metrics }
    if (keepTimestamp && doc.timestamp !== undefined) out.timestamp = doc.timestamp
    return out
  }
}

/** Compiles a name pattern: exact, or a prefix when it ends in `*` (a lone `*` is every metric). */
export function compileNameMatcher(patterns: readonly string[]): (name: string) => boolean {
  const exact = new Set(patterns.filter((p) => !p.endsWith('*')))
  const prefixes = patterns.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1))
  if (prefixes.length === 0) return (name) => exact.has(name)
  return (name) => exact.has(name) || prefixes.some((p) => name.startsWith(p))
}

/** Where an operator's settings name the value it works on; for a metric that is the whole value (`$`). */
const VALUE_SETTINGS = [
  ['paths', ['$']],
  ['path', '$'],
  ['total', '$'],
] as const

/** Property names an operator's settings schema declares, in its own properties or in any oneOf/anyOf branch. */
function declaredSettings(schema: Readonly<Record<string, unknown>>): Set<string> {
  const names = new Set(Object.keys((schema.properties as Record<string, unknown> | undefined) ?? {}))
  for (const key of ['oneOf', 'anyOf'] as const) {
    const branches = schema[key]
    if (Array.isArray(branches))
      for (const branch of branches)
        for (const name of declaredSettings(branch as Record<string, unknown>)) names.add(name)
  }
  return names
}

/** Fills the settings that name a value with `$` when the policy leaves them out. */
export function metricOperatorSettings(config: unknown, configSchema: Readonly<Record<string, unknown>>): unknown {
  const declared = declaredSettings(configSchema)
  const settings: Record<string, unknown> =
    config !== null && typeof config === 'object' && !Array.isArray(config)
      ? { ...(config as Record<string, unknown>) }
      : {}
  for (const [key, value] of VALUE_SETTINGS)
    if (declared.has(key) && !Object.hasOwn(settings, key)) settings[key] = value
  return settings
}

export interface CompiledMetricOperator {
  readonly matches: (name: string) => boolean
  readonly run: OperatorFn
}

const scanString = compileScanner([...DETECTORS])
const MAX_DECIDED_NAMES = 10_000

/**
 * The metrics step of a Sparkplug stream policy, run right after the envelope projection: keeps the metrics whose
 * names the allowlist matches, runs the matching operators on each value (each metric has its own operator state:
 * the device id the operator sees is the device's plus the metric name), drops a metric whose value an operator
 * removes or turns into something other than a number, string, boolean or null, and drops every string value in
 * which pii_scan finds an email, phone number, MAC, IP address, IMEI or plate, and every metric matched by a
 * prefix whose name pii_scan flags (the part after the prefix is the device's choice). Births and data left without a
 * metric are withheld (nothing to say); deaths go on, since that a node went away is their whole content. Metric
 * timestamps are acquisition times, kept only when the envelope's `timestamp` is (`keepTimestamps`).
 */
export function compileMetricsStep(
  allow: readonly string[],
  operators: readonly CompiledMetricOperator[],
  keepTimestamps: boolean,
): OperatorFn {
  const exact = new Set(allow.filter((p) => !p.endsWith('*')))
  const byPrefix = compileNameMatcher(allow.filter((p) => p.endsWith('*')))
  // A site has a fixed set of metric names: decide each once. Bounded, so invented names cannot grow it.
  const decided = new Map<string, boolean>()
  const allowed = (name: string): boolean => {
    let ok = decided.get(name)
    if (ok === undefined) {
      // A name the policy spells out is the policy's; the rest of a prefix match is the device's, and is scanned.
      ok = exact.has(name) || (byPrefix(name) && scanString(name) === undefined)
      if (decided.size >= MAX_DECIDED_NAMES) decided.clear()
      decided.set(name, ok)
    }
    return ok
  }
  return (value, ctx) => {
    const doc = value as SparkplugDocument
    const kept: SparkplugMetric[] = []
    for (const metric of doc.metrics) {
      if (!allowed(metric.name)) continue
      let v: unknown = metric.value
      if (operators.length > 0) {
        let metricCtx: OperatorContext | undefined
        for (const op of operators) {
          if (!op.matches(metric.name)) continue
          metricCtx ??= { ...ctx, deviceId: `${ctx.deviceId}\u0000${metric.name}` }
          v = op.run(v, metricCtx)
          if (v === SUPPRESS || v === NOTHING || v === undefined) break
        }
      }
      if (!isMetricValue(v)) continue
      if (typeof v === 'string' && scanString(v) !== undefined) continue
      const out: SparkplugMetric = { name: metric.name, dataType: metric.dataType, value: v }
      if (keepTimestamps && metric.timestamp !== undefined) out.timestamp = metric.timestamp
      if (metric.isHistorical === true) out.isHistorical = true
      if (metric.isTransient === true) out.isTransient = true
      kept.push(out)
    }
    if (kept.length === 0 && doc.type !== 'NDEATH' && doc.type !== 'DDEATH') return NOTHING
    const out: SparkplugDocument = { type: doc.type, metrics: kept }
    if (doc.timestamp !== undefined) out.timestamp = doc.timestamp
    return out
  }
}

function isMetricValue(v: unknown): v is MetricValue {
  return v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))
}

/**
 * The `metrics:` section as the profile's policy extension: the envelope projection instead of the allowlist, then
 * the metrics step, always first and always present (without metrics.allow no metric passes: fail closed).
 */
export const sparkplugPolicy = definePolicyExtension<MetricsPolicyDocument>({
  key: 'metrics',
  scansStrings: true,
  misplaced: (streamKey) =>
    `${streamKey} is no Sparkplug B stream; metrics applies to sparkplug/node and sparkplug/device only`,
  compileAllow: compileEnvelope,
  forwards: (section) => (section?.allow ?? []).length > 0,
  // Metric timestamps are acquisition times: they leave with the envelope's `timestamp` once any metric is kept.
  timeFieldKeptBy: (path, _allow, section) =>
    path === 'metrics[].timestamp' && (section?.allow ?? []).length > 0 ? 'timestamp' : undefined,
  compileSteps(section, allow, context) {
    const metricOperators: CompiledMetricOperator[] = []
    for (const [index, item] of (section?.operators ?? []).entries()) {
      const { metric, ...rest } = item as { metric?: unknown } & Record<string, unknown>
      const entries = Object.entries(rest)
      const opPath = `${context.at}/metrics/operators/${index}`
      if (typeof metric !== 'string' || metric === '' || entries.length !== 1) {
        context.problem(opPath, 'each item is { metric: <name or prefix*>, <operator>: <settings> }')
        continue
      }
      const [name, rawConfig] = entries[0] as [string, unknown]
      const adapt = (config: unknown, definition: OperatorDefinition): unknown =>
        metricOperatorSettings(config, definition.configSchema)
      const run = context.compileOperator(name, rawConfig, `${opPath}/${name}`, adapt)
      if (run !== undefined) metricOperators.push({ matches: compileNameMatcher([metric]), run })
    }
    return [
      { name: 'metrics', run: compileMetricsStep(section?.allow ?? [], metricOperators, allow.includes('timestamp')) },
    ]
  },
})
