import { defineProfile } from '#veil/sdk'
import announce from './announce.schema.json' with { type: 'json' }
import info from './info.schema.json' with { type: 'json' }

const number = { type: 'number' } as const
/** Energy counters (Wh, Wmin): at most 10^10, about 20 years of a 27 kW channel in Wh; a MAC or phone number sent as one is invalid. */
const counter = { type: 'number', minimum: 0, maximum: 1e10 } as const

/**
 * Shelly gen1 (ESP8266 firmware): `shellies/<model>-<MAC suffix>/...`. The id level is the device id;
 * `shellies/announce` names the device in its payload `id` instead.
 *
 * Channels: relay 0 is the device itself (a plug has only that one). Every other channel is a meter of its own,
 * with the channel as a second level of the device id: `relay/1` of `shellyswitch25-XXXX` is device
 * `shellyswitch25-XXXX/1`, and the emeter channels of a Shelly EM or 3EM are `shellyem-XXXX/0`, `.../1`, (`.../2`),
 * each with its own pseudonym and its own energy windows. Routes are tried in the order listed, so `relay/0`
 * comes before the generic `relay/{id}`.
 */
export default defineProfile({
  name: 'shelly_gen1',
  category: 'smart_plug',
  description:
    'Shelly gen1 (shellies/<id>/relay/N, relay/N/power, relay/N/energy in Wmin, emeter/N/* of the EM and 3EM, online, announce, info)',
  access: { commands: ['shellies/{id}/relay/+/command', 'shellies/{id}/command', 'shellies/command'] },
  streams: {
    relay: {
      topics: ['shellies/{id}/relay/0', 'shellies/{id}/relay/{id}'],
      decoding: 'text',
      schema: { type: 'string', enum: ['on', 'off', 'overpower'] },
    },
    power: {
      topics: ['shellies/{id}/relay/0/power', 'shellies/{id}/relay/{id}/power'],
      decoding: 'number',
      schema: { type: 'number', minimum: 0 },
    },
    energy: {
      topics: ['shellies/{id}/relay/0/energy', 'shellies/{id}/relay/{id}/energy'],
      decoding: 'number',
      schema: counter,
    },
    // Shelly EM / 3EM: emeter/N/total is the persistent counter in Wh; emeter/N/energy counts Wmin since boot.
    emeter_total: { topics: ['shellies/{id}/emeter/{id}/total'], decoding: 'number', schema: counter },
    emeter: {
      topics: [
        'energy',
        'returned_energy',
        'total_returned',
        'power',
        'reactive_power',
        'voltage',
        'current',
        'pf',
      ].map((q) => `shellies/{id}/emeter/{id}/${q}`),
      decoding: 'number',
      schema: number,
    },
    online: { topics: ['shellies/{id}/online'], decoding: 'text', schema: { type: 'string', enum: ['true', 'false'] } },
    temperature: { topics: ['shellies/{id}/temperature'], decoding: 'number', schema: number },
    overtemperature: {
      topics: ['shellies/{id}/overtemperature'],
      decoding: 'number',
      schema: { type: 'number', enum: [0, 1] },
    },
    // On shellies/announce (the answer to shellies/command `announce`) only the payload names the device.
    announce: {
      topics: ['shellies/{id}/announce', 'shellies/announce'],
      decoding: 'json',
      schema: announce,
      deviceIdPath: 'id',
    },
    info: { topics: ['shellies/{id}/info'], decoding: 'json', schema: info },
  },
})
