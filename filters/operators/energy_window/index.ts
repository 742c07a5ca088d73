import { compileAccessor, defineOperator, DeviceState, type Emission, scheduled, SUPPRESS } from '#veil/sdk'
import { parseStep, roundToStep } from '../decimal.ts'
import {
  checkWindow,
  MIN_RELEASE_DELAY_MS,
  NOTHING_DUE,
  releaseDelayMs,
  releaseDue,
  windowStart,
  type Due,
} from '../schedule.ts'

const UNITS = { kWh: 1000, Wh: 1, Wmin: 1 / 60 } as const
type Unit = keyof typeof UNITS

export interface EnergyRecord {
  window_start: number
  window_s: number
  energy_wh: number
}

/** The settings as the loader hands them over: checked against configSchema, every default filled in. */
interface Settings {
  readonly total: string
  readonly unit: Unit
  readonly window_s: number
  readonly step_wh: number
  readonly idle_s: number
}

interface Meter {
  /** Epoch seconds of the open window, a multiple of window_s. */
  start: number
  /** The counter (Wh) at the latest message, to take deltas and notice a reset. */
  lastWh: number
  /** Energy counted in the open window so far. */
  usedWh: number
  /** What earlier rounding withheld (|carry| ≤ step/2), so the rounded records still add up to the counter. */
  carryWh: number
  lastSeenMs: number
  /** Closed windows waiting for their release, oldest first. */
  due: Due<EnergyRecord>[]
}

/**
 * Turns a cumulative energy counter (Tasmota `ENERGY.Total`) into one record per wall-clock window,
 * `{window_start, window_s, energy_wh}`, released on the gateway's clock: each window's record leaves 5-30 s after
 * the window ends, whatever the device sends, and a device that stays silent still gets its (zero) records, so
 * neither the release nor the record says when the appliance switched on (issue 13 part 2). A plug meters one
 * appliance, so its power series is a diary of that appliance (NILM: privacy.md §1 `energy_window`, 2.2, EE15,
 * GRE12, MM10); a 1-hour total hides anything that runs for less than about 2 h. Every message is suppressed: the
 * output replaces the document entirely, so no instantaneous field can survive whatever the allowlist kept.
 */
export default defineOperator({
  name: 'energy_window',
  description:
    'Replaces a cumulative energy counter with one rounded energy record per aligned window, released on the gateway clock; suppresses every message',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      total: {
        type: 'string',
        minLength: 1,
        maxLength: 200,
        default: 'ENERGY.Total',
        description: 'cumulative counter; an array (multi-channel) is summed; `$` for a scalar payload',
      },
      unit: { enum: Object.keys(UNITS), default: 'kWh' },
      window_s: {
        type: 'integer',
        minimum: 60,
        maximum: 86_400,
        default: 3600,
        description: '3600 by default; 900 only with opt-in',
      },
      step_wh: { type: 'number', exclusiveMinimum: 0, default: 10 },
      idle_s: {
        type: 'integer',
        minimum: 3600,
        maximum: 604_800,
        default: 86_400,
        description: 'after this long without a message the device is forgotten and its records stop',
      },
    },
  },
  compile(config, env) {
    const options = config as Settings
    const total = options.total
    const unit = options.unit
    const factor = UNITS[unit]
    if (factor === undefined) throw new Error(`unit must be one of ${Object.keys(UNITS).join(', ')}`)
    const windowS = checkWindow(options.window_s)
    const step = parseStep(options.step_wh, 'step_wh')
    const idleMs = options.idle_s * 1000
    const getTotal = total === '$' ? (doc: unknown) => doc : compileAccessor(total).get
    const state = new DeviceState<Meter>()
    const random = env.random
    // No device has anything due before this: most ticks return at once.
    let nextCheckMs = Infinity

    const close = (m: Meter, untilStart: number): void => {
      while (m.start < untilStart) {
        const exact = m.usedWh + m.carryWh
        let energy = roundToStep(exact, step)
        if (energy < 0) energy = 0
        m.due.push({
          record: { window_start: m.start, window_s: windowS, energy_wh: energy },
          atMs: (m.start + windowS) * 1000 + releaseDelayMs(random),
        })
        m.carryWh = exact - energy
        m.usedWh = 0
        m.start += windowS
      }
    }
    /** The windows a silent device is still reported for: up to the one in which it went idle. */
    const idleEnd = (m: Meter): number => windowStart(m.lastSeenMs + idleMs, windowS)

    const absorb = (doc: unknown, ctx: { deviceId: string; nowMs: number }): typeof SUPPRESS => {
      const wh = counterWh(getTotal(doc), total) * factor
      // 1e308 kWh is a finite reading but not a finite Wh count; Infinity - Infinity would be a NaN record.
      if (!Number.isFinite(wh)) throw new Error(`${total} is out of range`)
      const now = ctx.nowMs
      const start = windowStart(now, windowS)
      const m = state.get(ctx.deviceId)
      if (m === undefined) {
        state.set(ctx.deviceId, { start, lastWh: wh, usedWh: 0, carryWh: 0, lastSeenMs: now, due: [] })
        nextCheckMs = Math.min(nextCheckMs, (start + windowS) * 1000 + MIN_RELEASE_DELAY_MS)
        return SUPPRESS
      }
      // A message from an earlier window (a replay out of order, a clock step back) is stale: its counter is older
      // than what the open window counts from, and taking it for a reset would throw energy away.
      if (start < m.start) return SUPPRESS
      if (now - m.lastSeenMs > idleMs) {
        // Back after going idle: its last windows are reported, and it starts afresh like a new device.
        close(m, Math.min(idleEnd(m), start))
        Object.assign(m, { start, lastWh: wh, usedWh: 0, carryWh: 0, lastSeenMs: now })
        return SUPPRESS
      }
      close(m, start)
      // A lower counter is a reset (power loss, EnergyReset): what was used before it is kept, the drop is not.
      if (wh >= m.lastWh) m.usedWh += wh - m.lastWh
      m.lastWh = wh
      m.lastSeenMs = now
      return SUPPRESS
    }

    const tick = (nowMs: number, drain = false): readonly Emission[] => {
      if (!drain && nowMs < nextCheckMs) return NOTHING_DUE
      const out: Emission[] = []
      const current = windowStart(nowMs, windowS)
      let next = Infinity
      for (const [deviceId, m] of state.entries()) {
        const idle = nowMs - m.lastSeenMs > idleMs
        close(m, drain ? (idle ? idleEnd(m) : current + windowS) : idle ? Math.min(idleEnd(m), current) : current)
        releaseDue(m.due, drain ? Infinity : nowMs, deviceId, out)
        if ((idle || drain) && m.due.length === 0) {
          state.delete(deviceId)
          continue
        }
        next = Math.min(next, m.due[0]?.atMs ?? (m.start + windowS) * 1000 + MIN_RELEASE_DELAY_MS)
      }
      nextCheckMs = next
      return out
    }
    return scheduled(absorb, tick)
  },
})

function counterWh(value: unknown, path: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value
  if (Array.isArray(value) && value.length > 0) {
    let sum = 0
    for (const item of value) {
      if (typeof item !== 'number' || !Number.isFinite(item) || item < 0)
        throw new Error(`${path} has a non-numeric channel`)
      sum += item
    }
    // Channels near Number.MAX_VALUE add up past it.
    if (!Number.isFinite(sum)) throw new Error(`${path} is out of range`)
    return sum
  }
  throw new Error(`${path} is not a non-negative number or array of numbers`)
}
