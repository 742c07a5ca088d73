import { describe, expect, it } from 'vitest'
import { TEST_POLICIES } from '../../../test/helpers/gateway.ts'
import { MemoryAuditLog } from '../audit/audit.ts'
import { resolveRotation } from '../keys/rotation.ts'
import { builtinPipeline } from '../../../test/helpers/pipeline.ts'

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS
const SENSOR = 'tele/tasmota_0329F7/SENSOR'
const DEVICE = 'tasmota_0329f7'
const payload = Buffer.from(
  JSON.stringify({ Time: '2026-01-01T00:00:00', ENERGY: { Total: 12.5, Yesterday: 0.31, Today: 0.2, Power: 42 } }),
)

function build() {
  const audit = new MemoryAuditLog()
  // The configuration's defaults: ana and 3p rotate (30 d, 26 h gap), svc never.
  const keyPolicies = new Map([
    ['ana', {}],
    ['3p', {}],
  ] as const)
  const { pipeline, keyring, metrics } = builtinPipeline({
    policies: TEST_POLICIES,
    master: Buffer.alloc(32, 9),
    keyPolicies,
    audit,
  })
  return { pipeline, keyring, metrics, audit }
}

describe('route stage: the silent gap around a device rotation', () => {
  it('drops ana copies inside the gap (rotation_gap, counted and audited), keeps svc, and ana switches pseudonym across it', async () => {
    const { pipeline, keyring, metrics, audit } = build()
    const epochMs = 30 * DAY_MS
    const gapMs = (resolveRotation({}).schedules.get('ana')?.get('smart_plug')?.gapSeconds ?? 0) * 1000
    const phase = keyring.phaseMs('ana', 'smart_plug', DEVICE)
    const r = (Math.floor((Date.UTC(2026, 0, 1) - phase) / epochMs) + 1) * epochMs + phase
    const ana: { t: number; topic: string }[] = []
    const svc = new Set<string>()
    let gapDrops = 0
    // A copy every hour for two days on either side of the device's rotation moment.
    for (let t = r - 2 * DAY_MS + 1234; t < r + 2 * DAY_MS; t += HOUR_MS) {
      const result = await pipeline.process(SENSOR, payload, t)
      for (const out of result.outputs) {
        if (out.domain === 'ana') ana.push({ t, topic: out.topic })
        if (out.domain === 'svc') svc.add(out.topic)
      }
      const inGap = t >= r - gapMs / 2 && t < r + gapMs / 2
      expect(result.domainDrops.filter((d) => d.reason === 'rotation_gap')).toEqual(
        inGap ? [{ stage: 'route', domain: 'ana', reason: 'rotation_gap' }] : [],
      )
      if (inGap) gapDrops++
    }
    expect(gapDrops).toBe(26)
    expect(svc.size).toBe(1)
    expect(ana.every((a) => a.t < r - gapMs / 2 || a.t >= r + gapMs / 2)).toBe(true)
    const before = new Set(ana.filter((a) => a.t < r).map((a) => a.topic))
    const after = new Set(ana.filter((a) => a.t >= r).map((a) => a.topic))
    expect(before.size).toBe(1)
    expect(after.size).toBe(1)
    expect([...before][0]).not.toBe([...after][0])
    const counted = (await metrics.dropped.get()).values
      .filter((v) => v.labels.reason === 'rotation_gap')
      .reduce((n, v) => n + v.value, 0)
    expect(counted).toBe(26)
    expect(audit.entries.filter((e) => e.reason === 'rotation_gap').length).toBe(26)
    expect(
      audit.entries.filter((e) => e.reason === 'rotation_gap').every((e) => e.domain === 'ana' && e.stage === 'route'),
    ).toBe(true)
  })
})
