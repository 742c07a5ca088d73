import { Ajv } from 'ajv'
import { TIME_KEYWORD } from './time-fields.ts'
import { TIME_UNITS } from '../sdk/time.ts'

/**
 * One ajv instance for every payload schema. `allErrors` stays off on the payload path: the first problem is
 * enough to drop a message, and stopping early is cheaper. `x-veil-time` (time-fields.ts) is an annotation: it
 * validates nothing, but its value must be a unit, and strict mode refuses any other unknown keyword.
 */
export function createPayloadAjv(): Ajv {
  const ajv = new Ajv({ allErrors: false, allowUnionTypes: true, strict: true, strictRequired: false })
  ajv.addKeyword({ keyword: TIME_KEYWORD, schemaType: 'string', metaSchema: { enum: [...TIME_UNITS] } })
  return ajv
}
