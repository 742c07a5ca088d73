import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { builtinPipeline } from '../../../test/helpers/pipeline.ts'
import { DOMAINS, type Domain } from '../sdk/model.ts'
import { ConsentBook, consentBlocks, purposeBit, type ConsentHolder } from './book.ts'
import type { ConsentRecord, Subject } from './model.ts'

const WEIGHT = 'miscale/alice/weight'
const weighing = (weight = 72.45): Buffer =>
  Buffer.from(JSON.stringify({ weight, weight_unit: 'kg', bmi: 23.65, timestamp: '2026-03-01T12:00:37+00:00' }))
const T = Date.UTC(2026, 2, 1, 12)

const alice = (extra: Partial<Subject> = {}): Subject => ({
  name: 'alice',
  id: 'a11ce0000000000a',
  devices: [{ profile: 'miscale', deviceId: 'alice' }],
  minor: false,
  regions: undefined,
  created: '2026-01-01T00:00:00.000Z',
  ...extra,
})
const record = (purpose: string, granted: boolean, extra: Partial<ConsentRecord> = {}): ConsentRecord => ({
  time: '2026-02-01T00:00:00.000Z',
  subject: 'alice',
  purpose,
  domain: undefined,
  granted,
  by: 'subject',
  ...extra,
})

function book(
  subjects: Subject[],
  records: ConsentRecord[],
  defaults: string[] = [],
  regions: [Domain, string][] = [],
): ConsentBook {
  return ConsentBook.compile({ subjects, records, defaults: new Set(defaults), regions: new Map(regions) })
}

function pipelineWith(current: ConsentBook) {
  const consent: ConsentHolder = { current }
  const { pipeline } = builtinPipeline({ consent })
  return { pipeline, consent }
}

describe('consent in the filter stage', () => {
  it('a grant picks the opt-in variant at the next message, a withdrawal drops it at the next, with no reload', async () => {
    const { pipeline, consent } = pipelineWith(book([alice()], []))
    expect((await pipeline.process(WEIGHT, weighing(), T)).dropped).toEqual({ stage: 'filter', reason: 'no_policy' })
    consent.current = book([alice()], [record('health_consent', true)])
    const granted = await pipeline.process(WEIGHT, weighing(), T)
    expect(granted.outputs.map((o) => o.domain)).toEqual(['svc'])
    expect(JSON.parse(granted.outputs[0]?.payload.toString() ?? '{}').data.weight).toBe(72.5)
    consent.current = book([alice()], [record('health_consent', true), record('health_consent', false)])
    expect((await pipeline.process(WEIGHT, weighing(), T)).dropped).toEqual({ stage: 'filter', reason: 'no_policy' })
  })

  it('the household defaults hold for a device nobody claims, and for an adult until a record overrides them', async () => {
    const { pipeline } = pipelineWith(book([alice()], [record('health_consent', false)], ['health_consent']))
    expect((await pipeline.process('miscale/bob/weight', weighing(), T)).outputs.map((o) => o.domain)).toEqual(['svc'])
    expect((await pipeline.process(WEIGHT, weighing(), T)).dropped?.reason).toBe('no_policy')
  })

  it('withdrawing a domain (share_svc) drops its copies as consent_withdrawn; for one domain only with --domain', async () => {
    const { pipeline } = pipelineWith(book([alice()], [record('health_consent', true), record('share_svc', false)]))
    const result = await pipeline.process(WEIGHT, weighing(), T)
    expect(result.outputs).toEqual([])
    expect(result.domainDrops).toContainEqual({ stage: 'filter', domain: 'svc', reason: 'consent_withdrawn' })
  })

  it('a domain-specific record overrides an every-domain one before it, and a later every-domain one overrides both', () => {
    const b1 = book([alice()], [record('health_consent', true), record('health_consent', false, { domain: 'ana' })])
    const view = b1.of('miscale', 'alice')
    const bit = purposeBit('health_consent')
    expect(consentBlocks(view, 'svc', 'body_scale', bit)).toBeUndefined()
    expect(consentBlocks(view, 'ana', 'body_scale', bit)).toBe('consent_withdrawn')
    const b2 = book([alice()], [record('health_consent', false, { domain: 'ana' }), record('health_consent', true)])
    expect(consentBlocks(b2.of('miscale', 'alice'), 'ana', 'body_scale', bit)).toBeUndefined()
  })

  it('a region the subject does not allow, or a domain with no region declared, is refused as residency', async () => {
    const subject = alice({ regions: ['EU'] })
    const records = [record('health_consent', true)]
    const eu = pipelineWith(book([subject], records, [], [['svc', 'EU']]))
    expect((await eu.pipeline.process(WEIGHT, weighing(), T)).outputs.map((o) => o.domain)).toEqual(['svc'])
    const us = pipelineWith(book([subject], records, [], [['svc', 'US']]))
    expect((await us.pipeline.process(WEIGHT, weighing(), T)).domainDrops).toContainEqual({
      stage: 'filter',
      domain: 'svc',
      reason: 'residency',
    })
    const undeclared = pipelineWith(book([subject], records))
    expect((await undeclared.pipeline.process(WEIGHT, weighing(), T)).domainDrops).toContainEqual({
      stage: 'filter',
      domain: 'svc',
      reason: 'residency',
    })
    // A subject without limits goes anywhere, declared or not.
    const free = pipelineWith(book([alice()], records))
    expect((await free.pipeline.process(WEIGHT, weighing(), T)).outputs.map((o) => o.domain)).toEqual(['svc'])
  })

  it("a minor's grant counts only from a guardian, and household switches are not a guardian's consent", () => {
    const bit = purposeBit('health_consent')
    const minor = alice({ minor: true })
    expect(
      consentBlocks(
        book([minor], [record('health_consent', true)], ['health_consent']).of('miscale', 'alice'),
        'svc',
        'body_scale',
        bit,
      ),
    ).toBe('consent_withdrawn')
    expect(
      consentBlocks(
        book([minor], [record('health_consent', true, { by: 'guardian' })]).of('miscale', 'alice'),
        'svc',
        'body_scale',
        bit,
      ),
    ).toBeUndefined()
  })

  it("a minor's location, health and camera data never leave for ana or 3p, whatever is recorded", () => {
    const minor = book(
      [alice({ minor: true })],
      [record('health_consent', true, { by: 'guardian' }), record('precise_location', true, { by: 'guardian' })],
    )
    const view = minor.of('miscale', 'alice')
    for (const category of ['gps_tracker', 'body_scale', 'camera'] as const) {
      for (const domain of ['ana', '3p'] as const)
        expect(consentBlocks(view, domain, category, 0), `${category} ${domain}`).toBe('minor')
      expect(consentBlocks(view, 'svc', category, 0)).toBeUndefined()
    }
    expect(consentBlocks(view, 'ana', 'smart_plug', 0)).toBeUndefined()
  })

  it('scheduled records absorbed under a purpose are dropped at release if it was withdrawn meanwhile', async () => {
    const { pipeline, consent } = pipelineWith(book([alice()], [record('health_consent', true)]))
    await pipeline.process(WEIGHT, weighing(), T)
    consent.current = book([alice()], [record('health_consent', true), record('health_consent', false)])
    const released = (await pipeline.tick(T + 2 * 86_400_000, true)).flatMap((r) => r.outputs)
    expect(released.filter((o) => o.domain === 'ana')).toEqual([])
    // The same with the consent kept: ana's daily BMI-class count leaves.
    const kept = pipelineWith(book([alice()], [record('health_consent', true)]))
    await kept.pipeline.process(WEIGHT, weighing(), T)
    expect(
      (await kept.pipeline.tick(T + 2 * 86_400_000, true)).flatMap((r) => r.outputs).map((o) => o.domain),
    ).toContain('ana')
  })
})

describe('property: no copy leaves under a purpose withdrawn at the time it is made', () => {
  const PURPOSES = ['health_consent', 'share_svc', 'share_ana'] as const
  const recordArb = fc.record({
    purpose: fc.constantFrom(...PURPOSES),
    granted: fc.boolean(),
    domain: fc.option(fc.constantFrom(...DOMAINS), { nil: undefined }),
    by: fc.constantFrom('subject' as const, 'guardian' as const),
  })

  it('after any sequence of grants and withdrawals, a copy leaves for a domain only if its purposes are granted there by the last applicable record', async () => {
    const { pipeline, consent } = pipelineWith(book([alice()], []))
    await fc.assert(
      fc.asyncProperty(fc.array(recordArb, { maxLength: 12 }), fc.boolean(), async (changes, minor) => {
        const records = changes.map((c) => record(c.purpose, c.granted, { domain: c.domain, by: c.by }))
        consent.current = book([alice({ minor })], records)
        const result = await pipeline.process(WEIGHT, weighing(), T)
        const lastFor = (purpose: string, domain: Domain): boolean | undefined => {
          let state: boolean | undefined
          for (const r of records)
            if (
              r.purpose === purpose &&
              (r.domain === undefined || r.domain === domain) &&
              (r.granted === false || !minor || r.by !== 'subject')
            )
              state = r.granted
          return state
        }
        for (const out of result.outputs) {
          expect(lastFor('health_consent', out.domain)).toBe(true)
          expect(lastFor(`share_${out.domain}`, out.domain)).not.toBe(false)
          if (minor) expect(out.domain).toBe('svc')
        }
        // And the converse, so the property is not met by sending nothing: granted for svc means a svc copy.
        const svcGranted = lastFor('health_consent', 'svc') === true && lastFor('share_svc', 'svc') !== false
        expect(result.outputs.some((o) => o.domain === 'svc')).toBe(svcGranted)
      }),
      { numRuns: 300 },
    )
  })
})

describe('forgetDevices: erasure reaches the operators device state', () => {
  it("an energy window that absorbed a forgotten device's readings releases nothing for it; other devices keep theirs", async () => {
    const { forgetDevices } = await import('../sdk/state.ts')
    const T0 = Date.UTC(2026, 2, 1, 10)
    /** Per domain, the devices (pseudonyms) an hour of two plugs' readings releases records for. */
    const run = async (forget: readonly string[]): Promise<Record<string, number>> => {
      const { pipeline } = builtinPipeline()
      for (const [plug, total] of [
        ['tasmota_f0a001', 10],
        ['tasmota_b0b002', 20],
      ] as const) {
        await pipeline.process(`tele/${plug}/SENSOR`, Buffer.from(JSON.stringify({ ENERGY: { Total: total } })), T0)
        await pipeline.process(
          `tele/${plug}/SENSOR`,
          Buffer.from(JSON.stringify({ ENERGY: { Total: total + 0.5 } })),
          T0 + 60_000,
        )
      }
      if (forget.length > 0) expect(forgetDevices(forget)).toBeGreaterThan(0)
      const outputs = (await pipeline.tick(T0 + 2 * 3_600_000, true)).flatMap((r) => r.outputs)
      const devices: Record<string, Set<string>> = {}
      for (const o of outputs) (devices[o.domain] ??= new Set()).add(o.topic.split('/')[3] as string)
      return Object.fromEntries(Object.entries(devices).map(([d, set]) => [d, set.size]))
    }
    const kept = await run([])
    expect(Object.values(kept).every((n) => n === 2)).toBe(true)
    const forgotten = await run(['tasmota_f0a001'])
    expect(Object.keys(forgotten).sort()).toEqual(Object.keys(kept).sort())
    expect(Object.values(forgotten).every((n) => n === 1)).toBe(true)
  })
})
