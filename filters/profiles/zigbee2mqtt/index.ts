import { baseTopicProblem, defineProfile, defineProfileSettings, type ProfileDefinition } from '#veil/sdk'
import state from './state.schema.json' with { type: 'json' }

/** Zigbee2MQTT's default `mqtt.base_topic`. */
export const DEFAULT_Z2M_BASE_TOPIC = 'zigbee2mqtt'

/** Friendly names with up to this many `/`-separated parts are recognised; deeper topics are unknown and dropped. */
export const Z2M_MAX_NAME_LEVELS = 5

/** `online`/`offline` (Zigbee2MQTT 1.x legacy) or `{"state":"online"}` (JSON availability, the only form in 2.x). */
const AVAILABILITY = '^(online|offline|\\{\\s*"state"\\s*:\\s*"(online|offline)"\\s*\\})$'

/** `{id}/{id}/...` for a friendly name of `n` levels, under the base topic. */
function named(base: string, n: number, suffix: string = ''): string {
  return `${base}/${Array.from({ length: n }, () => '{id}').join('/')}${suffix}`
}

function forEveryDepth(base: string, suffix: string = ''): string[] {
  return Array.from({ length: Z2M_MAX_NAME_LEVELS }, (_, i) => named(base, i + 1, suffix))
}

/**
 * Zigbee2MQTT under its base topic (`zigbee2mqtt` by default, `profiles.zigbee2mqtt.baseTopic` in the
 * configuration: literal levels, like z2m's `mqtt.base_topic`). The friendly name is the device id; names may
 * contain `/` (`livingroom/plug`, `flat/bedroom/heater`), joined back from up to Z2M_MAX_NAME_LEVELS levels.
 * Routes are tried in the order below, for every depth: the bridge's own topics, then a last level `availability`,
 * then commands (`set`, `get`, `set/<attr>`, `get/<attr>`), then the state. So `<base>/a/b/availability` is the
 * availability of `a/b`, never the state of a device named `a/b/availability`. Throws on a bad base topic.
 */
export function createZigbee2mqttProfile(baseTopic: string = DEFAULT_Z2M_BASE_TOPIC): ProfileDefinition {
  const problem = baseTopicProblem(baseTopic)
  if (problem !== undefined) throw new Error(`zigbee2mqtt base topic ${problem}`)
  const b = baseTopic
  return defineProfile({
    name: 'zigbee2mqtt',
    category: 'smart_plug',
    description: `Zigbee2MQTT plugs (${b}/<friendly name> state with energy in kWh, .../availability); bridge/ and set/get never forwarded`,
    // Zigbee2MQTT subscribes to its whole base topic; it receives only what local or admin clients publish there.
    access: { scope: 'hub', commands: [`${b}/#`] },
    streams: {
      // <base>/bridge/{devices,info,state,event,logging,groups,response/...}: the network inventory (IEEE
      // addresses, friendly names, MQTT server and user). The level after bridge/ stands in for a device id. Carried
      // as opaque bytes so that no allowlist can ever forward it.
      bridge: {
        topics: [`${b}/bridge/{id}`, `${b}/bridge/{id}/+`, `${b}/bridge/{id}/+/+`, `${b}/bridge/{id}/+/+/+`],
        decoding: 'binary',
      },
      availability: {
        topics: forEveryDepth(b, '/availability'),
        decoding: 'text',
        schema: { type: 'string', pattern: AVAILABILITY },
      },
      // Commands to devices (from Home Assistant or the frontend), not telemetry: classified so that they are not
      // taken for the state of a device named `<name>/set`; opaque bytes, never forwarded.
      command: {
        topics: ['/set', '/get', '/set/+', '/get/+'].flatMap((suffix) => forEveryDepth(b, suffix)),
        decoding: 'binary',
      },
      state: { topics: forEveryDepth(b), decoding: 'json', schema: state },
    },
  })
}

/** `profiles.zigbee2mqtt` in the configuration. */
export const settings = defineProfileSettings({
  name: 'zigbee2mqtt',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      baseTopic: {
        type: 'string',
        minLength: 1,
        description: "Zigbee2MQTT's mqtt.base_topic: literal levels. Default zigbee2mqtt.",
      },
    },
  },
  setting: 'baseTopic',
  build: (value) => createZigbee2mqttProfile(value as string),
})

export default createZigbee2mqttProfile()
