import { defineProfile } from '../../../gateway/src/profiles/types.ts'
import state from './state.schema.json' with { type: 'json' }

/** `online`/`offline` (Zigbee2MQTT 1.x legacy) or `{"state":"online"}` (JSON availability, the only form in 2.x). */
const AVAILABILITY = '^(online|offline|\\{\\s*"state"\\s*:\\s*"(online|offline)"\\s*\\})$'

/**
 * Zigbee2MQTT with the default base topic `zigbee2mqtt`. The friendly name is the device id; names may contain one
 * `/` (`livingroom/plug`), so each device route also has a two-level form. Routes are tried in the order below:
 * the bridge's own topics and the command topics come first, so neither is ever taken for a device.
 */
export default defineProfile({
  name: 'zigbee2mqtt',
  category: 'smart_plug',
  description: 'Zigbee2MQTT plugs (zigbee2mqtt/<friendly name> state with energy in kWh, .../availability); bridge/ and set/get never forwarded',
  // Zigbee2MQTT subscribes to its whole base topic; it receives only what local or admin clients publish there.
  access: { scope: 'hub', commands: ['zigbee2mqtt/#'] },
  streams: {
    // zigbee2mqtt/bridge/{devices,info,state,event,logging,groups,response/...}: the network inventory (IEEE
    // addresses, friendly names, MQTT server and user). The level after bridge/ stands in for a device id. Carried
    // as opaque bytes so that no allowlist can ever forward it.
    bridge: {
      topics: ['zigbee2mqtt/bridge/{id}', 'zigbee2mqtt/bridge/{id}/+', 'zigbee2mqtt/bridge/{id}/+/+', 'zigbee2mqtt/bridge/{id}/+/+/+'],
      decoding: 'binary',
    },
    availability: {
      topics: ['zigbee2mqtt/{id}/availability', 'zigbee2mqtt/{id}/{id}/availability'],
      decoding: 'text',
      schema: { type: 'string', pattern: AVAILABILITY },
    },
    // Commands to devices (from Home Assistant or the frontend), not telemetry: classified so that they are not
    // taken for the state of a device named `<name>/set`; opaque bytes, never forwarded.
    command: {
      topics: ['zigbee2mqtt/{id}/set', 'zigbee2mqtt/{id}/get', 'zigbee2mqtt/{id}/set/+', 'zigbee2mqtt/{id}/get/+', 'zigbee2mqtt/{id}/{id}/set', 'zigbee2mqtt/{id}/{id}/get'],
      decoding: 'binary',
    },
    state: { topics: ['zigbee2mqtt/{id}', 'zigbee2mqtt/{id}/{id}'], decoding: 'json', schema: state },
  },
})
