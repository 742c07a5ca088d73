import { defineProfile, defineProfileSettings, patternProblem, type ProfileDefinition } from '#veil/sdk'
import location from './location.schema.json' with { type: 'json' }
import { osmandCodec } from './osmand.ts'

/** Where OsmAnd reports appear by default. */
export const DEFAULT_TRACCAR_TOPICS: readonly string[] = ['traccar/osmand']

/**
 * Traccar's OsmAnd protocol is HTTP (port 5055); its reports reach the broker through an HTTP-to-MQTT bridge, so the
 * topic is a local convention (`traccar/osmand` by default; `profiles.traccar.topics` in the configuration: literal
 * levels and `+`, e.g. `osmand/+` for a bridge that puts the device in the topic). A payload is either the JSON body
 * (the background-geolocation SDK) or the classic query string, rewritten into the JSON form with speed in m/s
 * (the `osmand` codec, osmand.ts). The device id is in the payload (`device_id`, `id` or `deviceid`, often an IMEI); it never
 * leaves except as the keyed pseudonym of the output topic. Throws on a bad topic.
 */
export function createTraccarProfile(topics: readonly string[] = DEFAULT_TRACCAR_TOPICS): ProfileDefinition {
  if (topics.length === 0) throw new Error('traccar: at least one topic is needed')
  for (const topic of topics) {
    const problem = patternProblem(topic, { idLevels: 0, plus: true })
    if (problem !== undefined) throw new Error(`traccar topic ${problem}`)
  }
  return defineProfile({
    name: 'traccar',
    category: 'gps_tracker',
    description: `Traccar OsmAnd reports, JSON or query string (${topics.join(', ')}, device id in the payload)`,
    access: { scope: 'hub' },
    streams: {
      location: { topics: [...topics], decoding: osmandCodec, schema: location, deviceIdPath: 'device_id' },
    },
  })
}

/** `profiles.traccar` in the configuration. */
export const settings = defineProfileSettings({
  name: 'traccar',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      topics: {
        description:
          'OsmAnd report topics (JSON or query string; the device id is in the payload): literal levels and +. Default ["traccar/osmand"].',
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        items: { type: 'string', minLength: 1 },
      },
    },
  },
  setting: 'topics',
  topicRules: { idLevels: 0, plus: true },
  build: (value) => createTraccarProfile(value as readonly string[]),
})

export default createTraccarProfile()
