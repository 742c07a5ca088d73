import { defineProfile, defineProfileSettings, patternProblem, type ProfileDefinition } from '#veil/sdk'
import report from './report.schema.json' with { type: 'json' }
import tpv from './tpv.schema.json' with { type: 'json' }

/** Where gpsd TPV reports appear by default: `gpsd/<device>/tpv` (and `gpsd/<device>/<class>` for the others). */
export const DEFAULT_GPSD_TOPICS: readonly string[] = ['gpsd/{id}/tpv']

const OTHER_CLASSES = ['sky', 'device', 'devices', 'version', 'watch', 'gst', 'att', 'imu', 'toff', 'pps'] as const

/**
 * gpsd is not MQTT: its JSON reports reach the broker through a bridge (gpsd2mqtt, a Node-RED flow, a script
 * around `gpspipe -w`), whose topic is a local convention. The profile takes the TPV topic patterns (literal levels
 * and one `{id}` level, the device; `gpsd/{id}/tpv` by default, `profiles.gpsd.topics` in the configuration). A
 * pattern whose last level is `tpv` also gets the other report classes in place of `tpv`
 * (`gpsd/{id}/sky`, ...): their own stream, which no shipped policy forwards. Throws on a bad pattern.
 */
export function createGpsdProfile(topics: readonly string[] = DEFAULT_GPSD_TOPICS): ProfileDefinition {
  if (topics.length === 0) throw new Error('gpsd: at least one TPV topic is needed')
  for (const topic of topics) {
    const problem = patternProblem(topic, { idLevels: 1, plus: false })
    if (problem !== undefined) throw new Error(`gpsd topic ${problem}`)
  }
  const reports = topics
    .filter((t) => t.endsWith('/tpv'))
    .flatMap((t) => OTHER_CLASSES.map((c) => `${t.slice(0, -'tpv'.length)}${c}`))
  return defineProfile({
    name: 'gpsd',
    category: 'gps_tracker',
    description: `gpsd JSON forwarded to MQTT (${topics.join(', ')} positions; SKY, DEVICE, VERSION... never leave)`,
    streams: {
      tpv: { topics: [...topics], decoding: 'json', schema: tpv },
      ...(reports.length > 0 ? { report: { topics: reports, decoding: 'json' as const, schema: report } } : {}),
    },
  })
}

/** `profiles.gpsd` in the configuration. */
export const settings = defineProfileSettings({
  name: 'gpsd',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      topics: {
        description:
          'TPV topics: literal levels and one {id} level, the device. Default ["gpsd/{id}/tpv"]; a topic ending in tpv also takes the other report classes (sky, device, ...) in its place.',
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        items: { type: 'string', minLength: 1 },
      },
    },
  },
  setting: 'topics',
  topicRules: { idLevels: 1, plus: false },
  build: (value) => createGpsdProfile(value as readonly string[]),
})

export default createGpsdProfile()
