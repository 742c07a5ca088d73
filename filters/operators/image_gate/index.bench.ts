import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { bench, describe } from 'vitest'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import imageGate from './index.ts'

const FIXTURES = join(import.meta.dirname, '../../../test/fixtures')
const event = JSON.parse(readFileSync(join(FIXTURES, 'camera/frigate_events_update.json'), 'utf8')) as unknown
const location = JSON.parse(
  readFileSync(join(FIXTURES, 'gps/owntracks_android_valid_location_message.json'), 'utf8'),
) as Record<string, unknown>
// An OwnTracks POI fix with a 20 kB JPEG, as the app sends it.
const jpeg = Buffer.concat([Buffer.from('ffd8ffe000104a46494600010100000100010000', 'hex'), Buffer.alloc(20_000, 0x5a)])
const withImage = { ...location, image: jpeg.toString('base64'), imagename: 'poi.jpg' }
const longText = { ...location, note: 'x'.repeat(2000) }

const env = compileEnv({ category: 'camera' })
const ctx = opContext({ category: 'camera' })
const dropMessage = compileOperator(imageGate, {}, env)
const dropField = compileOperator(imageGate, { action: 'drop_field' }, env)

describe('image_gate', () => {
  bench('baseline: structuredClone of the Frigate event', () => {
    structuredClone(event)
  })
  bench('Frigate event (no image), drop_message', () => {
    dropMessage(event, ctx)
  })
  bench('Frigate event (no image), drop_field (clone included)', () => {
    dropField(structuredClone(event), ctx)
  })
  bench('OwnTracks fix with a 20 kB base64 JPEG, drop_message', () => {
    dropMessage(withImage, ctx)
  })
  bench('OwnTracks fix with a 2 kB ordinary string, drop_message', () => {
    dropMessage(longText, ctx)
  })
  bench('raw JPEG snapshot (Buffer)', () => {
    dropMessage(jpeg, ctx)
  })
})
