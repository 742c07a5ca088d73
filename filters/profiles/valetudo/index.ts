import { defineProfile } from '#veil/sdk'
import map from './map.schema.json' with { type: 'json' }
import { pngZtxtCodec } from './png.ts'

const text = (max = 64) => ({ type: 'string', maxLength: max }) as const
/** Valetudo's documented values: a string outside them is invalid, so no free text reaches a `$` allowlist. */
const oneOf = (...values: string[]) => ({ type: 'string', enum: values }) as const

/** Valetudo robot vacuums with the default `valetudo` prefix; the identifier is the robot's system id. */
export default defineProfile({
  name: 'valetudo',
  category: 'robot_vacuum',
  description:
    'Valetudo (MapData/map-data zlib JSON, map-data-hass PNG zTXt, current statistics area, battery, status, Wi-Fi, Homie $state)',
  access: { commands: ['valetudo/{id}/+/+/set'] },
  streams: {
    map: { topics: ['valetudo/{id}/MapData/map-data'], decoding: 'zlib-json', schema: map },
    /** The same map for Home Assistant: a PNG whose `ValetudoMap` zTXt chunk holds the deflated JSON. */
    map_hass: { topics: ['valetudo/{id}/MapData/map-data-hass'], decoding: pngZtxtCodec, schema: map },
    segments: { topics: ['valetudo/{id}/MapData/segments'], decoding: 'json', schema: { type: 'object' } },
    /** The current (or last) job's cleaned area in cm² (CurrentStatisticsCapability, an integer Homie property). */
    statistics_area: {
      topics: ['valetudo/{id}/CurrentStatisticsCapability/area'],
      decoding: 'number',
      schema: { type: 'integer', minimum: 0, maximum: 100_000_000 },
    },
    battery_level: {
      topics: ['valetudo/{id}/BatteryStateAttribute/level'],
      decoding: 'number',
      schema: { type: 'number', minimum: 0, maximum: 100 },
    },
    battery_status: {
      topics: ['valetudo/{id}/BatteryStateAttribute/status'],
      decoding: 'text',
      schema: oneOf('none', 'charging', 'discharging', 'charged'),
    },
    status: {
      topics: ['valetudo/{id}/StatusStateAttribute/status'],
      decoding: 'text',
      schema: oneOf('error', 'docked', 'idle', 'returning', 'cleaning', 'paused', 'manual_control', 'moving'),
    },
    error: { topics: ['valetudo/{id}/StatusStateAttribute/error_description'], decoding: 'text', schema: text(512) },
    wifi: { topics: ['valetudo/{id}/WifiConfigurationCapability/+'], decoding: 'text', schema: text(512) },
    homie_state: {
      topics: ['valetudo/{id}/$state'],
      decoding: 'text',
      schema: oneOf('init', 'ready', 'disconnected', 'sleeping', 'lost', 'alert'),
    },
  },
})
