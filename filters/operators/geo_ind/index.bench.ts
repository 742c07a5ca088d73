import { bench, describe } from 'vitest'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import geoInd from './index.ts'

const ctx = opContext()
const doc: Record<string, unknown> = {
  _type: 'location',
  lat: 52.520008,
  lon: 13.404954,
  tst: 1735689600,
  batt: 81,
  bs: 1,
  tid: 'ab',
}
const reset = () => {
  doc.lat = 52.520008
  doc.lon = 13.404954
}
const run = compileOperator(geoInd, {}, compileEnv())
let hour = 0

describe('geo_ind on an OwnTracks location', () => {
  bench('baseline: reset the fix only', () => {
    reset()
  })
  bench('new draw (a new epoch each call: one HMAC)', () => {
    reset()
    run(doc, { ...ctx, nowMs: ctx.nowMs + ++hour * 2_592_000_000 })
  })
  bench('static device in its cell (no HMAC)', () => {
    reset()
    run(doc, ctx)
  })
})
