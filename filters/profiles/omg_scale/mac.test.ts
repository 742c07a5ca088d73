import { afterEach, describe, expect, it } from 'vitest'
import { leaks, shippedPipeline, type ProfilePipeline } from '../testing.ts'
import { canonicalBleMac } from './index.ts'

const T0 = Date.UTC(2026, 2, 1, 7)

describe('omg_scale device ids', () => {
  let p: ProfilePipeline | undefined
  afterEach(() => p?.close())

  it('writes one BLE MAC one way, whatever separators and case it came with', () => {
    for (const form of ['c8:47:8c:0a:5c:ff', 'c8-47-8c-0a-5c-ff', 'c8478c0a5cff', 'c847.8c0a.5cff'])
      expect(canonicalBleMac(form), form).toBe('c8478c0a5cff')
    // Not a MAC (a macOS CoreBluetooth UUID, a short id, mixed separators in the wrong places): left alone.
    for (const other of ['0a1b2c3d-4e5f-6789-abcd-ef0123456789', 'c8:47:8c', 'c8:478c0a5cff:', 'scale-1'])
      expect(canonicalBleMac(other), other).toBe(other)
  })

  it('gives the scale one pseudonym across gateways and MAC forms, and leaks neither MAC nor gateway name', async () => {
    const q = shippedPipeline(['health_consent'])
    p = q
    const forms = ['C8478C0A5CFF', 'C8:47:8C:0A:5C:FF', 'c8-47-8c-0a-5c-ff', 'c8478c0a5cff']
    for (const [i, mac] of forms.entries()) {
      await q.send(T0 + i * 60_000, `home/CanaryBathroomGW${i}/BTtoMQTT/${mac}`, {
        id: 'C8:47:8C:0A:5C:FF',
        name: 'MIBFS',
        rssi: -70,
        type: 'SCALE',
        unit: 'kg',
        weight: 70 + i,
        impedance: 500,
      })
    }
    const svc = q.forwarded.filter((f) => f.domain === 'svc')
    expect(svc).toHaveLength(4)
    expect(new Set(svc.map((f) => f.topic)).size).toBe(1)
    expect(
      leaks(q.forwarded, ['C8:47:8C:0A:5C:FF', 'CanaryBathroomGW0', 'CanaryBathroomGW3', 'MIBFS'], q.audit),
    ).toEqual([])
  })
})
