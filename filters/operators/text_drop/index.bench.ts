import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { bench, describe } from 'vitest'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import textDrop from './index.ts'

const event = JSON.parse(
  readFileSync(join(import.meta.dirname, '../../../test/fixtures/camera/frigate_events_update.json'), 'utf8'),
) as unknown
const run = compileOperator(textDrop, {}, compileEnv({ category: 'camera' }))
const ctx = opContext({ category: 'camera' })

describe('text_drop', () => {
  bench('baseline: structuredClone of the Frigate event', () => {
    structuredClone(event)
  })
  bench('Frigate event (clone included)', () => {
    run(structuredClone(event), ctx)
  })
})
