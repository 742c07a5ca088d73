import { Ajv } from 'ajv'

/**
 * One ajv instance for every payload schema. `allErrors` stays off on the payload path: the first problem is
 * enough to drop a message, and stopping early is cheaper.
 */
export function createPayloadAjv(): Ajv {
  return new Ajv({ allErrors: false, allowUnionTypes: true, strict: true, strictRequired: false })
}
