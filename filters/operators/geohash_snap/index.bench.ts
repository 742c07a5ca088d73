import { bench, describe } from 'vitest'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import geohashSnap from './index.ts'

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
const reset = (i: number) => {
  doc.lat = 52.520008 + (i % 1000) * 1e-5
  doc.lon = 13.404954
}
const p6 = compileOperator(geohashSnap, {}, compileEnv())
const withHash = compileOperator(geohashSnap, { emit: 'geohash' }, compileEnv())
let i = 0

describe('geohash_snap on an OwnTracks location', () => {
  bench('baseline: reset the fix only', () => {
    reset(i++)
  })
  bench('precision 6', () => {
    reset(i++)
    p6(doc, ctx)
  })
  bench('precision 6 + emit geohash string', () => {
    reset(i++)
    withHash(doc, ctx)
  })
})
