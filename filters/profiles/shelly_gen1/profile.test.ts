import { afterEach, describe, expect, it } from 'vitest'
import { energyRecords, fixture, HOUR_MS, leaks, perDevice, shippedPipeline, type ProfilePipeline } from '../testing.ts'

interface Dump {
  shelly: { type: string; mac: string; fw: string }
  settings: { device: { hostname: string }; name: string | null; wifi_sta: { ssid: string | null; ip: string | null } }
  status: {
    wifi_sta: { ssid: string; ip: string; rssi: number }
    meters: { total: number }[]
    uptime: number
  } & Record<string, unknown>
}

/** Real gen1 dumps: `name` "Washing machine plug", SSID "Tamer Umniah" (a person), IPs, MACs. */
const washer = fixture<Dump>('smartplug/shelly_mock_shellyplug-s-C38EAB.json')
const spare = fixture<Dump>('smartplug/shelly_mock_shellyplug-s-4022D88349C4.json')

const T0 = Date.UTC(2026, 2, 1, 6, 0, 10)
const WINDOW0 = Date.UTC(2026, 2, 1, 6) / 1000

/** The identifiers the dumps hold; none may leave in any form. */
function identifiers(dump: Dump): string[] {
  const id = dump.settings.device.hostname
  return [
    id,
    id.slice(-6),
    dump.shelly.mac,
    dump.status.wifi_sta.ip,
    dump.status.wifi_sta.ssid,
    dump.settings.name ?? '',
    dump.settings.wifi_sta.ip ?? '',
  ].filter((s) => s.length >= 4)
}

/**
 * A plug as the firmware publishes it (mqtt.update_period 30 s): relay/0, relay/0/power (W) and relay/0/energy (a
 * watt-minute counter, an integer) every 30 s; online and announce on connect; info (the /status JSON) hourly.
 * `powerAt` gives the load in W at a time; the counter grows by power × 0.5 min per period.
 */
async function runPlug(p: ProfilePipeline, dump: Dump, until: number, powerAt: (t: number) => number): Promise<void> {
  const id = dump.settings.device.hostname
  const base = `shellies/${id}`
  const announce = {
    id,
    model: dump.shelly.type,
    mac: dump.shelly.mac,
    ip: dump.status.wifi_sta.ip,
    new_fw: false,
    fw_ver: dump.shelly.fw,
  }
  await p.send(T0, `${base}/online`, 'true')
  await p.send(T0, 'shellies/announce', announce)
  await p.send(T0, `${base}/announce`, announce)
  let counter = dump.status.meters[0]?.total ?? 0
  let relay = ''
  for (let t = T0; t <= until; t += 30_000) {
    const power = powerAt(t)
    const state = power > 0 ? 'on' : 'off'
    if (state !== relay) await p.send(t, `${base}/relay/0`, state)
    relay = state
    await p.send(t, `${base}/relay/0/power`, power.toFixed(2))
    await p.send(t, `${base}/relay/0/energy`, String(counter))
    if ((t - T0) % HOUR_MS === 0)
      await p.send(t, `${base}/info`, { ...dump.status, uptime: dump.status.uptime + (t - T0) / 1000 })
    counter += Math.round(power * 0.5)
  }
}

describe('shelly_gen1 through the shipped smart_plug policy', () => {
  let p: ProfilePipeline
  afterEach(() => p.close())

  it('forwards hourly energy in Wh from the watt-minute counter, and nothing instantaneous or identifying', async () => {
    p = shippedPipeline()
    const until = T0 + 3 * HOUR_MS + 60_000
    // Washing machine: 1200 W for 30 min in the first hour, 60 W through the second, off in the third.
    await runPlug(p, washer, until, (t) =>
      t < T0 + HOUR_MS / 2 ? 1200 : t >= T0 + HOUR_MS && t < T0 + 2 * HOUR_MS ? 60 : 0,
    )
    // The second plug idles at 8 W: 8 Wh per hour, rounded to 10 Wh steps with the remainder carried.
    await runPlug(p, spare, until, () => 8)

    for (const domain of ['svc', 'ana']) {
      const byDevice = perDevice(p.forwarded, domain, 'energy')
      expect(byDevice).toHaveLength(2)
      // 1200 W × 30 min = 36000 Wmin = 600 Wh; 60 W × 60 min = 3600 Wmin = 60 Wh; then nothing.
      expect(byDevice).toContainEqual([
        { window_start: WINDOW0, window_s: 3600, energy_wh: 600 },
        { window_start: WINDOW0 + 3600, window_s: 3600, energy_wh: 60 },
        { window_start: WINDOW0 + 7200, window_s: 3600, energy_wh: 0 },
      ])
      // 8 W = 480 Wmin = 8 Wh an hour: 10, 10, 0 in 10 Wh steps, the rounding remainder carried.
      expect(byDevice).toContainEqual([
        { window_start: WINDOW0, window_s: 3600, energy_wh: 10 },
        { window_start: WINDOW0 + 3600, window_s: 3600, energy_wh: 10 },
        { window_start: WINDOW0 + 7200, window_s: 3600, energy_wh: 0 },
      ])
    }

    // Only the hourly records leave for ana; svc also gets availability and coarse device health. Relay edges stay
    // home (see filters/policies/smart_plug.yaml): their report would go out at the time of the next edge.
    expect(new Set(p.forwarded.filter((f) => f.domain === 'ana').map((f) => f.stream))).toEqual(new Set(['energy']))
    expect(new Set(p.forwarded.filter((f) => f.domain === 'svc').map((f) => f.stream))).toEqual(
      new Set(['energy', 'online', 'info']),
    )
    expect(p.forwarded.filter((f) => f.stream === 'online').map((f) => f.data)).toEqual(['true', 'true'])
    expect(p.forwarded.filter((f) => f.stream === 'relay')).toEqual([])
    for (const info of p.forwarded.filter((f) => f.stream === 'info')) {
      expect(info.data).toEqual({ uptime: expect.any(Number), wifi_sta: { rssi: -60 } })
      expect((info.data as { uptime: number }).uptime % 86_400).toBe(0)
    }
    // No power series, no announce: the streams exist but no domain is given them.
    expect(p.forwarded.some((f) => f.stream === 'power' || f.stream === 'announce')).toBe(false)
    expect(p.results.filter((r) => r.stream === 'power').every((r) => r.dropped?.reason === 'no_policy')).toBe(true)
    expect(p.results.filter((r) => r.stream === 'announce').map((r) => r.dropped)).toEqual(
      Array(4).fill({ stage: 'filter', reason: 'no_policy' }),
    )

    for (const f of p.forwarded)
      expect(f.topic).toMatch(/^veil\/(svc|ana)\/smart_plug\/[a-z2-7]{26}\/(energy|online|relay|info)$/)
    expect(leaks(p.forwarded, [...identifiers(washer), ...identifiers(spare)], p.audit)).toEqual([])
  })

  it('re-baselines at a counter reset (the gen1 counter restarts at 0 on reboot): no negative or bogus window', async () => {
    p = shippedPipeline()
    const base = `shellies/${washer.settings.device.hostname}/relay/0/energy`
    await p.send(T0, base, '176010')
    await p.send(T0 + 1_200_000, base, '179010') // 50 Wh (3000 Wmin) before the reboot
    await p.send(T0 + 1_800_000, base, '0') // reboot in the first hour
    await p.send(T0 + HOUR_MS, base, '6000') // 100 Wh since the reboot
    await p.send(T0 + 2 * HOUR_MS, base, '12000')
    // The end of the input closes the open window. Each reading counts in the window it arrives in (06:00:10,
    // 07:00:10, 08:00:10): the energy used before the reset is kept, the drop to 0 is not counted.
    await p.tick(T0 + 2 * HOUR_MS, true)
    expect(energyRecords(p.forwarded, 'svc', 'energy')).toEqual([
      { window_start: WINDOW0, window_s: 3600, energy_wh: 50 },
      { window_start: WINDOW0 + 3600, window_s: 3600, energy_wh: 100 },
      { window_start: WINDOW0 + 7200, window_s: 3600, energy_wh: 100 },
    ])
  })

  it('has a leak check that finds an identifier in a topic or payload, in any form', () => {
    p = shippedPipeline()
    const out = (topic: string, text: string) => ({ ts: 0, domain: 'svc', topic, stream: 'x', data: null, text })
    expect(leaks([out('veil/svc/smart_plug/shellyplug-s-c38eab/x', '{}')], ['shellyplug-s-C38EAB'])).not.toEqual([])
    expect(leaks([out('veil/svc/smart_plug/p/x', '{"data":"VGFtZXIgVW1uaWFo"}')], ['Tamer Umniah'])).not.toEqual([])
    expect(leaks([out('veil/svc/smart_plug/p/x', '{"data":"e8:68:e7:c3:8e:ab"}')], [])).not.toEqual([])
  })

  it('drops payloads that are not what the firmware sends', async () => {
    p = shippedPipeline()
    const id = washer.settings.device.hostname
    const cases: [string, string][] = [
      [`shellies/${id}/relay/0/energy`, 'lots'],
      [`shellies/${id}/relay/0/energy`, '-5'],
      [`shellies/${id}/relay/0`, 'ON'],
      [`shellies/${id}/online`, 'Online'],
      ['shellies/announce', '{"model":"SHPLG-S"}'],
    ]
    for (const [topic, payload] of cases)
      expect((await p.send(T0, topic, payload)).dropped, `${topic} ${payload}`).toMatchObject({
        stage: expect.stringMatching(/decode|validate/),
      })
    expect(p.forwarded).toEqual([])
  })
})
