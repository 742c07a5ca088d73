import { type Accessor, compileAccessor, defineOperator, isPlainObject, MAX_NESTING } from '#veil/sdk'

/** Deeper than any device payload; a deeper document is refused rather than walked. */

/**
 * Wi-Fi identifiers and secrets, lower-cased: Tasmota `SSId`, `BSSId`, `APMac` (pre-6.x), StatusLOG `SSId[]`;
 * Shelly `wifi_sta.ssid`, gen2 `sta.pass`; OwnTracks `SSID`/`BSSID`; Valetudo `details.ssid`/`bssid`.
 */
export const WIFI_KEYS: readonly string[] = [
  'bssid',
  'apmac',
  'ap_mac',
  'password',
  'passwd',
  'pass',
  'psk',
  'wpa_psk',
  'passphrase',
  'wpa_passphrase',
  'wifi_password',
  'wifipassword',
  'wifi_pass',
  'wifi_psk',
]
/** `SSID`, `SSId1`, `ssid2`, `bssids`, `BSSID1`: numbered and plural variants of the two identifiers. */
const SSID_LIKE = /^b?ssids?\d*$/
/** Any password or pre-shared key, Wi-Fi or not (`MqttPassword`, `MQTT_PASSWORD`, `sta_pass`): secrets never leave. */
const SECRET_LIKE = /password|passwd|(?:^|[_-])(?:pass(?:phrase)?|psk)$/

interface Settings {
  readonly rssi: readonly string[]
  readonly step: number
}

/** The settings as the loader hands them over (checked against configSchema, defaults filled in), checked again. */
function readSettings(config: unknown): Settings {
  const c = config as { readonly rssi?: unknown; readonly rssi_step: unknown }
  // No rssi is no signal to bucket (the schema cannot default to an empty list: a given list has at least one path).
  const rssi = c.rssi === undefined ? [] : typeof c.rssi === 'string' ? [c.rssi] : c.rssi
  if (!Array.isArray(rssi) || !rssi.every((p) => typeof p === 'string' && p.length > 0))
    throw new Error('rssi must be a path or a list of paths')
  const step = c.rssi_step
  if (typeof step !== 'number' || !Number.isFinite(step) || step <= 0)
    throw new Error(`rssi_step must be a positive number, not ${String(step)}`)
  return { rssi: rssi as string[], step }
}

/**
 * Removes Wi-Fi network identifiers and credentials at any depth and buckets the signal strength
 * (privacy.md §1 `wifi_strip`): a BSSID is a location, since Apple's Wi-Fi positioning system has geolocated more
 * than 2 billion of them (RYE24); an SSID often names the household; a password must never leave.
 */
export default defineOperator({
  name: 'wifi_strip',
  description: 'Removes SSIDs, BSSIDs, AP MACs and Wi-Fi passwords at any depth; floors RSSI to a step',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      rssi: {
        anyOf: [
          { type: 'string', minLength: 1 },
          { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
        ],
      },
      rssi_step: { type: 'number', exclusiveMinimum: 0, default: 10 },
    },
  },
  compile(config) {
    const { rssi, step } = readSettings(config)
    const drop: ReadonlySet<string> = new Set(WIFI_KEYS)
    const isWifiKey = (key: string): boolean => {
      const lower = key.toLowerCase()
      return drop.has(lower) || SSID_LIKE.test(lower) || SECRET_LIKE.test(lower)
    }
    const accessors: readonly Accessor[] = rssi.map((path) => compileAccessor(path))

    const walk = (value: unknown, depth: number): void => {
      if (typeof value !== 'object' || value === null) return
      if (depth > MAX_NESTING) throw new Error('wifi_strip: document nested too deeply')
      if (Array.isArray(value)) {
        for (const item of value) walk(item, depth + 1)
        return
      }
      // Bytes could hold an SSID this key-based filter cannot see.
      if (!isPlainObject(value) || value instanceof Uint8Array)
        throw new Error('wifi_strip: the document is not JSON data')
      for (const key in value) {
        if (isWifiKey(key)) delete value[key]
        else walk(value[key], depth + 1)
      }
    }

    return (doc) => {
      walk(doc, 0)
      for (const accessor of accessors) {
        const signal = accessor.get(doc)
        if (signal === undefined) continue
        // Fail closed: a signal that is not a number cannot be bucketed, so it goes.
        if (typeof signal !== 'number' || !Number.isFinite(signal)) accessor.delete(doc)
        else accessor.set(doc, Math.floor(signal / step) * step + 0)
      }
      return doc
    }
  },
})
