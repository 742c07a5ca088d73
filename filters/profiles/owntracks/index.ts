import { defineProfile } from '#veil/sdk'
import beacon from './beacon.schema.json' with { type: 'json' }
import card from './card.schema.json' with { type: 'json' }
import cmd from './cmd.schema.json' with { type: 'json' }
import configuration from './configuration.schema.json' with { type: 'json' }
import location from './location.schema.json' with { type: 'json' }
import status from './status.schema.json' with { type: 'json' }
import steps from './steps.schema.json' with { type: 'json' }
import transition from './transition.schema.json' with { type: 'json' }
import waypoint from './waypoint.schema.json' with { type: 'json' }
import waypoints from './waypoints.schema.json' with { type: 'json' }

const BASE = 'owntracks/{id}/{id}'

/**
 * OwnTracks apps in MQTT mode: `owntracks/<user>/<device>`; both levels together are the device id. Each message
 * type has its own topic and stream, named after its `_type`; the base topic carries `location` only, so an `lwt`,
 * a `card` or an `encrypted` payload there fails the location schema and is dropped. Only `location` and
 * `transition` have default policies: the other streams are known (validated, counted as `no_policy`) but never
 * forwarded.
 */
export default defineProfile({
  name: 'owntracks',
  category: 'gps_tracker',
  description:
    'OwnTracks (owntracks/<user>/<device> locations, .../event transitions; waypoints, cards, status, dumps, commands never leave)',
  access: { commands: ['owntracks/{id}/{id}/cmd'] },
  streams: {
    location: { topics: [BASE], decoding: 'json', schema: location },
    transition: { topics: [`${BASE}/event`], decoding: 'json', schema: transition },
    waypoint: { topics: [`${BASE}/waypoint`], decoding: 'json', schema: waypoint },
    waypoints: { topics: [`${BASE}/waypoints`], decoding: 'json', schema: waypoints },
    card: { topics: [`${BASE}/info`], decoding: 'json', schema: card },
    status: { topics: [`${BASE}/status`], decoding: 'json', schema: status },
    configuration: { topics: [`${BASE}/dump`], decoding: 'json', schema: configuration },
    cmd: { topics: [`${BASE}/cmd`], decoding: 'json', schema: cmd },
    steps: { topics: [`${BASE}/step`], decoding: 'json', schema: steps },
    beacon: { topics: [`${BASE}/beacon`], decoding: 'json', schema: beacon },
  },
})
