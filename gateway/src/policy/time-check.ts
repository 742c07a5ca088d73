import type { FileProblem } from '../errors.ts'
import type { Domain } from '../sdk/model.ts'
import type { OperatorDefinition } from '../sdk/operator.ts'
import type { CompiledStream } from '../streams/classifier.ts'
import type { TimeUnit } from '../sdk/time.ts'
import type { StreamPolicyDocument } from './load.ts'
import { operatorSettings } from './settings.ts'

/**
 * The coarsest exact time a domain may receive by default, in seconds: the owner's service a minute (privacy.md §1
 * `time_floor`, events 60 s; §2.3 Frigate times), the vendor's statistics and third parties an hour (telemetry 1 h;
 * 3P receives no more than ANA).
 */
export const MIN_FLOOR_SECONDS: Readonly<Record<Domain, number>> = { svc: 60, ana: 3600, '3p': 3600 }

/**
 * Operators whose output replaces the document (energy_window: `{window_start, window_s, energy_wh}`; aggregate:
 * window, reduced values and counts; job_area: `{cleaned_m2}`; map_minimize: `{floor_m2}`): no field the allowlist
 * kept, time or not, survives them.
 */
const REPLACING_OPERATORS: ReadonlySet<string> = new Set(['energy_window', 'aggregate', 'job_area', 'map_minimize'])

interface Variant {
  readonly allow: readonly string[]
  readonly operators?: readonly Record<string, unknown>[]
  /** A policy extension's section (Sparkplug B's `metrics`). */
  readonly [extension: string]: unknown
}

interface Floor {
  readonly paths: readonly string[]
  readonly seconds: unknown
  readonly format: unknown
  readonly at: string
}

/**
 * Checks a stream policy against the stream's declared time fields (`x-veil-time`, streams/time-fields.ts), in
 * every variant:
 * - a time_floor naming a declared time field must read it in its declared unit (`format: epoch_s` for an epoch_s
 *   field; `auto` is refused too: it guesses the unit from the value);
 * - in the default variant, every declared time field the allowlist lets leave is covered by such a time_floor of at
 *   least the domain's MIN_FLOOR_SECONDS. Opt-in variants (`opt_in:`, such as precise_location or
 *   camera_exact_times) are a separate consent and may keep exact times.
 * `at` is the JSON pointer of the stream's policy (`/domains/svc/streams/canonical~1location`); `timeFloor` the
 * registered time_floor, whose schema defaults a floor's settings are read with.
 */
export function checkTimeFloors(
  file: string,
  at: string,
  domain: Domain,
  doc: StreamPolicyDocument,
  stream: CompiledStream,
  timeFloor: OperatorDefinition | undefined,
): FileProblem[] {
  const problems: FileProblem[] = []
  if (stream.timeFields.size === 0) return problems
  const variants: [string, Variant, boolean][] = [
    [at, doc, false],
    ...Object.entries(doc.opt_in ?? {}).map(([name, v]): [string, Variant, boolean] => [
      `${at}/opt_in/${name}`,
      v,
      true,
    ]),
  ]
  for (const [base, variant, optIn] of variants) {
    const floors: Floor[] = []
    let replaced = false
    for (const [index, item] of (variant.operators ?? []).entries()) {
      const entry = Object.entries(item)[0]
      if (entry === undefined) continue
      const [name, raw] = entry
      if (REPLACING_OPERATORS.has(name)) replaced = true
      // An unknown operator is reported where the operators are compiled.
      if (name !== 'time_floor' || timeFloor === undefined) continue
      // Bad settings are reported there too; the floor is read from them as they are, with the defaults filled in.
      const given = raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? raw : {}
      const settings = operatorSettings(timeFloor, given).settings as {
        readonly paths?: unknown
        readonly seconds?: unknown
        readonly format?: unknown
      }
      const paths = Array.isArray(settings.paths)
        ? settings.paths.filter((p): p is string => typeof p === 'string')
        : []
      const floor: Floor = {
        paths,
        seconds: settings.seconds,
        format: settings.format,
        at: `${base}/operators/${index}/time_floor`,
      }
      floors.push(floor)
      for (const path of paths) {
        const unit = stream.timeFields.get(path)
        if (unit !== undefined && floor.format !== unit) {
          problems.push({
            file,
            path: `${floor.at}/format`,
            problem: `is ${String(floor.format)} but ${stream.key} declares ${path} as ${unit} (x-veil-time); write format: ${unit}, or the floor is not in the field's unit`,
          })
        }
      }
    }
    if (optIn || replaced) continue
    for (const [path, unit, allowIndex] of leavingTimes(stream, variant)) {
      const naming = floors.filter((f) => f.paths.includes(path))
      const covering = naming.filter((f) => f.format === unit)
      const fieldAt = `${base}/allow/${allowIndex}`
      // A time_floor naming the field in another format is reported above, once.
      if (naming.length > 0 && covering.length === 0) continue
      if (covering.length === 0) {
        problems.push({
          file,
          path: fieldAt,
          problem: `lets ${path} (a time, ${unit}) leave to ${domain} without a time_floor; add - time_floor: { paths: [${path}], seconds: ${MIN_FLOOR_SECONDS[domain]}, format: ${unit} } (exact times need an opt_in variant)`,
        })
        continue
      }
      const min = MIN_FLOOR_SECONDS[domain]
      if (!covering.some((f) => typeof f.seconds === 'number' && f.seconds >= min)) {
        const first = covering[0] as Floor
        problems.push({
          file,
          path: `${first.at}/seconds`,
          problem: `is ${String(first.seconds)} but ${domain} gets ${path} floored to at least ${min} s by default (exact times need an opt_in variant)`,
        })
      }
    }
  }
  return problems
}

/**
 * The declared time fields a variant lets leave, with their unit and the index of the allowlist entry that keeps
 * them. An allowlist entry keeps a path exactly (a listed object keeps nothing: its leaves must be listed), or, for a
 * stream whose codec has a policy extension, the entry the extension names (Sparkplug B's metric timestamps go with
 * its `timestamp` as soon as any metric is kept).
 */
function leavingTimes(stream: CompiledStream, variant: Variant): [string, TimeUnit, number][] {
  const out: [string, TimeUnit, number][] = []
  const extension = typeof stream.decoding === 'string' ? undefined : stream.decoding.policy
  for (const [path, unit] of stream.timeFields) {
    let index = variant.allow.indexOf(path)
    const keptBy =
      index === -1 ? extension?.timeFieldKeptBy?.(path, variant.allow, variant[extension.key] as never) : undefined
    if (keptBy !== undefined) index = variant.allow.indexOf(keptBy)
    if (index !== -1) out.push([path, unit, index])
  }
  return out
}
