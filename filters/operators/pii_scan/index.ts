import { defineOperator } from '../../../gateway/src/policy/operator.ts'
import { compileJsonGate } from '../json-gate.ts'
import { isPlainObject } from '../../../gateway/src/profiles/path.ts'
import { compileScanner, DETECTORS, type Detector, type Scanner } from './detect.ts'

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

    return compileJsonGate(
      'pii_scan',
      {
        leaf: (value) => {
          if (typeof value === 'string') return scan(value) !== undefined
          if (typeof value === 'number') return scanNumber(value)
          // Binary cannot be scanned, so it cannot pass.
          if (value instanceof Uint8Array) throw new Error('pii_scan: the document is not JSON data')
          return false
        },
        key: scanKey === undefined ? undefined : (key) => scanKey(key) !== undefined,
      },
      action,
    )
  },
})
