import { defineProfile, type ProfileDefinition } from '#veil/sdk'
import energy from '../../../schemas/canonical/smart_plug.energy.schema.json' with { type: 'json' }
import event from '../../../schemas/canonical/camera.event.schema.json' with { type: 'json' }
import status from '../../../schemas/canonical/robot_vacuum.status.schema.json' with { type: 'json' }
import measurement from '../../../schemas/canonical/body_scale.measurement.schema.json' with { type: 'json' }
import location from '../../../schemas/canonical/gps_tracker.location.schema.json' with { type: 'json' }

/**
 * The canonical layout for devices built for Veil: `devices/<category>/<deviceId>/<stream>`, one JSON Schema per
 * stream in `schemas/canonical/`. Strict schemas (`additionalProperties: false`): a device built for Veil has no
 * excuse to send unknown fields.
 */
const canonical: readonly ProfileDefinition[] = [
  defineProfile({
    name: 'canonical',
    category: 'smart_plug',
    description: 'Canonical smart plug (devices/smart_plug/<id>/energy)',
    streams: { energy: { topics: ['devices/smart_plug/{id}/energy'], decoding: 'json', schema: energy } },
  }),
  defineProfile({
    name: 'canonical',
    category: 'camera',
    description: 'Canonical camera (devices/camera/<id>/event)',
    streams: { event: { topics: ['devices/camera/{id}/event'], decoding: 'json', schema: event } },
  }),
  defineProfile({
    name: 'canonical',
    category: 'robot_vacuum',
    description: 'Canonical robot vacuum (devices/robot_vacuum/<id>/status)',
    streams: { status: { topics: ['devices/robot_vacuum/{id}/status'], decoding: 'json', schema: status } },
  }),
  defineProfile({
    name: 'canonical',
    category: 'body_scale',
    description: 'Canonical body scale (devices/body_scale/<id>/measurement)',
    streams: {
      measurement: { topics: ['devices/body_scale/{id}/measurement'], decoding: 'json', schema: measurement },
    },
  }),
  defineProfile({
    name: 'canonical',
    category: 'gps_tracker',
    description: 'Canonical GPS tracker (devices/gps_tracker/<id>/location)',
    streams: { location: { topics: ['devices/gps_tracker/{id}/location'], decoding: 'json', schema: location } },
  }),
]

/**
 * The same streams in protobuf (schemas/proto/canonical.proto) on `devices/<category>/<deviceId>/<stream>/pb`: a
 * separate topic rather than a content-type marker, since devices speaking MQTT 3.1.1 (and Veil's listener) have
 * no content type. Decoded to the JSON shape and checked by the same JSON Schema, they share the JSON stream's
 * policy key (`canonical/<stream>`), its per-device operator state and its output topic: a recipient cannot tell
 * which encoding the device used.
 */
const protobufStreams: readonly (readonly [ProfileDefinition['category'], string, string, Record<string, unknown>])[] =
  [
    ['smart_plug', 'energy', 'veil.canonical.v1.SmartPlugEnergy', energy],
    ['camera', 'event', 'veil.canonical.v1.CameraEvent', event],
    ['robot_vacuum', 'status', 'veil.canonical.v1.RobotVacuumStatus', status],
    ['body_scale', 'measurement', 'veil.canonical.v1.BodyScaleMeasurement', measurement],
    ['gps_tracker', 'location', 'veil.canonical.v1.GpsTrackerLocation', location],
  ]
const canonicalProtobuf: readonly ProfileDefinition[] = protobufStreams.map(([category, stream, messageType, schema]) =>
  defineProfile({
    name: 'canonical',
    category,
    description: `Canonical ${category} in protobuf (devices/${category}/<id>/${stream}/pb, ${messageType})`,
    streams: {
      [stream]: { topics: [`devices/${category}/{id}/${stream}/pb`], decoding: 'protobuf', messageType, schema },
    },
  }),
)

export default [...canonical, ...canonicalProtobuf]
