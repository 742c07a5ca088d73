import { bench, describe } from 'vitest'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import kinematics from './index.ts'

const ctx = opContext()
const run = compileOperator(kinematics, {}, compileEnv())
const make = (): Record<string, unknown> => ({
  _type: 'location',
  lat: 52.52,
  lon: 13.405,
  tst: 1735689600,
  vel: 4,
  cog: 270,
  alt: 35,
  acc: 12,
  vac: 3,
  batt: 81,
})

describe('kinematics on an OwnTracks location', () => {
  bench('baseline: build the document only', () => {
    make()
  })
  bench('defaults (drop cog/alt/acc/vac, classify vel)', () => {
    run(make(), ctx)
  })
})
