import { defineProfile } from '../../../gateway/src/profiles/types.ts'
import cameras from './cameras.schema.json' with { type: 'json' }
import matches from './matches.schema.json' with { type: 'json' }

/**
 * Double Take (face recognition for Frigate) with the default `double-take` topic prefix. The camera is the device.
 * On `double-take/matches/<name>` the topic level is a person's name: it is a `+`, never the device id, so it is
 * not even pseudonymised; the device is the payload's `camera`.
 */
export default defineProfile({
  name: 'doubletake',
  category: 'camera',
  description: 'Double Take (double-take/matches/<name>, double-take/cameras/<camera>, double-take/cameras/<camera>/person)',
  access: { scope: 'hub' },
  streams: {
    matches: { topics: ['double-take/matches/+'], decoding: 'json', schema: matches, deviceIdPath: 'camera' },
    cameras: { topics: ['double-take/cameras/{id}'], decoding: 'json', schema: cameras },
    person: { topics: ['double-take/cameras/{id}/person'], decoding: 'number', schema: { type: 'integer', minimum: 0 } },
  },
})
