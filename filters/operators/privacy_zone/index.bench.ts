import { bench, describe } from 'vitest'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import privacyZone from './index.ts'

const ctx = opContext()
const doc: Record<string, unknown> = {
  _type: 'location',
  lat: 52.54,
  lon: 13.41,
  tst: 1735689600,
  batt: 81,
  bs: 1,
  tid: 'ab',
}
const zones = [
  { lat: 52.52, lon: 13.405, name: 'home' },
  { lat: 52.5, lon: 13.3, name: 'work' },
]
const run = compileOperator(privacyZone, { zones }, compileEnv())
const inside = { _type: 'location', lat: 52.52, lon: 13.405, tst: 1735689600 }
const farAway = { _type: 'location', lat: 48.1, lon: 11.5, tst: 1735689600 }

describe('privacy_zone (2 zones) on an OwnTracks location', () => {
  bench('outside, near the zones (full distance test)', () => {
    run(doc, ctx)
  })
  bench('far away (latitude band rejects)', () => {
    run(farAway, ctx)
  })
  bench('inside (suppressed)', () => {
    run(inside, ctx)
  })
})
