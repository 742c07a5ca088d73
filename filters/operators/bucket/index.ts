import { defineOperator } from '#veil/sdk'
import { floorToStep, parseStep } from '../decimal.ts'
import { compileFieldMap, REMOVE } from '../fields.ts'

const pathSchema = { type: 'string', minLength: 1, maxLength: 200 } as const

/** The settings as the loader hands them over: checked against configSchema (one of the two forms; no defaults). */
interface Settings {
  readonly path: string
  readonly bounds?: readonly number[]
  readonly labels?: readonly string[]
  readonly width?: number
  readonly min?: number
  readonly max?: number
}

/**
 * Replaces a number with its bin, so a quasi-identifier (BMI, age, height, battery level) only narrows a person
 * down to a class shared with many others (privacy.md §1 `bucket`, SWE02). Two forms:
 * - `bounds` (+ optional `labels`): value < bounds[0] → labels[0]; bounds[i-1] ≤ value < bounds[i] → labels[i];
 *   value ≥ the last bound → the last label. Without labels the bin is named by its interval (`18.5-25`).
 * - `width` (+ optional `min`/`max`): the value is clamped to [min, max] (top- and bottom-coding, so a single
 *   97-year-old does not stand out) and floored to a multiple of width.
 */
export default defineOperator({
  name: 'bucket',
  description: 'Replaces a number with its bin label (bounds/labels) or bin floor (width); removes non-numbers',
  configSchema: {
    oneOf: [
      {
        type: 'object',
        additionalProperties: false,
        required: ['path', 'bounds'],
        properties: {
          path: pathSchema,
          bounds: { type: 'array', minItems: 1, maxItems: 64, items: { type: 'number' } },
          labels: { type: 'array', minItems: 2, maxItems: 65, items: { type: 'string', minLength: 1, maxLength: 64 } },
        },
      },
      {
        type: 'object',
        additionalProperties: false,
        required: ['path', 'width'],
        properties: {
          path: pathSchema,
          width: { type: 'number', exclusiveMinimum: 0 },
          min: { type: 'number' },
          max: { type: 'number' },
        },
      },
    ],
  },
  compile(config) {
    const options = config as Settings
    const path = options.path
    if (typeof path !== 'string' || path === '') throw new Error('path must name one field')
    if (options.bounds !== undefined) return compileBounds(path, options)
    if (options.width !== undefined) return compileWidth(path, options)
    throw new Error('bucket needs either bounds (with optional labels) or width')
  },
})

function compileBounds(path: string, options: Settings) {
  const bounds = options.bounds
  if (
    !Array.isArray(bounds) ||
    bounds.length === 0 ||
    !bounds.every((b) => typeof b === 'number' && Number.isFinite(b))
  ) {
    throw new Error('bounds must be a non-empty list of finite numbers')
  }
  const limits = bounds as readonly number[]
  for (let i = 1; i < limits.length; i++) {
    if ((limits[i] as number) <= (limits[i - 1] as number))
      throw new Error(`bounds must be strictly ascending: ${limits[i - 1]} then ${limits[i]}`)
  }
  let labels: readonly string[]
  if (options.labels === undefined) {
    labels = [`<${limits[0]}`, ...limits.slice(1).map((b, i) => `${limits[i]}-${b}`), `>=${limits[limits.length - 1]}`]
  } else {
    const given = options.labels
    if (!Array.isArray(given) || !given.every((l) => typeof l === 'string'))
      throw new Error('labels must be a list of strings')
    if (given.length !== limits.length + 1) {
      throw new Error(
        `labels must have bounds.length + 1 = ${limits.length + 1} entries (one per bin), got ${given.length}`,
      )
    }
    labels = given as readonly string[]
  }
  const n = limits.length
  return compileFieldMap([path], (value) => {
    if (typeof value !== 'number' || !Number.isFinite(value)) return REMOVE
    let bin = 0
    while (bin < n && value >= (limits[bin] as number)) bin++
    return labels[bin]
  })
}

function compileWidth(path: string, options: Settings) {
  const width = parseStep(options.width as number, 'width')
  const min = options.min === undefined ? -Infinity : Number(options.min)
  const max = options.max === undefined ? Infinity : Number(options.max)
  if (Number.isNaN(min) || Number.isNaN(max) || min > max) throw new Error('min must be ≤ max')
  return compileFieldMap([path], (value) => {
    if (typeof value !== 'number' || !Number.isFinite(value)) return REMOVE
    return floorToStep(value < min ? min : Math.min(value, max), width)
  })
}
