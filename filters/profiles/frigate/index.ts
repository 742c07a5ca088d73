import { defineProfile } from '#veil/sdk'
import events from './events.schema.json' with { type: 'json' }
import reviews from './reviews.schema.json' with { type: 'json' }
import stats from './stats.schema.json' with { type: 'json' }
import trackedObjectUpdate from './tracked_object_update.schema.json' with { type: 'json' }
import triggers from './triggers.schema.json' with { type: 'json' }

/** The id of the Frigate instance itself, for the streams that name no camera (`stats`, `available`). */
export const FRIGATE_INSTANCE_ID = 'frigate'

const count = { type: 'integer', minimum: 0 } as const

/**
 * Frigate NVR with the default `frigate` topic prefix. The camera is the device: named in the topic or, for the
 * JSON event streams, in the payload. `frigate/<camera>/<label>` has the same shape as `frigate/<camera>/motion`
 * and `frigate/<zone>/<label>`: routes are tried in the order listed, so `motion` and `all_count` come before the
 * generic `object_count`, and counts decode as numbers (anything else on such a topic is dropped at decode).
 */
export default defineProfile({
  name: 'frigate',
  category: 'camera',
  description:
    'Frigate NVR (frigate/events, reviews, tracked_object_update, triggers, <camera>/motion, <camera>/<label>[/active] counts, <camera>/audio/*, stats, available, <camera>/<object>/snapshot JPEG)',
  access: {
    scope: 'hub',
    commands: ['frigate/+/set', 'frigate/+/+/set', 'frigate/+/ptz', 'frigate/restart', 'frigate/onConnect'],
  },
  streams: {
    events: { topics: ['frigate/events'], decoding: 'json', schema: events, deviceIdPath: 'after.camera' },
    reviews: { topics: ['frigate/reviews'], decoding: 'json', schema: reviews, deviceIdPath: 'after.camera' },
    tracked_object_update: {
      topics: ['frigate/tracked_object_update'],
      decoding: 'json',
      schema: trackedObjectUpdate,
      deviceIdPath: 'camera',
    },
    triggers: { topics: ['frigate/triggers'], decoding: 'json', schema: triggers, deviceIdPath: 'camera' },
    stats: { topics: ['frigate/stats'], decoding: 'json', schema: stats, fixedDeviceId: FRIGATE_INSTANCE_ID },
    available: {
      topics: ['frigate/available'],
      decoding: 'text',
      schema: { type: 'string', enum: ['online', 'offline'] },
      fixedDeviceId: FRIGATE_INSTANCE_ID,
    },
    // Listed before the counts: a camera's motion topic is also a `frigate/{id}/+`.
    motion: { topics: ['frigate/{id}/motion'], decoding: 'text', schema: { type: 'string', enum: ['ON', 'OFF'] } },
    // Objects of any label in view: the label is fixed by the route, so nothing is lost in the output topic.
    all_count: { topics: ['frigate/{id}/all'], decoding: 'number', schema: count },
    // Objects of one label: the label level is not part of the output topic (see README).
    object_count: { topics: ['frigate/{id}/+'], decoding: 'number', schema: count },
    // Audio detection (Frigate 0.14+): loudness, and ON/OFF per detected sound type (speech, bark, scream, ...).
    audio_level: {
      topics: ['frigate/{id}/audio/dBFS', 'frigate/{id}/audio/rms'],
      decoding: 'number',
      schema: { type: 'number' },
    },
    // What was said, transcribed: speech content, never forwarded, so carried as opaque bytes.
    audio_transcription: { topics: ['frigate/{id}/audio/transcription'], decoding: 'binary' },
    audio: { topics: ['frigate/{id}/audio/+'], decoding: 'text', schema: { type: 'string', enum: ['ON', 'OFF'] } },
    // Objects of a label that are moving (not stationary), per camera or zone.
    active_count: { topics: ['frigate/{id}/all/active', 'frigate/{id}/+/active'], decoding: 'number', schema: count },
    snapshot: { topics: ['frigate/{id}/+/snapshot'], decoding: 'binary' },
  },
})
