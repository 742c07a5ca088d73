import { defineProfile } from '../../../gateway/src/profiles/types.ts'
import announce from './announce.schema.json' with { type: 'json' }
import info from './info.schema.json' with { type: 'json' }

/**
 * Shelly gen1 plugs (Plug, Plug S; ESP8266 firmware): `shellies/<model>-<MAC suffix>/...`. The id level is the
 * device id; `shellies/announce` names the device in its payload `id` instead. Relay 0 only: a plug has one.
 */
export default defineProfile({
  name: 'shelly_gen1',
  category: 'smart_plug',
  description: 'Shelly gen1 (shellies/<id>/relay/0, relay/0/power, relay/0/energy in Wmin, online, announce, info)',
  access: { commands: ['shellies/{id}/relay/+/command', 'shellies/{id}/command', 'shellies/command'] },
  streams: {
    relay: { topics: ['shellies/{id}/relay/0'], decoding: 'text', schema: { type: 'string', enum: ['on', 'off', 'overpower'] } },
    power: { topics: ['shellies/{id}/relay/0/power'], decoding: 'number', schema: { type: 'number', minimum: 0 } },
    energy: { topics: ['shellies/{id}/relay/0/energy'], decoding: 'number', schema: { type: 'number', minimum: 0 } },
    online: { topics: ['shellies/{id}/online'], decoding: 'text', schema: { type: 'string', enum: ['true', 'false'] } },
    temperature: { topics: ['shellies/{id}/temperature'], decoding: 'number', schema: { type: 'number' } },
    overtemperature: { topics: ['shellies/{id}/overtemperature'], decoding: 'number', schema: { type: 'number', enum: [0, 1] } },
    // On shellies/announce (the answer to shellies/command `announce`) only the payload names the device.
    announce: { topics: ['shellies/{id}/announce', 'shellies/announce'], decoding: 'json', schema: announce, deviceIdPath: 'id' },
    info: { topics: ['shellies/{id}/info'], decoding: 'json', schema: info },
  },
})
