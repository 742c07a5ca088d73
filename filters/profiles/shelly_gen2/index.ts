import { defineProfile, type JsonSchema } from '#veil/sdk'
import switchStatus from './switch.schema.json' with { type: 'json' }

const { $defs, ...switchShape } = switchStatus

/**
 * JSON-RPC notification frames on `<prefix>/events/rpc` (mqtt.rpc_ntf, on by default). NotifyStatus carries only
 * the keys that changed, so every field is optional; `src` is the device id, `params.ts` the device's epoch time.
 */
const rpc: JsonSchema = {
  $comment:
    'NotifyStatus, NotifyFullStatus and NotifyEvent frames; params["switch:0"] is the switch status (or the changed part of it).',
  type: 'object',
  required: ['method', 'params'],
  properties: {
    src: { type: 'string', maxLength: 128 },
    dst: { type: 'string', maxLength: 128 },
    method: { type: 'string', maxLength: 64 },
    params: {
      type: 'object',
      properties: {
        ts: { type: 'number', 'x-veil-time': 'epoch_s' },
        'switch:0': switchShape,
      },
    },
  },
  $defs,
}

/**
 * Shelly gen2+ plugs and switches (Plus, Pro, gen3/gen4; JSON-RPC firmware). The topic prefix is the device id
 * itself (`shellyplusplugs-e86beaeaa000` by default, or mqtt.topic_prefix), so the routes start with `{id}`.
 * `status/switch:0` is the device; `status/switch:N` of a 2PM or Pro 4PM is device `<prefix>/N` (its own
 * pseudonym and energy windows), like the channels of Shelly gen1. NotifyStatus frames name the switch inside
 * the payload: only `switch:0`'s counter can leave through them (see README).
 */
export default defineProfile({
  name: 'shelly_gen2',
  category: 'smart_plug',
  description:
    'Shelly gen2+ (<prefix>/events/rpc notifications, <prefix>/status/switch:N, <prefix>/online; aenergy.total in Wh)',
  access: { commands: ['{id}/rpc', '{id}/command', '{id}/command/+'] },
  streams: {
    rpc: { topics: ['{id}/events/rpc'], decoding: 'json', schema: rpc },
    switch: { topics: ['{id}/status/switch:0', '{id}/status/switch:{id}'], decoding: 'json', schema: switchStatus },
    online: { topics: ['{id}/online'], decoding: 'text', schema: { type: 'string', enum: ['true', 'false'] } },
  },
})
