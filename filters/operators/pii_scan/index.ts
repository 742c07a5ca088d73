import { defineOperator, SUPPRESS } from '../../../gateway/src/policy/operator.ts'
import { isPlainObject } from '../../../gateway/src/profiles/path.ts'
import { compileScanner, DETECTORS, type Detector, type Scanner } from './detect.ts'

/** Deeper than any device payload; a deeper document is an attack on the stack and is refused. */
const MAX_DEPTH = 64
/** Numbers below this have at most 7 digits: too short for a phone, MAC, IMEI or address. */
const SMALL_NUMBER = 1e7

type Action = 'drop_field' | 'drop_message'

interface Settings {
  readonly action: Action
  readonly detectors: readonly Detector[]
}

function readSettings(config: unknown): Settings {
  const c = (isPlainObject(config) ? config : {}) as { action?: unknown; detectors?: unknown }
  const action = c.action ?? 'drop_field'
  if (action !== 'drop_field' && action !== 'drop_message') throw new Error(`action must be drop_field or drop_message, not ${String(action)}`)
  const detectors = c.detectors ?? DETECTORS
  if (!Array.isArray(detectors) || detectors.length === 0) throw new Error('detectors must name at least one detector')
  for (const d of detectors) {
    if (!(DETECTORS as readonly unknown[]).includes(d)) throw new Error(`unknown detector ${String(d)}; known: ${DETECTORS.join(', ')}`)
  }
  return { action, detectors: detectors as Detector[] }
}

const REMOVE: unique symbol = Symbol('pii_scan.remove')

/**
 * Last line of defence after the allowlist (privacy.md P2): scans every string, every long number and every key
 * that survived and removes the field (or withholds the message) when it holds an email, phone number, MAC,
 * IP address, IMEI or licence plate. It catches identifiers that free text carries in fields that are allowed for
 * other reasons (a description naming a plate, a label with a phone number).
 */
export default defineOperator({
  name: 'pii_scan',
  description: 'Removes any field (or withholds the message) whose text looks like an email, phone, MAC, IP, IMEI or plate',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      action: { enum: ['drop_field', 'drop_message'], default: 'drop_field' },
      detectors: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: [...DETECTORS] }, default: [...DETECTORS] },
    },
  },
  compile(config) {
    const { action, detectors } = readSettings(config)
    const scan = compileScanner(detectors)
    // Keys come from the policy's own allowlist; `plate` would only flag sensor blocks such as `AM2301` there.
    const keyDetectors = detectors.filter((d) => d !== 'plate')
    const scanKey: Scanner | undefined = keyDetectors.length === 0 ? undefined : compileScanner(keyDetectors)
    const scanNumber = (n: number): boolean => (n >= SMALL_NUMBER || n <= -SMALL_NUMBER) && scan(String(n)) !== undefined

    /** Removes what matches, in place; REMOVE when the value itself must go. */
    const strip = (value: unknown, depth: number): unknown => {
      if (typeof value === 'string') return scan(value) === undefined ? value : REMOVE
      if (typeof value === 'number') return scanNumber(value) ? REMOVE : value
      if (value === null || typeof value === 'boolean') return value
      if (depth > MAX_DEPTH) throw new Error('pii_scan: document nested too deeply')
      if (Array.isArray(value)) {
        let kept = 0
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i]
          if (strip(item, depth + 1) !== REMOVE) value[kept++] = item
        }
        value.length = kept
        return value
      }
      if (isPlainObject(value)) {
        for (const key in value) {
          if ((scanKey !== undefined && scanKey(key) !== undefined) || strip(value[key], depth + 1) === REMOVE) delete value[key]
        }
        return value
      }
      // Binary or anything JSON cannot hold: it cannot be scanned, so it cannot pass.
      throw new Error('pii_scan: the document is not JSON data')
    }

    /** True when anything in the value matches; leaves the value untouched. */
    const contains = (value: unknown, depth: number): boolean => {
      if (typeof value === 'string') return scan(value) !== undefined
      if (typeof value === 'number') return scanNumber(value)
      if (value === null || typeof value === 'boolean') return false
      if (depth > MAX_DEPTH) throw new Error('pii_scan: document nested too deeply')
      if (Array.isArray(value)) {
        for (const item of value) if (contains(item, depth + 1)) return true
        return false
      }
      if (isPlainObject(value)) {
        for (const key in value) {
          if ((scanKey !== undefined && scanKey(key) !== undefined) || contains(value[key], depth + 1)) return true
        }
        return false
      }
      throw new Error('pii_scan: the document is not JSON data')
    }

    if (action === 'drop_message') return (doc) => (contains(doc, 0) ? SUPPRESS : doc)
    // A scalar payload that matches has no field to drop: the whole message goes.
    return (doc) => (strip(doc, 0) === REMOVE ? SUPPRESS : doc)
  },
})
