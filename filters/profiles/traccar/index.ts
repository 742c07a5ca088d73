import { defineProfile, type ProfileDefinition } from '../../../gateway/src/profiles/types.ts'
import location from './location.schema.json' with { type: 'json' }

/** Where OsmAnd JSON bodies appear by default. */
export const DEFAULT_TRACCAR_TOPIC = 'traccar/osmand'

/**
 * Traccar's OsmAnd protocol is HTTP (port 5055); its JSON form (the transistorsoft background-geolocation SDK)
 * reaches the broker through an HTTP-to-MQTT bridge, so the topic is a local convention (`traccar/osmand` by
 * default, any literal topic otherwise). The device id is in the body (`device_id`, often an IMEI); it never leaves
 * except as the keyed pseudonym of the output topic.
 */
export function createTraccarProfile(topic: string = DEFAULT_TRACCAR_TOPIC): ProfileDefinition {
  const levels = topic.split('/')
  if (levels.some((l) => l === '' || l === '+' || l === '#' || l.includes('{'))) {
    throw new Error(`traccar topic ${JSON.stringify(topic)} must be literal, non-empty MQTT levels`)
  }
  return defineProfile({
    name: 'traccar',
    category: 'gps_tracker',
    description: `Traccar OsmAnd JSON bodies (${topic}, device id in device_id)`,
    access: { scope: 'hub' },
    streams: {
      location: { topics: [topic], decoding: 'json', schema: location, deviceIdPath: 'device_id' },
    },
  })
}

export default createTraccarProfile()
