import { afterEach, describe, expect, it } from 'vitest'
import { HOUR_MS, leaks, perDevice, shippedPipeline, type ProfilePipeline } from '../testing.ts'

const T0 = Date.UTC(2026, 2, 1, 6, 0, 30)
const PREFIX = 'shellypro4pm-a8032ab12c34'

describe('shelly_gen2 switch:N (Plus 2PM, Pro 4PM)', () => {
  let p: ProfilePipeline
  afterEach(() => p.close())

  it('gives status/switch:N its own pseudonym and hourly energy; switch:0 is the device itself', async () => {
    p = shippedPipeline()
    for (let t = T0, i = 0; t <= T0 + 2 * HOUR_MS + 60_000; t += 60_000, i++) {
      for (const n of [0, 1, 2, 3]) {
        const status = {
          id: n,
          source: 'init',
          output: true,
          apower: (n + 1) * 100,
          aenergy: { total: 1000 + ((n + 1) * 100 * i) / 60, by_minute: [0, 0, 0], minute_ts: t / 1000 },
        }
        await p.send(t, `${PREFIX}/status/switch:${n}`, status)
      }
      // The NotifyStatus frame of switch:0 feeds the rpc stream under the device's own id.
      await p.send(t, `${PREFIX}/events/rpc`, {
        src: PREFIX,
        dst: `${PREFIX}/events`,
        method: 'NotifyStatus',
        params: { ts: t / 1000, 'switch:0': { id: 0, aenergy: { total: 1000 + (100 * i) / 60 } } },
      })
    }
    // Every status message is absorbed (the records leave on the gateway's clock, not in a message's result), so
    // the pseudonyms are read from what was forwarded.
    expect(p.results.filter((r) => r.stream === 'switch').every((r) => r.outputs.length === 0)).toBe(true)
    const ids = p.forwarded.filter((f) => f.stream === 'switch').map((f) => f.topic.split('/')[3])
    const switchDevices = perDevice(p.forwarded, 'svc', 'switch')
    expect(switchDevices).toHaveLength(4)
    // Window 0 counts from the first reading (06:00:30) to the last in it (06:59:30), 59 minutes: 98.3, 196.7, 295
    // and 393.3 Wh, rounded to 10 Wh (the rest is carried into the next window).
    expect(switchDevices.map((r) => (r[0] as { energy_wh: number }).energy_wh)).toEqual([100, 200, 300, 390])
    expect(new Set(ids).size).toBe(4)
    // switch:0 through status and through rpc frames is one device: one pseudonym.
    const rpcTopic = p.forwarded.find((f) => f.stream === 'rpc' && f.domain === 'svc')?.topic.split('/')[3]
    const switch0Topic = p.forwarded.find((f) => f.stream === 'switch' && f.domain === 'svc')?.topic.split('/')[3]
    expect(rpcTopic).toBe(switch0Topic)
    expect(leaks(p.forwarded, [PREFIX, 'a8032ab12c34', `${PREFIX}/1`, 'switch:1'], p.audit)).toEqual([])
  })
})
