import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { findPii } from '../pii_scan/detect.ts'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import wifiStrip from './index.ts'

const FIXTURES = join(import.meta.dirname, '../../../test/fixtures')
const env = compileEnv({ category: 'smart_plug' })
const ctx = opContext({ category: 'smart_plug' })
const compile = (config: unknown = {}) => {
  const run = compileOperator(wifiStrip, config, env)
  return (doc: unknown) => run(doc, ctx)
}
const readJson = (path: string): unknown => JSON.parse(readFileSync(join(FIXTURES, path), 'utf8'))

/** Tasmota `tele/<topic>/STATE` as documented (device-formats.md §1.1). */
const tasmotaState = () => ({
  Time: '2024-05-01T12:00:00',
  Uptime: '0T01:02:03',
  UptimeSec: 3723,
  Heap: 25,
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

function keysOf(value: unknown, out: Set<string> = new Set()): Set<string> {
  if (Array.isArray(value)) for (const v of value) keysOf(v, out)
  else if (typeof value === 'object' && value !== null)
    for (const [k, v] of Object.entries(value)) {
      out.add(k)
      keysOf(v, out)
    }
  return out
}

describe('wifi_strip', () => {
  it('Valetudo wifi status: ssid and bssid go, signal is bucketed (real fixture)', () => {
    const doc = readJson('valetudo/wifi_status_iw_3.4_connected.json')
    const out = compile({ rssi: 'details.signal' })(doc)
    expect(out).toEqual({
      __class: 'ValetudoWifiStatus',
      metaData: {},
      state: 'connected',
      details: { upspeed: 72.2, signal: -50, frequency: '2.4ghz' },
    })
    expect(JSON.stringify(out)).not.toContain('Das IoT')
    expect(findPii(JSON.stringify(out))).toBeUndefined()
  })

  it('Tasmota STATE: SSId and BSSId go; RSSI and Signal bucketed to the step', () => {
    const out = compile({ rssi: ['Wifi.RSSI', 'Wifi.Signal'] })(tasmotaState()) as ReturnType<typeof tasmotaState>
    expect(out.Wifi).toEqual({
      AP: 1,
      Channel: 6,
      Mode: '11n',
      RSSI: 70,
      Signal: -70,
      LinkCount: 1,
      Downtime: '0T00:00:03',
    })
    expect(compile({ rssi: 'Wifi.Signal', rssi_step: 5 })(tasmotaState())).toMatchObject({
      Wifi: { Signal: -65, RSSI: 76 },
    })
  })

  it('pre-6.x APMac, StatusLOG SSId arrays, numbered SSIds, Shelly, OwnTracks and passwords', () => {
    const doc = {
      Wifi: { APMac: '2C:3A:E8:12:34:56', SSId1: 'a', SSId2: 'b', ssid: 'c' },
      StatusLOG: { SSId: ['home', ''], LogHost: '' },
      wifi_sta: { connected: true, ssid: 'home', ip: '10.0.0.2', rssi: -60 },
      sta: { enable: true, ssid: 'home', pass: 'hunter2', is_open: false },
      ap: { ssid: 'shelly-AP', psk: 'x' },
      location: { SSID: 'home', BSSID: 'aa:bb:cc:dd:ee:ff', conn: 'w' },
      mqtt: { MqttPassword: 'p', MQTT_PASSWORD: 'p', user: 'u' },
      bssids: ['aa:bb:cc:dd:ee:ff'],
      passlist: [],
      bypass: false,
    }
    expect(compile({ rssi: 'wifi_sta.rssi' })(doc)).toEqual({
      Wifi: {},
      StatusLOG: { LogHost: '' },
      wifi_sta: { connected: true, ip: '10.0.0.2', rssi: -60 },
      sta: { enable: true, is_open: false },
      ap: {},
      location: { conn: 'w' },
      mqtt: { user: 'u' },
      passlist: [],
      bypass: false,
    })
  })

  it('real Shelly and OwnTracks fixtures keep no SSID/BSSID/password key', () => {
    for (const file of [
      'smartplug/shelly_mock_shellyplug-s-C38EAB.json',
      'smartplug/shelly_mock_shellyplusplugs-E86BEAEAA000.json',
      'gps/owntracks_android_location_with_created_at.json',
      'scale/lolouk44_xiaomi_mi_scale_options_users.json',
      'zigbee2mqtt/z2m_barbaris_bridge_info_full.json',
    ]) {
      const doc = readJson(file)
      const before = keysOf(doc)
      const after = keysOf(compile()(doc))
      for (const k of after)
        expect(/^b?ssids?\d*$|password|passwd|(^|[_-])(pass(phrase)?|psk)$|^apmac$/i.test(k), `${file}: ${k}`).toBe(
          false,
        )
      expect(before.size).toBeGreaterThan(after.size)
    }
  })

  it('no Wi-Fi identifier key survives anywhere, whatever its case (property)', () => {
    const run = compile()
    const wifiKey = fc
      .tuple(
        fc.constantFrom('ssid', 'bssid', 'ssid1', 'ssid2', 'apmac', 'password', 'psk'),
        fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
      )
      .map(([k, up]) => [...k].map((c, i) => (up[i % 8] ? c.toUpperCase() : c)).join(''))
    const doc = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, fc.string(), fc.integer(), tie('array'), tie('object')),
      array: fc.array(tie('value'), { maxLength: 3 }),
      object: fc.dictionary(fc.oneof(wifiKey, fc.stringMatching(/^[a-z]{1,6}$/)), tie('value'), { maxKeys: 5 }),
    })).object
    const isWifi = (k: string) => /^(b?ssid\d*|apmac|password|psk)$/i.test(k)
    fc.assert(
      fc.property(doc, (d) => {
        for (const k of keysOf(run(structuredClone(d)))) expect(isWifi(k)).toBe(false)
      }),
      { seed: 42, numRuns: 500 },
    )
  })

  it('buckets every RSSI to a multiple of the step below it, never above (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: -120, max: 0 }), fc.constantFrom(1, 5, 10, 20), (signal, step) => {
        const out = compile({ rssi: 'details.signal', rssi_step: step })({ details: { signal } }) as {
          details: { signal: number }
        }
        expect(out.details.signal % step === 0).toBe(true)
        expect(out.details.signal).toBeLessThanOrEqual(signal)
        expect(signal - out.details.signal).toBeLessThan(step)
      }),
      { seed: 42, numRuns: 500 },
    )
  })

  it('fails closed on a signal that is not a number; ignores a missing one', () => {
    expect(compile({ rssi: 'details.signal' })({ details: { signal: '-48 dBm' } })).toEqual({ details: {} })
    expect(compile({ rssi: 'details.signal' })({ state: 'ok' })).toEqual({ state: 'ok' })
    expect(() => compile()(Buffer.from('x'))).toThrow(/not JSON/)
    expect(() => compile({ rssi_step: 0 })).toThrow(/rssi_step/)
    expect(() => compile({ rssi: 'a.__proto__' })).toThrow(/not allowed/)
  })
})
