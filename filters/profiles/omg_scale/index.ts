import { defineProfile } from '../../../gateway/src/profiles/types.ts'
import weight from './weight.schema.json' with { type: 'json' }

/**
 * BLE body scales decoded by OpenMQTTGateway or Theengs Gateway: `home/<gateway name>/BTtoMQTT/<MAC without
 * colons>`. The scale's MAC is the device id (pseudonymised); the gateway name is not part of it. Other BLE devices
 * publish on the same topics: their `type` is not `SCALE`, so they fail the schema and are dropped.
 */
export default defineProfile({
  name: 'omg_scale',
  category: 'body_scale',
  description: 'OpenMQTTGateway / Theengs BLE scales (home/<gateway>/BTtoMQTT/<MAC>)',
  access: { scope: 'hub', commands: ['home/+/commands/#'] },
  streams: {
    weight: { topics: ['home/+/BTtoMQTT/{id}'], decoding: 'json', schema: weight },
  },
})
