import { defineProfile } from '#veil/sdk'
import sensor from './sensor.schema.json' with { type: 'json' }
import state from './state.schema.json' with { type: 'json' }

const object = { type: 'object' } as const

/** Tasmota smart plugs: the `%prefix%/%topic%/` layout, where `%topic%` defaults to `tasmota_<last 3 MAC bytes>`. */
export default defineProfile({
  name: 'tasmota',
  category: 'smart_plug',
  description:
    'Tasmota firmware (tele/<topic>/SENSOR, STATE, LWT, INFO1-3; stat/<topic>/POWER, RESULT, STATUS0-11; HA discovery)',
  access: { commands: ['cmnd/{id}/#'] },
  streams: {
    sensor: { topics: ['tele/{id}/SENSOR'], decoding: 'json', schema: sensor },
    state: { topics: ['tele/{id}/STATE'], decoding: 'json', schema: state },
    lwt: { topics: ['tele/{id}/LWT'], decoding: 'text', schema: { type: 'string', enum: ['Online', 'Offline'] } },
    info: { topics: ['tele/{id}/INFO1', 'tele/{id}/INFO2', 'tele/{id}/INFO3'], decoding: 'json', schema: object },
    power: {
      topics: ['stat/{id}/POWER', 'stat/{id}/POWER1', 'stat/{id}/POWER2', 'stat/{id}/POWER3', 'stat/{id}/POWER4'],
      decoding: 'text',
      schema: { type: 'string', enum: ['ON', 'OFF'] },
    },
    result: { topics: ['stat/{id}/RESULT'], decoding: 'json', schema: object },
    /** Answers to `Status [n]`: network (MAC, IP, hostname), MQTT (host, user), log (SSIDs) settings. No policy forwards them. */
    status: {
      topics: ['stat/{id}/STATUS', ...Array.from({ length: 12 }, (_, n) => `stat/{id}/STATUS${n}`)],
      decoding: 'json',
      schema: object,
    },
    /**
     * Home Assistant native discovery (retained), keyed by the full MAC: `ip`, `dn`, `fn[]`, `hn`, `mac`, ... No policy
     * forwards it; the profile only names it so that it is validated and counted as `no_policy`, not `unknown_topic`.
     */
    discovery: {
      topics: ['tasmota/discovery/{id}/config', 'tasmota/discovery/{id}/sensors'],
      decoding: 'json',
      schema: object,
    },
  },
})
