import { defineOperator, DeviceState, SUPPRESS } from '#veil/sdk'

const DAY_MS = 86_400_000

interface Budget {
  /** nowMs of the last forwarded message. */
  lastMs: number
  /** UTC day number (epoch days) that `count` refers to. */
  day: number
  count: number
}

/** The settings as the loader hands them over: checked against configSchema, every default filled in. */
interface Settings {
  readonly min_interval_s: number
  readonly max_per_day: number
}

export default defineOperator({
  name: 'downsample',
  description: 'Forwards at most one message per min_interval_s and max_per_day per UTC day per device',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      min_interval_s: {
        type: 'number',
        minimum: 0,
        maximum: 604_800,
        default: 900,
        description: 'minimum time between forwarded messages',
      },
      max_per_day: {
        type: 'integer',
        minimum: 1,
        maximum: 1_000_000,
        default: 96,
        description: 'forwarded messages per device and UTC day',
      },
    },
  },
  compile(config) {
    const c = config as Settings
    const intervalMs = c.min_interval_s * 1000
    const maxPerDay = c.max_per_day
    if (!(intervalMs >= 0 && Number.isFinite(intervalMs)))
      throw new Error(`min_interval_s must be a finite number ≥ 0, got ${c.min_interval_s}`)
    if (!(Number.isInteger(maxPerDay) && maxPerDay >= 1))
      throw new Error(`max_per_day must be an integer ≥ 1, got ${maxPerDay}`)
    const budgets = new DeviceState<Budget>()

    return (doc, ctx) => {
      const now = ctx.nowMs
      if (!Number.isFinite(now)) throw new Error('downsample needs a finite clock')
      const day = Math.floor(now / DAY_MS)
      const budget = budgets.get(ctx.deviceId)
      if (budget === undefined) {
        budgets.set(ctx.deviceId, { lastMs: now, day, count: 1 })
        return doc
      }
      // A clock that went backwards gives a negative gap and is suppressed until it passes lastMs + interval:
      // replayed or re-ordered input can never buy extra fixes.
      if (now - budget.lastMs < intervalMs) return SUPPRESS
      if (day === budget.day) {
        if (budget.count >= maxPerDay) return SUPPRESS
        budget.count++
      } else {
        budget.day = day
        budget.count = 1
      }
      budget.lastMs = now
      return doc
    }
  },
})
