import { bench, describe } from 'vitest'
import { compileAllowlist } from './index.ts'

const sensor = JSON.parse(
  '{"Time":"2026-03-01T12:00:00","ENERGY":{"TotalStartTime":"2025-01-01T00:00:00","Total":123.456,"Yesterday":1.204,"Today":0.512,"Period":12,"Power":87,"ApparentPower":95,"ReactivePower":38,"Factor":0.92,"Voltage":231,"Current":0.41}}',
) as unknown
const keepOne = compileAllowlist(['ENERGY.Total'])
const keepFour = compileAllowlist(['Time', 'ENERGY.Total', 'ENERGY.Today', 'ENERGY.Yesterday'])

describe('allow on a Tasmota SENSOR message', () => {
  bench('floor: JSON round trip of the whole message', () => {
    JSON.parse(JSON.stringify(sensor))
  })
  bench('allow one path', () => {
    keepOne(sensor)
  })
  bench('allow four paths', () => {
    keepFour(sensor)
  })
})
