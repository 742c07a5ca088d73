import { bench, describe } from 'vitest'
import { secureRandom } from '../../../gateway/src/policy/load.ts'
import { compileEnv, opContext, seededRandom } from '../testing.ts'
import geoInd from './index.ts'

const ctx = opContext()
const doc: Record<string, unknown> = { _type: 'location', lat: 52.520008, lon: 13.404954, tst: 1735689600, batt: 81, bs: 1, tid: 'ab' }
const reset = () => {
  doc.lat = 52.520008
  doc.lon = 13.404954
}
const fresh = geoInd.compile({ cache_s: 0 }, compileEnv({ random: seededRandom(1) }))
// Production noise comes from the loader's CSPRNG (randomBytes per draw, three draws per fix): the realistic cost.
const secure = geoInd.compile({ cache_s: 0 }, compileEnv({ random: secureRandom }))
const cached = geoInd.compile({}, compileEnv({ random: secureRandom }))

describe('geo_ind on an OwnTracks location', () => {
  bench('baseline: reset the fix only', () => {
    reset()
  })
  bench('fresh noise (seeded PRNG)', () => {
    reset()
    fresh(doc, ctx)
  })
  bench('fresh noise (production secureRandom)', () => {
    reset()
    secure(doc, ctx)
  })
  bench('cache hit (static device inside the window)', () => {
    reset()
    cached(doc, ctx)
  })
})
