import { defineProfile, type ProfileDefinition } from '../../../gateway/src/profiles/types.ts'
import report from './report.schema.json' with { type: 'json' }
import tpv from './tpv.schema.json' with { type: 'json' }

/** Where gpsd JSON appears by default: `gpsd/<device>/tpv` (and `gpsd/<device>/<class>` for the other reports). */
export const DEFAULT_GPSD_PREFIX = 'gpsd'

const OTHER_CLASSES = ['sky', 'device', 'devices', 'version', 'watch', 'gst', 'att', 'imu', 'toff', 'pps'] as const

/**
 * gpsd is not MQTT: its JSON reports reach the broker through a bridge (gpsd2mqtt, a Node-RED flow, a script
 * around `gpspipe -w`), whose topic is a local convention. The profile takes the topic prefix (one or more literal
 * levels, `gpsd` by default); the device id is the level after it. Only TPV reports carry a position; the other
 * classes get their own stream, which no shipped policy forwards.
 */
export function createGpsdProfile(prefix: string = DEFAULT_GPSD_PREFIX): ProfileDefinition {
  const levels = prefix.split('/')
  if (levels.some((l) => l === '' || l === '+' || l === '#' || l.includes('{'))) {
    throw new Error(`gpsd topic prefix ${JSON.stringify(prefix)} must be literal, non-empty MQTT levels`)
  }
  return defineProfile({
    name: 'gpsd',
    category: 'gps_tracker',
    description: `gpsd JSON forwarded to MQTT (${prefix}/<device>/tpv positions; SKY, DEVICE, VERSION... never leave)`,
    streams: {
      tpv: { topics: [`${prefix}/{id}/tpv`], decoding: 'json', schema: tpv },
      report: { topics: OTHER_CLASSES.map((c) => `${prefix}/{id}/${c}`), decoding: 'json', schema: report },
    },
  })
}

export default createGpsdProfile()
