import { bench, describe } from 'vitest'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import wifiStrip from './index.ts'

const state = () => ({
  Time: '2024-05-01T12:00:00',
  Uptime: '0T01:02:03',
  UptimeSec: 3723,
  Heap: 25,
  LoadAvg: 19,
  MqttCount: 1,
  POWER: 'ON',
  Wifi: {
    AP: 1,
    SSId: 'Familie Müller',
    BSSId: '2C:3A:E8:12:34:56',
    Channel: 6,
    Mode: '11n',
    RSSI: 76,
    Signal: -62,
    LinkCount: 1,
    Downtime: '0T00:00:03',
  },
})
const run = compileOperator(wifiStrip, { rssi: ['Wifi.RSSI', 'Wifi.Signal'] }, compileEnv({ category: 'smart_plug' }))
const ctx = opContext({ category: 'smart_plug' })

describe('wifi_strip', () => {
  bench('baseline: build the Tasmota STATE', () => {
    state()
  })
  bench('Tasmota STATE (build included)', () => {
    run(state(), ctx)
  })
})
