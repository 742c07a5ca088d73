// Issue 13 part 8: without health consent a scale's copy carried nothing but `{"weight_unit":"kg"}` (or a battery
// level), one per weighing, so its arrival told the recipient when someone stood on the scale. Nothing may leave.
import { describe, expect, it } from 'vitest'
import { shippedPipeline } from '../../filters/profiles/testing.ts'

const T0 = Date.UTC(2026, 2, 1, 7)
const MIN = 60_000

/** One weighing per morning for a week, on every scale stream the profiles know. */
const weighings = (day: number) => {
  const t = T0 + day * 24 * 60 * MIN + day * 7 * MIN
  return [
    {
      t,
      topic: 'miscale/Alice Example/weight',
      payload: {
        weight: 72.45 + day / 10,
        weight_unit: 'kg',
        bmi: 23.65,
        impedance: 503,
        timestamp: new Date(t).toISOString(),
      },
    },
    {
      t,
      topic: 'home/OpenMQTTGateway/BTtoMQTT/C8478C0A5CFF',
      payload: {
        id: 'C8:47:8C:0A:5C:FF',
        name: 'MIBFS',
        type: 'SCALE',
        unit: 'kg',
        weight: 71.85,
        impedance: 480,
        model_id: 'XMTZC02HM/XMTZC05HM',
        brand: 'Xiaomi',
        model: 'Mi Body Composition Scale 2',
        rssi: -70,
      },
    },
    {
      t,
      topic: 'devices/body_scale/scale-1/measurement',
      payload: { ts: Math.floor(t / 1000), weight_kg: 72.4, bmi: 23.6, battery_pct: 81 },
    },
  ]
}

describe('body scales without health consent', () => {
  it('send no copy at all, for any scale stream and any domain, over a week of weighings', async () => {
    const p = shippedPipeline()
    try {
      let classified = 0
      for (let day = 0; day < 7; day++) {
        for (const w of weighings(day)) {
          const result = await p.send(w.t, w.topic, w.payload)
          // Each weighing is classified and reaches the policies (not an unknown topic or invalid message).
          expect(result.category).toBe('body_scale')
          expect(result.dropped?.stage === 'filter' || result.domainDrops.length > 0).toBe(true)
          classified++
        }
      }
      expect(classified).toBe(21)
      expect(p.forwarded).toEqual([])
    } finally {
      p.close()
    }
  })

  it('with health consent the same weighings do leave (the test above can fail)', async () => {
    const p = shippedPipeline(['health_consent'])
    try {
      for (const w of weighings(0)) await p.send(w.t, w.topic, w.payload)
      expect(new Set(p.forwarded.map((f) => f.stream))).toEqual(new Set(['weight', 'measurement']))
      expect(p.forwarded.length).toBeGreaterThanOrEqual(3)
    } finally {
      p.close()
    }
  })
})
