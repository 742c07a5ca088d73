import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { builtinOperators } from '../../operators/index.ts'
import { Keyring } from '../../../gateway/src/keys/keyring.ts'
import { loadPolicySet } from '../../../gateway/src/policy/load.ts'
import { Classifier } from '../../../gateway/src/streams/classifier.ts'
import { compileAccessor } from '#veil/sdk'
import { builtinProfiles } from '../index.ts'
import { fixture, HOUR_MS, leaks, perDevice, shippedPipeline, type ProfilePipeline } from '../testing.ts'

interface SwitchStatus {
  output: boolean
  apower: number
  voltage: number
  current: number
  aenergy: { total: number; by_minute: number[]; minute_ts: number }
  [key: string]: unknown
}

interface Dump {
  shelly: { id: string; mac: string }
  settings: {
    mqtt: { topic_prefix: string }
    'switch:0': { name: string | null }
    sys: { device: { name: string | null } }
  }
  status: {
    'switch:0': SwitchStatus
    sys: { mac: string }
    wifi: { sta_ip: string; ssid: string; bssid?: string }
  } & Record<string, unknown>
}

/** Real gen2 dumps (Shelly.GetDeviceInfo/GetConfig/GetStatus): the same objects NotifyFullStatus and status/ carry. */
const eu = fixture<Dump>('smartplug/shelly_mock_shellyplusplugs-E86BEAEAA000.json')
const uk = fixture<Dump>('smartplug/shelly_mock_shellypluspluguk-80646FE4F97C.json')

const T0 = Date.UTC(2026, 2, 1, 6, 0, 5)
const WINDOW0 = Date.UTC(2026, 2, 1, 6) / 1000

function identifiers(dump: Dump): string[] {
  const ids = [
    dump.shelly.id,
    dump.shelly.mac,
    dump.shelly.mac.slice(-6),
    dump.status.wifi.sta_ip,
    dump.status.wifi.ssid,
    dump.status.wifi.bssid ?? '',
    dump.settings['switch:0'].name ?? '',
    dump.settings.sys.device.name ?? '',
  ]
  return ids.filter((s) => s.length >= 4)
}

/**
 * A plug with default MQTT settings (rpc_ntf on): online, one NotifyFullStatus on connect, then a NotifyStatus every
 * minute with the new aenergy (Wh counter, by_minute in mWh) and apower, and a NotifyStatus with only output and
 * source when the relay toggles. With `statusNtf`, also status/switch:0 every minute.
 */
async function runPlug(
  p: ProfilePipeline,
  dump: Dump,
  until: number,
  powerAt: (t: number) => number,
  statusNtf = false,
): Promise<void> {
  const prefix = dump.settings.mqtt.topic_prefix
  const src = dump.shelly.id
  const frame = (method: string, t: number, params: Record<string, unknown>) => ({
    src,
    dst: `${prefix}/events`,
    method,
    params: { ts: t / 1000 + 0.01, ...params },
  })
  const sw = dump.status['switch:0']
  let total = sw.aenergy.total
  let output = sw.output
  await p.send(T0, `${prefix}/online`, 'true')
  await p.send(T0, `${prefix}/events/rpc`, frame('NotifyFullStatus', T0, { ...dump.status }))
  for (let t = T0 + 60_000; t <= until; t += 60_000) {
    const power = powerAt(t - 60_000)
    total += power / 60
    if (power > 0 !== output) {
      output = power > 0
      await p.send(
        t,
        `${prefix}/events/rpc`,
        frame('NotifyStatus', t, { 'switch:0': { id: 0, output, source: 'button' } }),
      )
    }
    const minuteTs = Math.floor(t / 60_000) * 60
    const aenergy = {
      total: Math.round(total * 1000) / 1000,
      by_minute: [(power / 60) * 1000, 0, 0],
      minute_ts: minuteTs,
    }
    await p.send(
      t,
      `${prefix}/events/rpc`,
      frame('NotifyStatus', t, { 'switch:0': { id: 0, apower: power, current: power / 230, aenergy } }),
    )
    if (statusNtf) await p.send(t, `${prefix}/status/switch:0`, { ...sw, output, apower: power, aenergy })
  }
  await p.send(
    until,
    `${prefix}/events/rpc`,
    frame('NotifyEvent', until, {
      events: [{ component: 'sys', event: 'scheduled_restart', time_ms: 1000, ts: until / 1000 }],
    }),
  )
}

describe('shelly_gen2 through the shipped smart_plug policy', () => {
  let p: ProfilePipeline
  afterEach(() => p.close())

  it('forwards hourly energy in Wh from params.switch:0.aenergy.total, and nothing instantaneous or identifying', async () => {
    p = shippedPipeline()
    const until = T0 + 3 * HOUR_MS + 2 * 60_000
    // A heater at 2000 W for 15 min (500 Wh), then the fixture's 36.7 W load for two hours (36.7 Wh an hour).
    await runPlug(p, eu, until, (t) => (t < T0 + HOUR_MS / 4 ? 2000 : t >= T0 + HOUR_MS ? 36.7 : 0))
    // The UK plug reports status/switch:0 too (mqtt.status_ntf): the same counter on its own stream.
    await runPlug(p, uk, until, (t) => (t >= T0 + HOUR_MS && t < T0 + 2 * HOUR_MS ? 600 : 0), true)

    // Records leave on the gateway's clock after each window ends; the last window (09:00, two readings) is still
    // open, since nothing drains it here. Each reading counts in the window it arrives in: a reading just after
    // the hour (xx:00:05, carrying the minute before it) counts in the new window.
    const heater = [
      { window_start: WINDOW0, window_s: 3600, energy_wh: 500 },
      // 59 readings of 36.7 W: 36.1 Wh → 40 (carry −3.9); 36.7 − 3.9 = 32.8 → 30.
      { window_start: WINDOW0 + 3600, window_s: 3600, energy_wh: 40 },
      { window_start: WINDOW0 + 7200, window_s: 3600, energy_wh: 30 },
    ]
    const kettleless = [
      { window_start: WINDOW0, window_s: 3600, energy_wh: 0 },
      // The hour at 600 W is reported by the readings 07:01:05 … 08:00:05: 59 minutes in window 1, one in window 2.
      { window_start: WINDOW0 + 3600, window_s: 3600, energy_wh: 590 },
      { window_start: WINDOW0 + 7200, window_s: 3600, energy_wh: 10 },
    ]
    for (const domain of ['svc', 'ana']) {
      const rpc = perDevice(p.forwarded, domain, 'rpc')
      expect(rpc).toHaveLength(2)
      expect(rpc).toContainEqual(heater)
      expect(rpc).toContainEqual(kettleless)
    }
    expect(perDevice(p.forwarded, 'svc', 'switch')).toEqual([kettleless])
    // ana gets one record per device and hour: status/switch:0 is the UK plug again, so ana gets only its rpc records.
    expect(perDevice(p.forwarded, 'ana', 'switch')).toEqual([])
    expect(perDevice(p.forwarded, 'svc', 'online')).toEqual([['true'], ['true']])
    expect(new Set(p.forwarded.filter((f) => f.domain === 'ana').map((f) => f.stream))).toEqual(new Set(['rpc']))

    // Frames without the counter (relay edges, NotifyEvent) leave nothing; no power, voltage or relay state ever does.
    const rpcResults = p.results.filter((r) => r.stream === 'rpc')
    expect(
      rpcResults.filter((r) => r.domainDrops.some((d) => d.reason === 'empty_after_filter')).length,
    ).toBeGreaterThanOrEqual(2 + 2 * 2)
    for (const f of p.forwarded) {
      expect(f.topic).toMatch(/^veil\/(svc|ana)\/smart_plug\/[a-z2-7]{26}\/(rpc|switch|online)$/)
      expect(f.text).not.toMatch(/apower|voltage|current|output|by_minute|minute_ts|src|ts"/)
    }
    expect(leaks(p.forwarded, [...identifiers(eu), ...identifiers(uk)], p.audit)).toEqual([])
  })

  it('maps a topic prefix to one pseudonym whatever its letter case (gen1 upper-case, gen2 lower-case MACs)', async () => {
    p = shippedPipeline()
    const id = eu.shelly.id
    await p.send(T0, `${id}/online`, 'true')
    await p.send(T0, `${id.toUpperCase()}/online`, 'true')
    const topics = p.forwarded.map((f) => f.topic)
    expect(topics).toHaveLength(2)
    expect(topics[0]).toBe(topics[1])
  })

  it('drops frames that are not JSON-RPC notifications of a plug, and unknown components', async () => {
    p = shippedPipeline()
    const id = eu.shelly.id
    const cases: [string, string, string][] = [
      [`${id}/events/rpc`, '{"src":"x","params":{}}', 'invalid'],
      [`${id}/events/rpc`, '{"method":"NotifyStatus","params":{"switch:0":{"aenergy":{"total":"lots"}}}}', 'invalid'],
      [`${id}/events/rpc`, '{"method":"NotifyStatus","params":{"switch:0":{"aenergy":{"total":-1}}}}', 'invalid'],
      [`${id}/online`, 'yes', 'invalid'],
      [`${id}/status/wifi`, JSON.stringify(eu.status.wifi), 'unknown_topic'],
      [`${id}/status/sys`, JSON.stringify(eu.status.sys), 'unknown_topic'],
      [`${id}/rpc`, '{"id":1,"method":"Shelly.GetStatus"}', 'unknown_topic'],
    ]
    for (const [topic, payload, reason] of cases)
      expect((await p.send(T0, topic, payload)).dropped?.reason, topic).toBe(reason)
    expect(p.forwarded).toEqual([])
  })
})

describe('policy paths through component keys (switch:0)', () => {
  function load(allow: string, total: string): void {
    const dir = mkdtempSync(join(tmpdir(), 'veil-gen2-policy-'))
    try {
      writeFileSync(
        join(dir, 'smart_plug.yaml'),
        `category: smart_plug
domains:
  svc:
    streams:
      shelly_gen2/rpc:
        allow: [${JSON.stringify(allow)}]
        operators:
          - energy_window: { total: ${JSON.stringify(total)}, unit: Wh }
`,
      )
      loadPolicySet(dir, {
        classifier: new Classifier(builtinProfiles),
        operators: builtinOperators,
        keyring: new Keyring(Buffer.alloc(32), new Map()),
        dataDir: dir,
      })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }

  it('accepts a colon in an allowlist key, and the accessor follows it', () => {
    expect(() => load('params.switch:0.aenergy.total', 'params.switch:0.aenergy.total')).not.toThrow()
    const total = compileAccessor('params.switch:0.aenergy.total')
    expect(total.get({ params: { 'switch:0': { aenergy: { total: 12.5 } } } })).toBe(12.5)
    expect(total.get({ params: { switch: { 0: { aenergy: { total: 12.5 } } } } })).toBeUndefined()
  })

  it('still refuses other punctuation, empty keys and prototype keys', () => {
    for (const allow of ['params.switch 0.aenergy', 'params/switch:0', 'params..total', 'a.*', 'a:b;c', '__proto__.x'])
      expect(() => load(allow, 'params.switch:0.aenergy.total'), allow).toThrow()
  })
})
