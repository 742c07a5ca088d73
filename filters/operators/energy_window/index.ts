import { defineOperator, SUPPRESS } from '../../../gateway/src/policy/operator.ts'
import { DeviceState } from '../../../gateway/src/policy/state.ts'
import { compileAccessor } from '../../../gateway/src/profiles/path.ts'
import { parseStep, roundToStep } from '../decimal.ts'
import { settings } from '../fields.ts'

const UNITS = { kWh: 1000, Wh: 1, Wmin: 1 / 60 } as const
type Unit = keyof typeof UNITS

interface Window {
  /** Epoch seconds, a multiple of window_s. */
  start: number
  /** The counter (Wh) at the first message of the window. */
  baselineWh: number
  /** The counter (Wh) at the latest message, to notice a reset. */
  lastWh: number
  /** What earlier rounding withheld (|carry| ≤ step/2), so the rounded records still add up to the counter. */
  carryWh: number
}

export interface EnergyRecord {
  window_start: number
  window_s: number
  energy_wh: number
}

/**
 * Turns a cumulative energy counter (Tasmota `ENERGY.Total`) into one record per wall-clock window:
 * `{window_start, window_s, energy_wh}`. A plug meters one appliance, so its power series is a diary of that
 * appliance (NILM: privacy.md §1 `energy_window`, 2.2, EE15, GRE12, MM10); a 1-hour total hides anything that
 * runs for less than about 2 h. The output replaces the document entirely, so no instantaneous field (Power,
 * Voltage, Current, Factor…) can survive whatever the allowlist kept. Every message between window boundaries is
 * suppressed: the recipient learns nothing about when the device reported.
 */
export default defineOperator({
  name: 'energy_window',
  description: 'Replaces a cumulative energy counter with one rounded energy record per aligned window; suppresses everything else',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      total: { type: 'string', minLength: 1, maxLength: 200, default: 'ENERGY.Total', description: 'cumulative counter; an array (multi-channel) is summed; `$` for a scalar payload' },
      unit: { enum: Object.keys(UNITS), default: 'kWh' },
      window_s: { type: 'integer', minimum: 60, maximum: 86_400, default: 3600, description: '3600 by default; 900 only with opt-in' },
      step_wh: { type: 'number', exclusiveMinimum: 0, default: 10 },
    },
  },
  compile(config) {
    const options = settings(config)
    const total = (options.total ?? 'ENERGY.Total') as string
    const unit = (options.unit ?? 'kWh') as Unit
    const factor = UNITS[unit]
    if (factor === undefined) throw new Error(`unit must be one of ${Object.keys(UNITS).join(', ')}`)
    const windowS = (options.window_s ?? 3600) as number
    // Windows that divide a day start at the same clock times every day (xx:00, xx:15), whatever the epoch.
    if (!Number.isSafeInteger(windowS) || windowS < 60 || 86_400 % windowS !== 0) throw new Error(`window_s must be an integer ≥ 60 that divides 86400, got ${String(windowS)}`)
    const step = parseStep((options.step_wh ?? 10) as number, 'step_wh')
    const getTotal = total === '$' ? (doc: unknown) => doc : compileAccessor(total).get
    const state = new DeviceState<Window>()

    return (doc, ctx) => {
      const wh = counterWh(getTotal(doc), total) * factor
      // 1e308 kWh is a finite reading but not a finite Wh count; Infinity - Infinity would be a NaN record.
      if (!Number.isFinite(wh)) throw new Error(`${total} is out of range`)
      const start = Math.floor(ctx.nowMs / 1000 / windowS) * windowS
      const current = state.get(ctx.deviceId)
      if (current === undefined) {
        state.set(ctx.deviceId, { start, baselineWh: wh, lastWh: wh, carryWh: 0 })
        return SUPPRESS
      }
      // A message from an earlier window (a replay out of order, a clock step back) is stale: its counter is
      // older than the baseline, and taking it for a reset would throw away the current window.
      if (start < current.start) return SUPPRESS
      if (wh < current.lastWh) {
        // A counter reset (power loss, EnergyReset): a delta across it is meaningless, so the window is dropped.
        current.start = start
        current.baselineWh = wh
        current.lastWh = wh
        current.carryWh = 0
        return SUPPRESS
      }
      if (start === current.start) {
        current.lastWh = wh
        return SUPPRESS
      }
      const exact = wh - current.baselineWh + current.carryWh
      let energy = roundToStep(exact, step)
      if (energy < 0) energy = 0
      const record: EnergyRecord = { window_start: current.start, window_s: start - current.start, energy_wh: energy }
      current.start = start
      current.baselineWh = wh
      current.lastWh = wh
      current.carryWh = exact - energy
      return record
    }
  },
})

function counterWh(value: unknown, path: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value
  if (Array.isArray(value) && value.length > 0) {
    let sum = 0
    for (const item of value) {
      if (typeof item !== 'number' || !Number.isFinite(item) || item < 0) throw new Error(`${path} has a non-numeric channel`)
      sum += item
    }
    // Channels near Number.MAX_VALUE add up past it.
    if (!Number.isFinite(sum)) throw new Error(`${path} is out of range`)
    return sum
  }
  throw new Error(`${path} is not a non-negative number or array of numbers`)
}
