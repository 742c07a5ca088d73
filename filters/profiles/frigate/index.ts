import { defineProfile } from '../../../gateway/src/profiles/types.ts'
import events from './events.schema.json' with { type: 'json' }

/** Frigate NVR with the default `frigate` topic prefix. */
export default defineProfile({
  name: 'frigate',
  category: 'camera',
  description: 'Frigate NVR (frigate/events, frigate/<camera>/<object>/snapshot JPEG)',
  streams: {
    events: { topics: ['frigate/events'], decoding: 'json', schema: events, deviceIdPath: 'after.camera' },
    snapshot: { topics: ['frigate/{id}/+/snapshot'], decoding: 'binary' },
  },
})
