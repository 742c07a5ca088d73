import { defineProfile } from '#veil/sdk'
import weight from './weight.schema.json' with { type: 'json' }

/**
 * BLE body scales decoded by OpenMQTTGateway or Theengs Gateway: `home/<gateway name>/BTtoMQTT/<MAC without
 * colons>`. The scale's MAC is the device id (pseudonymised); the gateway name is not part of it. Other BLE devices
 * publish on the same topics: their `type` is not `SCALE`, so they fail the schema and are dropped.
 */
const MAC = /^[0-9a-f]{2}([:.-]?[0-9a-f]{2}){5}$/
const SEPARATORS = /[:.-]/g

/**
 * One BLE MAC, one id: `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF`, `aabb.ccdd.eeff` and `aabbccddeeff` all become
 * `aabbccddeeff` (ids arrive lower-cased), so a scale keeps its pseudonym whichever gateway or setting wrote it.
 * Anything else (a macOS UUID) stays as it is.
 */
export function canonicalBleMac(id: string): string {
  return MAC.test(id) || /^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/.test(id) ? id.replace(SEPARATORS, '') : id
}

export default defineProfile({
  name: 'omg_scale',
  category: 'body_scale',
  description: 'OpenMQTTGateway / Theengs BLE scales (home/<gateway>/BTtoMQTT/<MAC>)',
  access: { scope: 'hub', commands: ['home/+/commands/#'] },
  streams: {
    weight: { topics: ['home/+/BTtoMQTT/{id}'], decoding: 'json', schema: weight, normalizeDeviceId: canonicalBleMac },
  },
})
