import { bench, describe } from 'vitest'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import eventSuppress from './index.ts'

const env = compileEnv({ category: 'smart_plug' })
const fn = compileOperator(eventSuppress, {}, env)
const T0 = Date.UTC(2025, 0, 1)
let n = 0
const ctxs = Array.from({ length: 10 }, (_, d) => opContext({ category: 'smart_plug', deviceId: `plug-${d}` }))

describe('event_suppress', () => {
  bench('Tasmota POWER toggles, 10 plugs', () => {
    n++
    const base = ctxs[n % 10]
    if (base === undefined) return
    fn(n % 2 === 0 ? 'ON' : 'OFF', { ...base, nowMs: T0 + n * 1000 })
  })
})
