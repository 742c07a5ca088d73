// grantedPurposes against a model written the plain way: for each purpose and domain, the last record that applies
// decides, a minor's own grants do not count, and without a record the household default (not for a minor) or, for
// a share purpose, granted.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DOMAINS, type Domain } from '../sdk/model.ts'
import { CONSENT_SOURCES, SHARE_PURPOSES, grantedPurposes, type ConsentRecord } from './model.ts'

const SUBJECTS = ['alice', 'bob'] as const
const PURPOSES = ['health_consent', 'precise_location', 'share_ana'] as const

function reference(
  subject: { name: string; minor: boolean },
  domain: Domain,
  records: readonly ConsentRecord[],
  defaults: ReadonlySet<string>,
): Set<string> {
  const purposes = new Set([...defaults, ...SHARE_PURPOSES, ...records.map((r) => r.purpose)])
  const granted = new Set<string>()
  for (const purpose of purposes) {
    let decided: boolean | undefined
    for (const r of records) {
      if (r.subject !== subject.name || r.purpose !== purpose) continue
      if (r.domain !== undefined && r.domain !== domain) continue
      if (subject.minor && r.granted && r.by === 'subject') continue
      decided = r.granted
    }
    const fallback = SHARE_PURPOSES.includes(purpose) || (!subject.minor && defaults.has(purpose))
    if (decided ?? fallback) granted.add(purpose)
  }
  return granted
}

const record = fc.record({
  time: fc.constant('2026-01-01T00:00:00.000Z'),
  subject: fc.constantFrom(...SUBJECTS),
  purpose: fc.constantFrom(...PURPOSES),
  domain: fc.option(fc.constantFrom(...DOMAINS), { nil: undefined }),
  granted: fc.boolean(),
  by: fc.constantFrom(...CONSENT_SOURCES),
})

describe('grantedPurposes', () => {
  it('equals the reference model for any sequence of grants and withdrawals', () => {
    fc.assert(
      fc.property(
        fc.array(record, { maxLength: 40 }),
        fc.constantFrom(...SUBJECTS),
        fc.boolean(),
        fc.subarray(['health_consent', 'precise_location', 'energy_15min']),
        (records, name, minor, defaults) => {
          const subject = { name, minor }
          for (const domain of DOMAINS) {
            const actual = grantedPurposes(subject, domain, records, new Set(defaults))
            expect([...actual].sort()).toEqual([...reference(subject, domain, records, new Set(defaults))].sort())
          }
        },
      ),
      { numRuns: 500 },
    )
  })

  it('lets a withdrawal win over anything before it, whoever gave it', () => {
    const grant: ConsentRecord = {
      time: '2026-01-01T00:00:00.000Z',
      subject: 'alice',
      purpose: 'health_consent',
      domain: 'ana',
      granted: true,
      by: 'guardian',
    }
    const withdraw: ConsentRecord = { ...grant, domain: undefined, granted: false, by: 'subject' }
    for (const minor of [false, true]) {
      expect(grantedPurposes({ name: 'alice', minor }, 'ana', [grant], new Set()).has('health_consent')).toBe(true)
      expect(
        grantedPurposes({ name: 'alice', minor }, 'ana', [grant, withdraw], new Set(['health_consent'])).has(
          'health_consent',
        ),
      ).toBe(false)
    }
  })
})
