import { bench, describe } from 'vitest'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import energyWindow from './index.ts'

const env = compileEnv({ category: 'smart_plug' })
const fn = compileOperator(energyWindow, {}, env)
const T0 = Date.UTC(2025, 0, 1)
let n = 0
// A Tasmota tele/SENSOR after `allow` kept ENERGY.Total and friends; a message every 10 s, 10 plugs.
const ctxs = Array.from({ length: 10 }, (_, d) => opContext({ category: 'smart_plug', deviceId: `plug-${d}` }))

describe('energy_window', () => {
  bench('Tasmota SENSOR every 10 s (mostly suppressed, one record per hour)', () => {
    n++
    const base = ctxs[n % 10]
    if (base === undefined) return
    fn({ ENERGY: { Total: 100 + n * 1e-4, Today: 1.2, Power: 430, Voltage: 231 } }, { ...base, nowMs: T0 + n * 1000 })
  })
})
