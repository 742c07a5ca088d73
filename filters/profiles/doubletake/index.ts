import { defineProfile } from '#veil/sdk'
import cameras from './cameras.schema.json' with { type: 'json' }
import matches from './matches.schema.json' with { type: 'json' }

/** The id of the Double Take instance, for its own topics (`available`, `errors`), which name no camera. */
export const DOUBLE_TAKE_INSTANCE_ID = 'double-take'

/**
 * Double Take (face recognition for Frigate) with the default `double-take` topic prefix. The camera is the device.
 * On `double-take/matches/<name>` the topic level is a person's name: it is a `+`, never the device id, so it is
 * not even pseudonymised; the device is the payload's `camera`.
 */
export default defineProfile({
  name: 'doubletake',
  category: 'camera',
  description:
    'Double Take (double-take/matches/<name>, double-take/cameras/<camera>, double-take/cameras/<camera>/person, available, errors)',
  access: { scope: 'hub' },
  streams: {
    matches: { topics: ['double-take/matches/+'], decoding: 'json', schema: matches, deviceIdPath: 'camera' },
    cameras: { topics: ['double-take/cameras/{id}'], decoding: 'json', schema: cameras },
    person: {
      topics: ['double-take/cameras/{id}/person'],
      decoding: 'number',
      schema: { type: 'integer', minimum: 0 },
    },
    // Double Take itself: online/offline (retained), and its console errors, which quote detector URLs and
    // addresses, camera names and file paths: free text (empty on connect), carried as opaque bytes, never forwarded.
    available: {
      topics: ['double-take/available'],
      decoding: 'text',
      schema: { type: 'string', enum: ['online', 'offline'] },
      fixedDeviceId: DOUBLE_TAKE_INSTANCE_ID,
    },
    errors: { topics: ['double-take/errors'], decoding: 'binary', fixedDeviceId: DOUBLE_TAKE_INSTANCE_ID },
  },
})
