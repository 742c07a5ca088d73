import { defineOperator } from '#veil/sdk'
import { compileJsonGate } from '../json-gate.ts'
import { compileScanner, DETECTORS, type Detector, type Scanner } from './detect.ts'

/** Numbers below this have at most 7 digits: too short for a phone, MAC, IMEI or address. */
const SMALL_NUMBER = 1e7

type Action = 'drop_field' | 'drop_message'

/** Epoch milliseconds of 2000-01-01 and 2100-01-01: integers between are taken as times, not as MACs. */
const EPOCH_MS_MIN = 946_684_800_000
const EPOCH_MS_MAX = 4_102_444_800_000

/**
 * An integer past 32 bits that fits in 48 may be a MAC sent as a number (`73588229205` is 00:11:22:33:44:55),
 * unless it reads as epoch milliseconds of this century (MACs 00:DC:6A:… to 03:BB:2C:… are missed that way; a
 * declared range on the field, such as a score's 0..1, drops them at validation).
 */
function isDecimalMac(n: number): boolean {
  const a = Math.abs(n)
  return Number.isInteger(a) && a > 0xffffffff && a < 2 ** 48 && !(a >= EPOCH_MS_MIN && a <= EPOCH_MS_MAX)
}

interface Settings {
  readonly action: Action
  readonly detectors: readonly Detector[]
}

/** The settings as the loader hands them over (checked against configSchema, defaults filled in), checked again. */
function readSettings(config: unknown): Settings {
  const c = config as { readonly action: unknown; readonly detectors: unknown }
  const action = c.action
  if (action !== 'drop_field' && action !== 'drop_message')
    throw new Error(`action must be drop_field or drop_message, not ${String(action)}`)
  const detectors = c.detectors
  if (!Array.isArray(detectors) || detectors.length === 0) throw new Error('detectors must name at least one detector')
  for (const d of detectors) {
    if (!(DETECTORS as readonly unknown[]).includes(d))
      throw new Error(`unknown detector ${String(d)}; known: ${DETECTORS.join(', ')}`)
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
  description:
    'Removes any field (or withholds the message) whose text looks like an email, phone, MAC, IP, IMEI or plate',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      action: { enum: ['drop_field', 'drop_message'], default: 'drop_field' },
      detectors: {
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        items: { enum: [...DETECTORS] },
        default: [...DETECTORS],
      },
    },
  },
  compile(config) {
    const { action, detectors } = readSettings(config)
    const scan = compileScanner(detectors)
    // Numbers go through the detectors as text, but not in free-text mode: epoch seconds are 10-digit integers.
    const scanDigits = compileScanner(detectors, { freeText: false })
    const macs = detectors.includes('mac')
    // Keys come from the policy's own allowlist; `plate` would only flag sensor blocks such as `AM2301` there.
    const keyDetectors = detectors.filter((d) => d !== 'plate')
    const scanKey: Scanner | undefined = keyDetectors.length === 0 ? undefined : compileScanner(keyDetectors)
    const scanNumber = (n: number): boolean =>
      (n >= SMALL_NUMBER || n <= -SMALL_NUMBER) && ((macs && isDecimalMac(n)) || scanDigits(String(n)) !== undefined)

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
