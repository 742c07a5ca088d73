import { afterEach, describe, expect, it } from 'vitest'
import { Classifier } from '../../../gateway/src/streams/classifier.ts'
import { builtinProfiles } from '../index.ts'
import { leaks, shippedPipeline, type ProfilePipeline } from '../testing.ts'

const MAC = 'C8:47:8C:9F:7B:0A'
const MAC_HEX = MAC.replaceAll(':', '')
const GATEWAY = 'Kitchen-ESP32-Alice'
const TOPIC = `home/${GATEWAY}/BTtoMQTT/${MAC_HEX}`
const T0 = Date.UTC(2026, 2, 1, 7, 30)

/** A Mi Body Composition Scale weigh-in as Theengs decodes it (the decoder's test vector: 72.45 kg, 503 Ω). */
const weighIn = (extra: Record<string, unknown> = {}) => ({
  id: MAC,
  mac_type: 0,
  name: 'MIBFS',
  rssi: -67,
  brand: 'Xiaomi',
  model: 'Mi_Body_Composition_Scale',
  model_id: 'XMTZC02HM/XMTZC05HM',
  type: 'SCALE',
  weighing_mode: 'person',
  unit: 'kg',
  weight: 72.45,
  impedance: 503,
  servicedatauuid: '181b',
  servicedata: '0286e6070301070b0e00f701ae35',
  ...extra,
})

const IDENTIFIERS = [
  MAC,
  MAC_HEX,
  MAC.toLowerCase(),
  MAC_HEX.toLowerCase(),
  MAC.replaceAll(':', '-'),
  GATEWAY,
  'MIBFS',
  '0286e6070301070b0e00f701ae35',
]

describe('omg_scale profile', () => {
  let p: ProfilePipeline | undefined
  afterEach(() => {
    p?.close()
    p = undefined
  })

  it('takes the device id from the MAC level, whatever the gateway is called', () => {
    const classifier = new Classifier(builtinProfiles)
    expect(classifier.classify(TOPIC)).toMatchObject({
      stream: { key: 'omg_scale/weight', category: 'body_scale' },
      deviceId: MAC_HEX,
    })
    expect(classifier.classify(`home/TheengsGateway/BTtoMQTT/${MAC_HEX}`)).toMatchObject({ deviceId: MAC_HEX })
    for (const topic of [
      'home/BTtoMQTT/AABBCCDDEEFF',
      `home/${GATEWAY}/BTtoMQTT`,
      `home/${GATEWAY}/BTtoMQTT/${MAC_HEX}/x`,
      `home/${GATEWAY}/SYStoMQTT/${MAC_HEX}`,
    ]) {
      expect(classifier.classify(topic)).toBeUndefined()
    }
  })

  it('forwards nothing without health consent, not even the unit (one copy per weighing tells when), to any domain', async () => {
    const q = (p = shippedPipeline())
    await q.send(T0, TOPIC, weighIn())
    expect(q.forwarded).toEqual([])
    expect(q.results[0]?.dropped).toEqual({ stage: 'filter', reason: 'no_policy' })
    expect(leaks(q.forwarded, IDENTIFIERS, q.audit)).toEqual([])
  })

  it('with health consent forwards the weight to 0.1 and the unit to svc, never impedance; ana still nothing', async () => {
    const q = (p = shippedPipeline(['health_consent']))
    await q.send(T0, TOPIC, weighIn())
    await q.send(
      T0 + 60_000,
      `home/TheengsGateway/BTtoMQTT/${MAC_HEX}`,
      weighIn({ unit: 'lb', weight: 159.72, impedance: undefined }),
    )
    expect(q.forwarded.map((f) => [f.domain, f.data])).toEqual([
      ['svc', { weight: 72.5, unit: 'kg' }],
      ['svc', { weight: 159.7, unit: 'lb' }],
    ])
    // The same scale heard by two gateways is one device.
    expect(q.forwarded[1]?.topic).toBe(q.forwarded[0]?.topic)
    expect(q.forwarded.some((f) => f.text.includes('503') || f.text.includes('impedance'))).toBe(false)
    expect(leaks(q.forwarded, IDENTIFIERS, q.audit)).toEqual([])
  })

  it('drops other BLE devices and malformed scale messages as invalid', async () => {
    const q = (p = shippedPipeline(['health_consent']))
    const others: Record<string, unknown>[] = [
      {
        id: MAC,
        name: 'LYWSD03MMC',
        rssi: -80,
        brand: 'Xiaomi',
        model: 'LYWSD03MMC',
        model_id: 'LYWSD03MMC',
        type: 'THB',
        tempc: 21.3,
        hum: 48,
      },
      { id: MAC, rssi: -90, manufacturerdata: '4c0010050b1c' },
      weighIn({ type: 'scale' }),
      weighIn({ weight: 'heavy' }),
      weighIn({ weight: undefined }),
      weighIn({ unit: 'stone' }),
      weighIn({ weight: -3 }),
    ]
    for (const message of others) {
      const result = await q.send(T0, TOPIC, message)
      expect(result.dropped).toEqual({ stage: 'validate', reason: 'invalid' })
    }
    expect((await q.send(T0, TOPIC, 'not json')).dropped).toEqual({ stage: 'decode', reason: 'undecodable' })
    expect(q.forwarded).toEqual([])
    expect(leaks(q.forwarded, IDENTIFIERS, q.audit)).toEqual([])
  })
})
