import { bench, describe } from 'vitest'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import downsample from './index.ts'

const doc = { _type: 'location', lat: 52.52, lon: 13.405, tst: 1735689600 }
const run = compileOperator(downsample, {}, compileEnv())
const contexts = Array.from({ length: 1000 }, (_, i) =>
  opContext({ deviceId: `dev-${i}`, nowMs: Date.UTC(2025, 0, 1) + i * 1000 }),
)
let i = 0

describe('downsample on an OwnTracks location', () => {
  bench('1000 devices, mostly suppressed', () => {
    run(doc, contexts[i++ % 1000] ?? opContext())
  })
})
