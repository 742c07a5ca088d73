import { bench, describe } from 'vitest'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import timeFloor from './index.ts'

const env = compileEnv({ category: 'camera' })
const ctx = opContext({ category: 'camera' })
const frigate = compileOperator(
  timeFloor,
  { paths: ['after.start_time', 'after.end_time', 'after.frame_time'], seconds: 60 },
  env,
)
const tasmota = compileOperator(timeFloor, { paths: ['Time'], seconds: 3600 }, env)
const iso = compileOperator(timeFloor, { paths: ['t'], seconds: 60 }, env)
const frigateDoc = () => ({
  type: 'end',
  after: { label: 'person', start_time: 1_700_000_012.345, end_time: 1_700_000_059.9, frame_time: 1_700_000_055.1 },
})

describe('time_floor', () => {
  bench('baseline: build the Frigate document', () => {
    frigateDoc()
  })
  bench('Frigate event: three epoch-second floats', () => {
    frigate(frigateDoc(), ctx)
  })
  bench('Tasmota Time (zone-less ISO) to the hour', () => {
    tasmota({ Time: '2025-01-01T12:34:56' }, ctx)
  })
  bench('ISO with offset to UTC minute', () => {
    iso({ t: '2025-01-01T12:34:56.789+02:00' }, ctx)
  })
})
