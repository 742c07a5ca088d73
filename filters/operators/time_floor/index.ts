import { defineOperator } from '#veil/sdk'
import { compileFieldMap, pathsSchema, readPaths, REMOVE } from '../fields.ts'

const FORMATS = ['auto', 'epoch_s', 'epoch_ms', 'iso'] as const
type Format = (typeof FORMATS)[number]

/** The settings as the loader hands them over: checked against configSchema, every default filled in. */
interface Settings {
  readonly paths: readonly string[]
  readonly seconds: number
  readonly format: Format
}

/** Below this a number is epoch seconds (1e11 s is the year 5138); from here to MS_LIMIT it is epoch ms. */
const SECONDS_LIMIT = 1e11
/** 1e14 ms is the year 5138: anything larger (µs, ns) is not guessed at but removed. */
const MS_LIMIT = 1e14
const NUMERIC = /^\d{1,16}(?:\.\d{1,9})?$/
/** ISO 8601 date-time: calendar date, `T` or space, hh:mm[:ss[.fff]], optional Z or ±hh[:]mm. */
const ISO = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d{1,9})?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i

/**
 * Floors timestamps to a multiple of `seconds`, so the exact time of an event (a door opening, a fix) is no
 * longer a join key across data sets (privacy.md §1 `time_floor`, DEM13). The representation is kept: epoch
 * seconds stay seconds, ms stay ms, a numeric string stays a string; an ISO string with a zone becomes UTC with `Z`
 * (dropping the zone offset, a quasi-identifier); a zone-less ISO string (Tasmota's local `Time`) is floored on its
 * own wall clock and stays zone-less. A value that cannot be read as a timestamp is removed.
 */
export default defineOperator({
  name: 'time_floor',
  description:
    'Floors timestamps (epoch s, epoch ms, numeric strings, ISO 8601) to a multiple of seconds; removes unreadable ones',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      paths: { ...pathsSchema, default: ['tst'] },
      seconds: { type: 'integer', minimum: 1, maximum: 31_536_000, default: 60 },
      format: {
        enum: [...FORMATS],
        default: 'auto',
        description: 'how the input is read; the output keeps its representation',
      },
    },
  },
  compile(config) {
    const options = config as Settings
    const paths = readPaths(options)
    const seconds = options.seconds
    if (typeof seconds !== 'number' || !Number.isSafeInteger(seconds) || seconds < 1)
      throw new Error('seconds must be a positive integer')
    const format = options.format
    if (!FORMATS.includes(format)) throw new Error(`format must be one of ${FORMATS.join(', ')}`)
    return compileFieldMap(paths, createFloor(seconds, format))
  },
})

/** The per-value floor, exported for the property tests. Returns REMOVE for anything unreadable. */
export function createFloor(seconds: number, format: Format): (value: unknown) => unknown {
  const stepMs = seconds * 1000
  const floorEpoch = (value: number, unitMs: number): number | typeof REMOVE => {
    if (!Number.isFinite(value) || value < 0) return REMOVE
    const step = stepMs / unitMs
    // Number.MAX_VALUE floored to 60 s is Infinity (the product overflows), which would leave as null.
    const floored = Math.floor(value / step) * step
    return Number.isFinite(floored) ? floored : REMOVE
  }
  const unitOf = (value: number): number | undefined => {
    if (format === 'epoch_s') return 1000
    if (format === 'epoch_ms') return 1
    if (value < SECONDS_LIMIT) return 1000
    if (value < MS_LIMIT) return 1
    return undefined
  }
  return (value) => {
    if (typeof value === 'number') {
      if (format === 'iso') return REMOVE
      const unit = unitOf(value)
      return unit === undefined ? REMOVE : floorEpoch(value, unit)
    }
    if (typeof value !== 'string') return REMOVE
    if (format !== 'iso' && NUMERIC.test(value)) {
      const number = Number(value)
      const unit = unitOf(number)
      if (unit === undefined) return REMOVE
      const out = floorEpoch(number, unit)
      return out === REMOVE ? REMOVE : String(out)
    }
    if (format === 'epoch_s' || format === 'epoch_ms') return REMOVE
    return floorIso(value, stepMs)
  }
}

function floorIso(value: string, stepMs: number): string | typeof REMOVE {
  const m = ISO.exec(value)
  if (m === null) return REMOVE
  const [, y, mo, d, h, mi, s, zone] = m
  const year = Number(y)
  const month = Number(mo)
  const day = Number(d)
  const hour = Number(h)
  const minute = Number(mi)
  const second = s === undefined ? 0 : Number(s)
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return REMOVE
  const wall = Date.UTC(year, month - 1, day, hour, minute, second)
  // Date.UTC rolls 2025-02-30 over to March: a date that does not round-trip is not a date.
  if (new Date(wall).getUTCDate() !== day || year < 1970) return REMOVE
  // The fraction of a second is dropped by the floor anyway (steps are whole seconds).
  let utc = wall
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1
    const digits = zone.slice(1).replace(':', '')
    const offsetH = Number(digits.slice(0, 2))
    const offsetM = digits.length > 2 ? Number(digits.slice(2)) : 0
    if (offsetH > 23 || offsetM > 59) return REMOVE
    utc = wall - sign * (offsetH * 60 + offsetM) * 60_000
  }
  const floored = Math.floor(utc / stepMs) * stepMs
  if (floored < 0) return REMOVE
  const text = new Date(floored).toISOString()
  // toISOString always ends in `.000Z` here: the floor is on whole seconds.
  return zone === undefined ? text.slice(0, 19) : `${text.slice(0, 19)}Z`
}
