import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { bench, describe } from 'vitest'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import { findPii } from './detect.ts'
import piiScan from './index.ts'

const event = JSON.parse(
  readFileSync(join(import.meta.dirname, '../../../test/fixtures/camera/frigate_events_update.json'), 'utf8'),
) as unknown
const state = {
  Time: '2024-05-01T12:00:00',
  Uptime: '0T01:02:03',
  UptimeSec: 3723,
  POWER: 'ON',
  Wifi: { AP: 1, Channel: 6, Mode: '11n', RSSI: 70, Signal: -70, LinkCount: 1, Downtime: '0T00:00:03' },
}
const env = compileEnv({ category: 'camera' })
const ctx = opContext({ category: 'camera' })
const dropField = compileOperator(piiScan, {}, env)
const dropMessage = compileOperator(piiScan, { action: 'drop_message' }, env)
const eventText = JSON.stringify(event)

describe('pii_scan', () => {
  bench('baseline: structuredClone of the Frigate event', () => {
    structuredClone(event)
  })
  bench('Frigate event (2.4 kB, one plate), drop_field (clone included)', () => {
    dropField(structuredClone(event), ctx)
  })
  bench('Frigate event, drop_message', () => {
    dropMessage(event, ctx)
  })
  bench('Tasmota STATE after wifi_strip, drop_message (clean)', () => {
    dropMessage(state, ctx)
  })
  bench('findPii over the serialized Frigate event (P2 scanner)', () => {
    findPii(eventText)
  })
})
