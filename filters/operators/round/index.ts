import { defineOperator } from '#veil/sdk'
import { parseStep, roundToStep } from '../decimal.ts'
import { compileFieldMap, pathsSchema, readPaths, REMOVE } from '../fields.ts'

/**
 * Rounds numbers to a step (`top_score` to 0.1, weight to 0.1 kg). Decimal-safe: the output of step 0.1 always
 * prints with at most one decimal, so no float tail (0.30000000000000004) carries extra precision or looks odd.
 * Anything that is not a finite number (or an array of them) is removed.
 */
export default defineOperator({
  name: 'round',
  description: 'Rounds numbers (or arrays of numbers) at the paths to a multiple of step; removes non-numbers',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['paths', 'step'],
    properties: {
      paths: pathsSchema,
      step: {
        type: 'number',
        exclusiveMinimum: 0,
        description: 'e.g. 0.1; no default: the precision is a policy decision',
      },
    },
  },
  compile(config) {
    // Checked against configSchema by the loader; both settings are required.
    const options = config as { readonly paths: readonly string[]; readonly step: number }
    const paths = readPaths(options)
    const step = parseStep(options.step)
    return compileFieldMap(paths, (value) => {
      if (typeof value === 'number') return Number.isFinite(value) ? roundToStep(value, step) : REMOVE
      if (Array.isArray(value)) {
        const out = new Array<number>(value.length)
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i]
          // One bad element removes the whole array: dropping it would shift the others (channel 2 becomes 1).
          if (typeof item !== 'number' || !Number.isFinite(item)) return REMOVE
          out[i] = roundToStep(item, step)
        }
        return out
      }
      return REMOVE
    })
  },
})
