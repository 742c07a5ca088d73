import { bench, describe } from 'vitest'
import { compileEnv, opContext } from '../testing.ts'
import round from './index.ts'

const env = compileEnv({ category: 'camera' })
const ctx = opContext({ category: 'camera' })
const fn = round.compile({ paths: ['after.top_score', 'after.score'], step: 0.1 }, env)
const doc = () => ({ type: 'update', after: { label: 'person', top_score: 0.8437500000000001, score: 0.79296875 } })

describe('round', () => {
  bench('baseline: build the document', () => {
    doc()
  })
  bench('round two Frigate scores to 0.1', () => {
    fn(doc(), ctx)
  })
})
