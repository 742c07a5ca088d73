import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { deflateSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { HOUR_MS, shippedPipeline, type Forwarded } from '../../filters/profiles/testing.ts'
import { goldenCaseFiles } from '../golden/cases.ts'

/**
 * Issue 13 part 4: ana (statistics) and 3p receive aggregates on a schedule, never one message per device event.
 * Every input of the golden cases, plus the streams they lack (Valetudo status, canonical devices), is sent again
 * and again at two very different rates for 50 hours; for every category, ana and 3p get at most one message per
 * device per aggregation window, each one an aggregate record, and the same messages at either rate.
 */
const FIXTURES = join(import.meta.dirname, '../fixtures')
const T0 = Date.UTC(2025, 4, 5)

interface Input {
  topic: string
  bytes: Buffer
}

function goldenInputs(optIn: string): Input[] {
  const inputs: Input[] = []
  for (const { path } of goldenCaseFiles()) {
    const golden = JSON.parse(readFileSync(path, 'utf8')) as {
      optIn?: string[]
      inputs: { topic: string; fixture?: string; payload?: unknown; payloadBase64?: string; deflate?: boolean }[]
    }
    if ((golden.optIn ?? []).some((o) => o !== optIn)) continue
    for (const input of golden.inputs) {
      let bytes: Buffer
      if (input.fixture !== undefined) bytes = readFileSync(join(FIXTURES, input.fixture))
      else if (input.payloadBase64 !== undefined) bytes = Buffer.from(input.payloadBase64, 'base64')
      else bytes = Buffer.from(typeof input.payload === 'string' ? input.payload : JSON.stringify(input.payload))
      inputs.push({ topic: input.topic, bytes: input.deflate === true ? deflateSync(bytes) : bytes })
    }
  }
  const extra: [string, unknown][] = [
    ['valetudo/robo1/StatusStateAttribute/status', 'cleaning'],
    ['valetudo/robo1/StatusStateAttribute/status', 'docked'],
    ['valetudo/robo1/BatteryStateAttribute/level', 80],
    ['devices/robot_vacuum/robo2/status', { ts: 1_746_403_200, state: 'cleaning', battery_pct: 55 }],
    ['devices/camera/cam2/event', { ts: 1_746_403_200, type: 'start', label: 'person', score: 0.91 }],
    ['devices/gps_tracker/phone2/location', { ts: 1_746_403_200, lat: 52.52, lon: 13.4, battery_pct: 64 }],
    ['devices/smart_plug/plug2/energy', { ts: 1_746_403_200, total_kwh: 12.5 }],
    ['devices/body_scale/scale2/measurement', { ts: 1_746_403_200, weight_kg: 71.3, bmi: 22.1 }],
  ]
  for (const [topic, payload] of extra)
    inputs.push({ topic, bytes: Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)) })
  return inputs
}

async function run(optIn: string, periodMs: number): Promise<Forwarded[]> {
  const p = shippedPipeline(optIn === '' ? [] : [optIn])
  const inputs = goldenInputs(optIn)
  try {
    for (let t = T0; t < T0 + 50 * HOUR_MS; t += periodMs) {
      // Each input at its own offset within the period, as separate devices would send.
      for (const [i, input] of inputs.entries()) await p.send(t + ((i * 7919) % periodMs), input.topic, input.bytes)
    }
    // The same end for both rates: every window up to it is closed and released.
    await p.tick(T0 + 51 * HOUR_MS, true)
    return p.forwarded.filter((f) => f.domain !== 'svc')
  } finally {
    p.close()
  }
}

describe('ana and 3p get aggregates, not events (issue 13 part 4)', () => {
  for (const optIn of ['', 'health_consent']) {
    it(`at most one message per device per window for every category, the same at one message every 10 minutes as at one an hour${optIn === '' ? '' : ` (${optIn})`}`, async () => {
      const fast = await run(optIn, 10 * 60_000)
      const slow = await run(optIn, HOUR_MS)
      const categories = new Set<string>()
      for (const forwarded of [fast, slow]) {
        const seen = new Set<string>()
        for (const f of forwarded) {
          const [, domain, category, pseudonym] = f.topic.split('/')
          categories.add(category as string)
          const record = f.data as { window_start?: unknown; window_s?: unknown }
          expect(typeof record.window_start, f.topic).toBe('number')
          expect(typeof record.window_s, f.topic).toBe('number')
          const key = `${domain}/${category}/${pseudonym}@${String(record.window_start)}`
          expect(seen.has(key), `${key}: a second message from one device in one window`).toBe(false)
          seen.add(key)
        }
      }
      expect([...categories].sort()).toEqual(
        optIn === ''
          ? ['camera', 'gps_tracker', 'robot_vacuum', 'smart_plug']
          : ['body_scale', 'camera', 'gps_tracker', 'robot_vacuum', 'smart_plug'],
      )
      // The rate does not show: the same records (windows and topics) at either rate; counts may differ, not presence.
      const shape = (fs: Forwarded[]) =>
        fs.map((f) => `${f.topic}@${String((f.data as { window_start: number }).window_start)}`).sort()
      expect(shape(fast)).toEqual(shape(slow))
    }, 240_000)
  }
})
