import { bench, describe } from 'vitest'
import { compileEnv, opContext } from '../testing.ts'
import bucket from './index.ts'

const env = compileEnv({ category: 'body_scale' })
const ctx = opContext({ category: 'body_scale' })
const who = bucket.compile(
  { path: 'bmi', bounds: [18.5, 25, 30], labels: ['underweight', 'normal', 'overweight', 'obese'] },
  env,
)
const age = bucket.compile({ path: 'age', width: 10, min: 0, max: 90 }, env)
const doc = () => ({ bmi: 23.7, age: 37, battery: 80 })

describe('bucket', () => {
  bench('baseline: build the document', () => {
    doc()
  })
  bench('WHO BMI class', () => {
    who(doc(), ctx)
  })
  bench('age in 10-year bands', () => {
    age(doc(), ctx)
  })
})
