import { afterEach, describe, expect, it } from 'vitest'
import { HOUR_MS, shippedPipeline, type Forwarded, type ProfilePipeline } from '../../filters/profiles/testing.ts'
import { MAX_RELEASE_DELAY_MS, MIN_RELEASE_DELAY_MS } from '../../filters/operators/schedule.ts'

/**
 * Issue 13 part 2: plugs that report only on change (Zigbee2MQTT, Shelly gen2 NotifyStatus, Tasmota with power-delta
 * reports) used to release each window's record with their first report after it, at the appliance's switch-on,
 * with a window_s as long as the plug was idle. Now records leave on the gateway's clock.
 */
const DAY = Date.UTC(2025, 2, 1)
const at = (h: number, m: number, s = 0): number => DAY + ((h * 60 + m) * 60 + s) * 1000
/** Switch-on edges; each run lasts 17 minutes at 1000 W, and the plug reports at both edges only. */
const EDGES = [at(7, 3, 12), at(12, 31, 40), at(19, 10), at(21, 40)]
const RUN_MS = 17 * 60_000
const WATTS = 1000

type Plug = { name: string; report: (t: number, wh: number, on: boolean) => [string, Record<string, unknown>] }
const PLUGS: Plug[] = [
  {
    name: 'zigbee2mqtt',
    report: (_t, wh, on) => [
      'zigbee2mqtt/kitchen kettle',
      { state: on ? 'ON' : 'OFF', power: on ? WATTS : 0, energy: wh / 1000, linkquality: 80 },
    ],
  },
  {
    name: 'tasmota',
    report: (t, wh, on) => [
      'tele/kettle/SENSOR',
      {
        Time: new Date(t).toISOString().slice(0, 19),
        ENERGY: { Total: wh / 1000, Power: on ? WATTS : 0, Voltage: 230 },
      },
    ],
  },
  {
    name: 'shelly_gen2',
    report: (t, wh, on) => [
      'shellyplus1pm-a8032ab12345/events/rpc',
      {
        src: 'shellyplus1pm-a8032ab12345',
        dst: 'shellyplus1pm-a8032ab12345/events',
        method: 'NotifyStatus',
        params: { ts: t / 1000, 'switch:0': { id: 0, output: on, apower: on ? WATTS : 0, aenergy: { total: wh } } },
      },
    ],
  },
]

async function runDay(p: ProfilePipeline, plug: Plug): Promise<number[]> {
  const reports: [number, boolean][] = [[DAY - HOUR_MS + 5_000, false]]
  for (const edge of EDGES) reports.push([edge, true], [edge + RUN_MS, false])
  let wh = 52_000
  let on = false
  let last = reports[0]?.[0] as number
  let next = 0
  // The gateway's one-second clock, from an hour before the day to two after it.
  for (let t = DAY - HOUR_MS; t <= DAY + 26 * HOUR_MS; t += 1000) {
    await p.tick(t)
    const report = reports[next]
    if (report !== undefined && report[0] <= t) {
      if (on) wh += (WATTS * (report[0] - last)) / HOUR_MS
      last = report[0]
      on = report[1]
      const [topic, payload] = plug.report(report[0], wh, on)
      await p.send(report[0], topic, payload)
      next++
    }
  }
  return reports.map(([t]) => t)
}

const records = (forwarded: readonly Forwarded[], domain: string) =>
  forwarded
    .filter((f) => f.domain === domain)
    .map((f) => ({ ts: f.ts, ...(f.data as { window_start: number; window_s: number; energy_wh: number }) }))

describe('energy records leave on the gateway clock, not with the appliance (issue 13 part 2)', () => {
  let p: ProfilePipeline
  afterEach(() => p.close())

  for (const plug of PLUGS) {
    for (const [optIn, windowS] of [
      [[], 3600],
      [['energy_15min'], 900],
    ] as const) {
      const domains = windowS === 900 ? ['svc'] : ['svc', 'ana']
      it(`${plug.name}, ${windowS} s windows: no record within 60 s of an edge, every window_s the configured one, one record per window`, async () => {
        p = shippedPipeline([...optIn])
        const reports = await runDay(p, plug)
        for (const domain of domains) {
          const rs = records(p.forwarded, domain)
          // Every window from the first report's to the last closed one, none twice, none skipped.
          expect(rs.length, domain).toBeGreaterThanOrEqual((24 * 3600) / windowS)
          for (const [i, r] of rs.entries()) {
            expect(r.window_s).toBe(windowS)
            if (i > 0) expect(r.window_start).toBe((rs[i - 1]?.window_start ?? 0) + windowS)
            const end = (r.window_start + windowS) * 1000
            expect(r.ts - end).toBeGreaterThanOrEqual(MIN_RELEASE_DELAY_MS)
            expect(r.ts - end).toBeLessThanOrEqual(MAX_RELEASE_DELAY_MS)
            for (const report of reports)
              expect(
                Math.abs(r.ts - report) >= 60_000,
                `record at ${new Date(r.ts).toISOString()} near a report at ${new Date(report).toISOString()}`,
              ).toBe(true)
          }
          // The energy is all there: 4 runs of 17 min at 1000 W.
          const total = rs.reduce((sum, r) => sum + r.energy_wh, 0)
          expect(Math.abs(total - (4 * WATTS * RUN_MS) / HOUR_MS)).toBeLessThanOrEqual(10)
        }
      }, 60_000)
    }
  }
})
