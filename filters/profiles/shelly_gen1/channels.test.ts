import { afterEach, describe, expect, it } from 'vitest'
import { HOUR_MS, leaks, perDevice, shippedPipeline, type ProfilePipeline } from '../testing.ts'

const T0 = Date.UTC(2026, 2, 1, 6, 0, 30)
const SWITCH = 'shellyswitch25-C45BBE6B1B6A'
const EM = 'shellyem-B8D61A8E4F21'
const IDENTIFIERS = [SWITCH, EM, 'C45BBE6B1B6A', 'B8D61A8E4F21', '6B1B6A', '8E4F21', `${SWITCH}/1`, `${EM}/0`]

describe('shelly_gen1 channels (Shelly 2.5, EM, 3EM)', () => {
  let p: ProfilePipeline
  afterEach(() => p.close())

  it('gives every relay and emeter channel its own pseudonym and hourly energy, and leaks no id', async () => {
    p = shippedPipeline()
    for (let t = T0, i = 0; t <= T0 + 2 * HOUR_MS + 60_000; t += 30_000, i++) {
      // relay 0: 60 W, relay 1: 600 W (watt-minute counters); emeter 0..2 of a 3EM-like device: 1, 2, 3 kW (Wh totals).
      await p.send(t, `shellies/${SWITCH}/relay/0/energy`, String(i * 30))
      await p.send(t, `shellies/${SWITCH}/relay/1/energy`, String(i * 300))
      await p.send(t, `shellies/${SWITCH}/relay/1`, 'on')
      for (const n of [0, 1, 2]) {
        await p.send(t, `shellies/${EM}/emeter/${n}/total`, ((n + 1) * 1000 * ((i + 1) / 120) + 5000).toFixed(2))
        await p.send(t, `shellies/${EM}/emeter/${n}/power`, String((n + 1) * 1000))
      }
    }
    const energy = perDevice(p.forwarded, 'svc', 'energy')
    const emeter = perDevice(p.forwarded, 'svc', 'emeter_total')
    expect(energy).toHaveLength(2)
    expect(emeter).toHaveLength(3)
    // The second hour is a whole one (the first starts at the first reading, 30 s in).
    const secondHour = (records: unknown[][]): unknown[] =>
      records.map((r) => (r[1] as { energy_wh: number }).energy_wh)
    expect(secondHour(energy)).toEqual([60, 600])
    expect(secondHour(emeter)).toEqual([1000, 2000, 3000])
    expect(new Set(p.forwarded.map((f) => f.stream))).toEqual(new Set(['energy', 'emeter_total']))
    expect(leaks(p.forwarded, IDENTIFIERS, p.audit)).toEqual([])
  })
})
