import { defineProfile } from '#veil/sdk'
import weight from './weight.schema.json' with { type: 'json' }

/** lolouk44/xiaomi_mi_scale: the user's name is a topic level, so it is the device id and is pseudonymised. */
export default defineProfile({
  name: 'miscale',
  category: 'body_scale',
  description: 'xiaomi_mi_scale BLE bridge (miscale/<user>/weight)',
  // The xiaomi_mi_scale bridge publishes for every user of the scale: the {id} level is the user, not the client.
  access: { scope: 'hub' },
  streams: {
    weight: { topics: ['miscale/{id}/weight'], decoding: 'json', schema: weight },
  },
})
