import { afterEach, describe, expect, it } from 'vitest'
import { Classifier } from '../../../gateway/src/streams/classifier.ts'
import { builtinProfiles } from '../index.ts'
import { leaks, shippedPipeline, type ProfilePipeline } from '../testing.ts'

/** Built from the field lists in device-formats.md §1.1 (no licensed fixture of these messages exists). */
const MAC = '5C:CF:7F:03:29:F7'
const MAC_HEX = MAC.replaceAll(':', '')
const TOPIC = 'tasmota_0329F7'
const HOSTNAME = 'tasmota-0329F7-2551'
const IP = '192.168.178.47'
const SSID = 'FRITZ!Box Familie Meier'
const MQTT_USER = 'hans.meier'
const FRIENDLY = 'Waschmaschine Keller'
const IDENTIFIERS = [
  MAC,
  MAC_HEX,
  MAC.toLowerCase(),
  MAC_HEX.toLowerCase(),
  MAC.replaceAll(':', '-'),
  TOPIC,
  '0329F7',
  HOSTNAME,
  IP,
  SSID,
  MQTT_USER,
  FRIENDLY,
  'DVES_0329F7_fb',
]
const T0 = Date.UTC(2026, 2, 1, 8)

const info1 = {
  Module: 'Sonoff Pow R2',
  Version: '9.5.0(tasmota)',
  FallbackTopic: 'cmnd/DVES_0329F7_fb/',
  GroupTopic: 'cmnd/tasmotas/',
}
const info2 = {
  WebServerMode: 'Admin',
  Hostname: HOSTNAME,
  IPAddress: IP,
  IP6Global: '',
  IP6Local: 'fe80::5ecf:7fff:fe03:29f7',
}
const info3 = { RestartReason: 'Software/System restart', BootCount: 17 }

const status: Record<string, Record<string, unknown>> = {
  STATUS: {
    Status: { Module: 43, DeviceName: FRIENDLY, FriendlyName: [FRIENDLY], Topic: TOPIC, ButtonTopic: '0', Power: 1 },
  },
  STATUS1: {
    StatusPRM: {
      Baudrate: 115200,
      GroupTopic: 'cmnd/tasmotas/',
      OtaUrl: 'http://ota.tasmota.com/tasmota/release/tasmota.bin.gz',
      RestartReason: 'Software/System restart',
      Uptime: '0T01:02:03',
      StartupUTC: '2026-03-01T07:00:00',
      BootCount: 17,
    },
  },
  STATUS2: {
    StatusFWR: {
      Version: '9.5.0(tasmota)',
      BuildDateTime: '2021-06-17T08:35:00',
      Core: '2_7_4_9',
      SDK: '2.2.2-dev(38a443e)',
      Hardware: 'ESP8266EX',
    },
  },
  STATUS3: {
    StatusLOG: {
      SerialLog: 2,
      WebLog: 2,
      MqttLog: 0,
      SysLog: 0,
      LogHost: 'loghost.meier.lan',
      LogPort: 514,
      SSId: [SSID, ''],
      TelePeriod: 300,
    },
  },
  STATUS4: { StatusMEM: { ProgramSize: 616, Free: 384, Heap: 25, ProgramFlashSize: 1024, FlashSize: 1024 } },
  STATUS5: {
    StatusNET: {
      Hostname: HOSTNAME,
      IPAddress: IP,
      Gateway: '192.168.178.1',
      Subnetmask: '255.255.255.0',
      DNSServer1: '192.168.178.1',
      DNSServer2: '0.0.0.0',
      Mac: MAC,
      Webserver: 2,
      WifiConfig: 4,
      WifiPower: 17,
    },
  },
  STATUS6: {
    StatusMQT: {
      MqttHost: 'mqtt.meier.lan',
      MqttPort: 1883,
      MqttClientMask: 'DVES_%06X',
      MqttClient: 'DVES_0329F7',
      MqttUser: MQTT_USER,
      MqttCount: 1,
    },
  },
  STATUS7: { StatusTIM: { UTC: '2026-03-01T08:00:00', Local: '2026-03-01T09:00:00', Timezone: 99 } },
  STATUS8: { StatusSNS: { Time: '2026-03-01T09:00:00', ENERGY: { Total: 12.5, Power: 42 } } },
  STATUS9: { StatusPTH: { PowerDelta: [0, 0, 0], PowerLow: 0, PowerHigh: 0 } },
  STATUS10: { StatusSNS: { Time: '2026-03-01T09:00:00', ENERGY: { Total: 12.5 } } },
  STATUS11: {
    StatusSTS: {
      Time: '2026-03-01T09:00:00',
      UptimeSec: 3723,
      Wifi: { AP: 1, SSId: SSID, BSSId: '3C:A6:2F:11:22:33', RSSI: 78 },
    },
  },
}
status.STATUS0 = Object.assign(
  {},
  status.STATUS,
  ...Object.entries(status)
    .filter(([k]) => k !== 'STATUS')
    .map(([, v]) => v),
)

const discoveryConfig = {
  ip: IP,
  dn: FRIENDLY,
  fn: [FRIENDLY, null, null, null],
  hn: HOSTNAME,
  mac: MAC_HEX,
  md: 'Sonoff Pow R2',
  ty: 0,
  if: 0,
  ofln: 'Offline',
  onln: 'Online',
  state: ['OFF', 'ON', 'TOGGLE', 'HOLD'],
  sw: '9.5.0',
  t: TOPIC,
  ft: '%prefix%/%topic%/',
  tp: ['cmnd', 'stat', 'tele'],
  rl: [1, 0, 0, 0, 0, 0, 0, 0],
  swc: [-1],
  swn: [null],
  btn: [0],
  so: { '4': 0, '11': 0 },
  lk: 0,
  lt_st: 0,
  sho: [],
  ver: 1,
}
const discoverySensors = {
  sn: { Time: '2026-03-01T09:00:00', ENERGY: { TotalStartTime: '2025-11-02T10:11:12', Total: 12.5, Power: 42 } },
  ver: 1,
}

describe('tasmota STATUS, discovery and INFO streams through the shipped smart_plug policy', () => {
  let p: ProfilePipeline | undefined
  afterEach(() => {
    p?.close()
    p = undefined
  })

  it('classifies STATUS0..11 as status and discovery config/sensors as discovery, keyed by the MAC', () => {
    const classifier = new Classifier(builtinProfiles)
    for (const name of Object.keys(status))
      expect(classifier.classify(`stat/${TOPIC}/${name}`)).toMatchObject({
        stream: { key: 'tasmota/status' },
        deviceId: TOPIC,
      })
    for (const leaf of ['config', 'sensors']) {
      expect(classifier.classify(`tasmota/discovery/${MAC_HEX}/${leaf}`)).toMatchObject({
        stream: { key: 'tasmota/discovery' },
        deviceId: MAC_HEX,
      })
    }
    for (const topic of [
      `stat/${TOPIC}/STATUS12`,
      `stat/${TOPIC}/STATUS01`,
      `tasmota/discovery/${MAC_HEX}`,
      `tasmota/discovery/${MAC_HEX}/other`,
    ]) {
      expect(classifier.classify(topic)).toBeUndefined()
    }
  })

  it('validates STATUS and discovery messages and never forwards them', async () => {
    const q = (p = shippedPipeline(['energy_15min']))
    for (const [name, body] of Object.entries(status)) {
      expect((await q.send(T0, `stat/${TOPIC}/${name}`, body)).dropped).toEqual({
        stage: 'filter',
        reason: 'no_policy',
      })
    }
    expect((await q.send(T0, `tasmota/discovery/${MAC_HEX}/config`, discoveryConfig)).dropped).toEqual({
      stage: 'filter',
      reason: 'no_policy',
    })
    expect((await q.send(T0, `tasmota/discovery/${MAC_HEX}/sensors`, discoverySensors)).dropped).toEqual({
      stage: 'filter',
      reason: 'no_policy',
    })
    expect((await q.send(T0, `stat/${TOPIC}/STATUS5`, '["not", "an object"]')).dropped).toEqual({
      stage: 'validate',
      reason: 'invalid',
    })
    expect((await q.send(T0, `tasmota/discovery/${MAC_HEX}/config`, '{"ip":')).dropped).toEqual({
      stage: 'decode',
      reason: 'undecodable',
    })
    expect(q.forwarded).toEqual([])
    expect(leaks(q.forwarded, IDENTIFIERS, q.audit)).toEqual([])
  })

  it('accepts INFO1-3 both unwrapped (7.x) and wrapped (≥ 9.5), and forwards neither', async () => {
    const q = (p = shippedPipeline())
    const infos = [info1, info2, info3]
    for (const [i, body] of infos.entries()) {
      const topic = `tele/${TOPIC}/INFO${i + 1}`
      expect((await q.send(T0, topic, body)).dropped).toEqual({ stage: 'filter', reason: 'no_policy' })
      expect((await q.send(T0, topic, { [`Info${i + 1}`]: body })).dropped).toEqual({
        stage: 'filter',
        reason: 'no_policy',
      })
    }
    expect(q.results.every((r) => r.outputs.length === 0)).toBe(true)
    expect(leaks(q.forwarded, IDENTIFIERS, q.audit)).toEqual([])
  })

  it('still forwards what the policy allows from the same plug, without any of its identifiers', async () => {
    const q = (p = shippedPipeline())
    await q.send(T0, `tele/${TOPIC}/LWT`, 'Online')
    await q.send(T0, `tele/${TOPIC}/INFO2`, { Info2: info2 })
    await q.send(T0, `stat/${TOPIC}/STATUS0`, status.STATUS0 ?? {})
    await q.send(T0, `tasmota/discovery/${MAC_HEX}/config`, discoveryConfig)
    await q.send(T0, `tele/${TOPIC}/STATE`, {
      Time: '2026-03-01T09:00:00',
      Uptime: '0T01:02:03',
      UptimeSec: 3723,
      POWER: 'ON',
      Wifi: { AP: 1, SSId: SSID, BSSId: '3C:A6:2F:11:22:33', Channel: 6, RSSI: 78, Signal: -61 },
    })
    expect(q.forwarded.length).toBeGreaterThan(0)
    expect(new Set(q.forwarded.map((f) => f.stream))).toEqual(new Set(['lwt', 'state']))
    expect(leaks(q.forwarded, IDENTIFIERS, q.audit)).toEqual([])
  })
})
