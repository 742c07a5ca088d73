import { defineOperator, DeviceState, SUPPRESS } from '#veil/sdk'

/** What a cleaning job becomes: the area it covered, once, after it ended. */
export interface JobArea {
  cleaned_m2: number
}

const CM2_PER_M2 = 10_000

/** The settings as the loader hands them over: checked against configSchema, every default filled in. */
interface Settings {
  readonly area_step_m2: number
  readonly settle_s: number
}

interface Job {
  /** The job's largest reading so far, in cm². */
  maxCm2: number
  /** When the reading last grew: the job is over once it has not grown for `settle_s`. */
  grewAtMs: number
  reported: boolean
}

/**
 * The area one cleaning job covered, from Valetudo's `CurrentStatisticsCapability/area` (cm², the running total
 * of the current or last job), rounded to `area_step_m2` and reported once per job after it ended. A map says how
 * big the home is and how many rooms it has, with every update; the statistics say what the robot cleaned, which
 * is what the owner's service needs (privacy.md §2.4, issue 13 part 8).
 *
 * Every reading while the job's area grows is withheld (the growth would tell room by room how the home is laid
 * out). The job ends when the reading has not grown for `settle_s` (a later reading with the same value reports
 * it) or when it falls (the next job started from zero: the previous one is reported then, if it was not yet).
 * A reading of 0 is no job. Readings that are not a finite count of cm² throw: the pipeline drops the message.
 */
export default defineOperator({
  name: 'job_area',
  description: "Reports a cleaning job's area once, after the job, rounded; withholds the readings while it grows",
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      area_step_m2: { type: 'number', exclusiveMinimum: 0, default: 5 },
      settle_s: {
        type: 'integer',
        minimum: 60,
        maximum: 86_400,
        default: 1800,
        description: 'a job whose area has not grown for this long is over',
      },
    },
  },
  compile(config) {
    const options = config as Settings
    const step = options.area_step_m2
    if (typeof step !== 'number' || !Number.isFinite(step) || step <= 0)
      throw new Error(`area_step_m2 must be a positive number, not ${String(step)}`)
    const settle = options.settle_s
    if (typeof settle !== 'number' || !Number.isSafeInteger(settle) || settle < 60)
      throw new Error(`settle_s must be an integer ≥ 60, not ${String(settle)}`)
    const settleMs = settle * 1000
    const state = new DeviceState<Job>()
    const report = (cm2: number): JobArea => ({
      cleaned_m2: Number((Math.round(cm2 / CM2_PER_M2 / step) * step).toPrecision(12)),
    })

    return (doc, ctx) => {
      if (typeof doc !== 'number' || !Number.isFinite(doc) || doc < 0)
        throw new Error('job_area: the reading is not an area in cm²')
      const job = state.get(ctx.deviceId)
      if (job === undefined) {
        // The first reading after a start may be a job in progress or one long over: only its growth or a later
        // equal reading tells, so it is kept, not reported.
        state.set(ctx.deviceId, { maxCm2: doc, grewAtMs: ctx.nowMs, reported: doc === 0 })
        return SUPPRESS
      }
      if (doc < job.maxCm2) {
        // A new job: the previous one is over.
        const previous = job.reported ? undefined : job.maxCm2
        job.maxCm2 = doc
        job.grewAtMs = ctx.nowMs
        job.reported = doc === 0
        return previous === undefined ? SUPPRESS : report(previous)
      }
      if (doc > job.maxCm2) {
        job.maxCm2 = doc
        job.grewAtMs = ctx.nowMs
        job.reported = false
        return SUPPRESS
      }
      if (job.reported || ctx.nowMs - job.grewAtMs < settleMs) return SUPPRESS
      job.reported = true
      return report(job.maxCm2)
    }
  },
})
