import { compileAccessor, defineOperator, DeviceState, SUPPRESS } from '#veil/sdk'

/** A longer string is not a state (`ON`, `off`, `toggle`) but text: it is left out of the report. */
const MAX_LAST_LENGTH = 32

interface Window {
  start: number
  events: number
  last: string | number | boolean | undefined
}

/** The settings as the loader hands them over: checked against configSchema, every default filled in. */
interface Settings {
  readonly window_s: number
  readonly value: string
}

export interface EventReport {
  window_start: number
  window_s: number
  events: number
  last?: string | number | boolean
}

/**
 * Holds back event pushes (Tasmota relay toggles `POWER`, `PowerDelta` reports) and reports them per wall-clock
 * window instead: each on/off edge, pushed when it happens, is a timestamped diary of an appliance (privacy.md §1
 * `event_suppress`, 2.2). Every event is suppressed; the first event of a later window releases one report for the
 * previous window: `{window_start, window_s, events, last}`. There is no timer: a window's report leaves with the
 * next event, however late. Replies to cloud commands are another stream and are not this operator's business.
 */
export default defineOperator({
  name: 'event_suppress',
  description: 'Suppresses event pushes and emits one count per aligned window (with the last scalar value)',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      window_s: { type: 'integer', minimum: 60, maximum: 86_400, default: 3600 },
      value: {
        type: 'string',
        minLength: 1,
        maxLength: 200,
        default: '$',
        description: 'path of the value reported as `last`; `$`: the whole (scalar) payload',
      },
    },
  },
  compile(config) {
    const options = config as Settings
    const windowS = options.window_s
    if (!Number.isSafeInteger(windowS) || windowS < 60 || 86_400 % windowS !== 0)
      throw new Error(`window_s must be an integer ≥ 60 that divides 86400, got ${String(windowS)}`)
    const path = options.value
    if (typeof path !== 'string' || path === '') throw new Error('value must be a path')
    const getValue = path === '$' ? (doc: unknown) => doc : compileAccessor(path).get
    const state = new DeviceState<Window>()

    return (doc, ctx) => {
      const last = scalar(getValue(doc))
      const start = Math.floor(ctx.nowMs / 1000 / windowS) * windowS
      const current = state.get(ctx.deviceId)
      if (current === undefined) {
        state.set(ctx.deviceId, { start, events: 1, last })
        return SUPPRESS
      }
      if (start <= current.start) {
        // Same window; an out-of-order event from an earlier window is counted in the current one.
        current.events++
        current.last = last
        return SUPPRESS
      }
      const report: EventReport = { window_start: current.start, window_s: windowS, events: current.events }
      if (current.last !== undefined) report.last = current.last
      current.start = start
      current.events = 1
      current.last = last
      return report
    }
  },
})

function scalar(value: unknown): string | number | boolean | undefined {
  if (typeof value === 'boolean') return value
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined
  if (typeof value === 'string') return value.length <= MAX_LAST_LENGTH ? value : undefined
  return undefined
}
