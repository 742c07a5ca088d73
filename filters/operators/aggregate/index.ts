import { compileAccessor, defineOperator, DeviceState, type Emission, scheduled, SUPPRESS } from '#veil/sdk'
import { parseStep, roundToStep, type DecimalStep } from '../decimal.ts'
import {
  checkWindow,
  MIN_RELEASE_DELAY_MS,
  NOTHING_DUE,
  releaseDelayMs,
  releaseDue,
  windowStart,
  type Due,
} from '../schedule.ts'

const REDUCERS = ['mean', 'min', 'max'] as const
type Reducer = (typeof REDUCERS)[number]

/** A label becomes a key of `counts` only if it looks like a vocabulary word; anything else is counted as `other`. */
const LABEL = /^[a-z][a-z0-9_-]{0,31}$/
const OTHER = 'other'

interface ValueSpec {
  readonly name: string
  readonly get: (doc: unknown) => unknown
  readonly reduce: Reducer
  readonly step: DecimalStep
  readonly minimum: number
  readonly maximum: number
}

/** One `values` entry as the loader hands it over, defaults filled in; no bound is no limit (±Infinity has no JSON). */
interface ValueSettings {
  readonly path: string
  readonly reduce: Reducer
  readonly step: number
  readonly minimum?: number
  readonly maximum?: number
}

/** The settings as the loader hands them over: checked against configSchema, every default filled in. */
interface Settings {
  readonly window_s: number
  readonly values: Readonly<Record<string, ValueSettings>>
  readonly count_by?: string
  readonly max_labels: number
  readonly count: boolean
  readonly when?: { readonly path: string; readonly in: readonly unknown[] }
}

interface Accumulator {
  n: number
  sum: number
  min: number
  max: number
}

interface Bucket {
  /** Epoch seconds of the open window. */
  start: number
  /** Messages absorbed in the open window. */
  messages: number
  values: Accumulator[]
  counts: Map<string, number>
  due: Due<Record<string, unknown>>[]
}

/**
 * One record per device per aligned window for statistics recipients (issue 13 part 4), released on the gateway's
 * clock 5-30 s after the window ends: numeric fields reduced (mean, min or max, rounded to a step) and, optionally,
 * a count per label of one vocabulary field (Frigate's object labels, Valetudo's states). Every message is
 * suppressed, so neither the rate nor the moments of a device's messages reach the recipient: a window with
 * messages gives one record, a window without gives none. The message count is not reported unless `count` asks
 * for it (`counts` already carries it where the events are the statistic).
 */
export default defineOperator({
  name: 'aggregate',
  description:
    'Absorbs every message and releases one record per device per aligned window: numeric fields reduced, labels counted',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      window_s: { type: 'integer', minimum: 60, maximum: 86_400, default: 3600 },
      values: {
        type: 'object',
        default: {},
        maxProperties: 16,
        propertyNames: { pattern: '^[a-z][a-z0-9_]{0,31}$' },
        additionalProperties: {
          type: 'object',
          required: ['path'],
          additionalProperties: false,
          properties: {
            path: { type: 'string', minLength: 1, maxLength: 200 },
            reduce: { enum: [...REDUCERS], default: 'mean' },
            step: { type: 'number', exclusiveMinimum: 0, default: 1 },
            minimum: {
              type: 'number',
              description: 'values below are not counted (Traccar reports an unknown battery as -1)',
            },
            maximum: { type: 'number' },
          },
        },
      },
      count_by: { type: 'string', minLength: 1, maxLength: 200, description: 'path of a label to count per window' },
      max_labels: { type: 'integer', minimum: 1, maximum: 64, default: 16 },
      count: { type: 'boolean', default: false, description: 'also report the number of messages in the window' },
      when: {
        type: 'object',
        required: ['path', 'in'],
        additionalProperties: false,
        description:
          'only messages whose field is one of these values are counted (Frigate: type new, one per event); the others are absorbed',
        properties: {
          path: { type: 'string', minLength: 1, maxLength: 200 },
          in: { type: 'array', minItems: 1, items: { type: ['string', 'number', 'boolean'] } },
        },
      },
    },
  },
  compile(config, env) {
    const options = config as Settings
    const windowS = checkWindow(options.window_s)
    const values: ValueSpec[] = Object.entries(options.values).map(([name, v]) => ({
      name,
      get: v.path === '$' ? (doc: unknown) => doc : compileAccessor(v.path).get,
      reduce: v.reduce,
      step: parseStep(v.step, `values.${name}.step`),
      minimum: v.minimum ?? -Infinity,
      maximum: v.maximum ?? Infinity,
    }))
    const countBy =
      typeof options.count_by === 'string'
        ? options.count_by === '$'
          ? (doc: unknown) => doc
          : compileAccessor(options.count_by).get
        : undefined
    const maxLabels = options.max_labels
    const reportCount = options.count === true
    const when = options.when
    const whenGet = when === undefined ? undefined : compileAccessor(when.path).get
    const whenValues = new Set(when?.in ?? [])
    if (values.length === 0 && countBy === undefined && !reportCount)
      throw new Error('aggregate needs values, count_by or count: it would report nothing')
    const state = new DeviceState<Bucket>()
    const random = env.random
    let nextCheckMs = Infinity

    const close = (b: Bucket): void => {
      if (b.messages > 0) {
        const record: Record<string, unknown> = { window_start: b.start, window_s: windowS }
        for (let i = 0; i < values.length; i++) {
          const spec = values[i] as ValueSpec
          const acc = b.values[i] as Accumulator
          if (acc.n === 0) continue
          const raw = spec.reduce === 'mean' ? acc.sum / acc.n : spec.reduce === 'min' ? acc.min : acc.max
          record[spec.name] = roundToStep(raw, spec.step)
        }
        if (countBy !== undefined)
          record.counts = Object.fromEntries([...b.counts].sort(([a], [z]) => (a < z ? -1 : a > z ? 1 : 0)))
        if (reportCount) record.count = b.messages
        b.due.push({ record, atMs: (b.start + windowS) * 1000 + releaseDelayMs(random) })
      }
      b.messages = 0
      for (const acc of b.values) Object.assign(acc, { n: 0, sum: 0, min: Infinity, max: -Infinity })
      b.counts = new Map()
    }

    const absorb = (doc: unknown, ctx: { deviceId: string; nowMs: number }): typeof SUPPRESS => {
      if (whenGet !== undefined && !whenValues.has(whenGet(doc))) return SUPPRESS
      const start = windowStart(ctx.nowMs, windowS)
      let b = state.get(ctx.deviceId)
      if (b === undefined) {
        b = {
          start,
          messages: 0,
          values: values.map(() => ({ n: 0, sum: 0, min: Infinity, max: -Infinity })),
          counts: new Map(),
          due: [],
        }
        state.set(ctx.deviceId, b)
      } else if (start < b.start) {
        // An earlier window's message (replay out of order): its window was reported already.
        return SUPPRESS
      } else if (start > b.start) {
        close(b)
        b.start = start
      }
      nextCheckMs = Math.min(nextCheckMs, (b.start + windowS) * 1000 + MIN_RELEASE_DELAY_MS)
      b.messages++
      for (let i = 0; i < values.length; i++) {
        const spec = values[i] as ValueSpec
        const v = spec.get(doc)
        if (typeof v !== 'number' || !Number.isFinite(v) || v < spec.minimum || v > spec.maximum) continue
        const acc = b.values[i] as Accumulator
        acc.n++
        acc.sum += v
        if (v < acc.min) acc.min = v
        if (v > acc.max) acc.max = v
      }
      if (countBy !== undefined) {
        const raw = countBy(doc)
        let label = typeof raw === 'string' && LABEL.test(raw) ? raw : raw === undefined ? undefined : OTHER
        if (label !== undefined) {
          if (!b.counts.has(label) && b.counts.size >= maxLabels) label = OTHER
          b.counts.set(label, (b.counts.get(label) ?? 0) + 1)
        }
      }
      return SUPPRESS
    }

    const tick = (nowMs: number, drain = false): readonly Emission[] => {
      if (!drain && nowMs < nextCheckMs) return NOTHING_DUE
      const out: Emission[] = []
      const current = windowStart(nowMs, windowS)
      let next = Infinity
      for (const [deviceId, b] of state.entries()) {
        if (drain || b.start < current) {
          close(b)
          b.start = drain ? b.start : current
        }
        releaseDue(b.due, drain ? Infinity : nowMs, deviceId, out)
        // A device with nothing open and nothing due is forgotten: the next message starts it afresh.
        if (b.messages === 0 && b.due.length === 0) {
          state.delete(deviceId)
          continue
        }
        next = Math.min(next, b.due[0]?.atMs ?? (b.start + windowS) * 1000 + MIN_RELEASE_DELAY_MS)
      }
      nextCheckMs = next
      return out
    }
    return scheduled(absorb, tick)
  },
})
