import { defineProfile } from '../../../gateway/src/profiles/types.ts'
import location from './location.schema.json' with { type: 'json' }
import transition from './transition.schema.json' with { type: 'json' }

/** OwnTracks apps in MQTT mode: `owntracks/<user>/<device>`; both levels together are the device id. */
export default defineProfile({
  name: 'owntracks',
  category: 'gps_tracker',
  description: 'OwnTracks (owntracks/<user>/<device> locations, .../event transitions)',
  streams: {
    location: { topics: ['owntracks/{id}/{id}'], decoding: 'json', schema: location },
    transition: { topics: ['owntracks/{id}/{id}/event'], decoding: 'json', schema: transition },
  },
})
