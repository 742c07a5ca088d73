import { join } from 'node:path'
import { builtinProfiles } from '../filters/profiles/index.ts'
import { ConsentBook, type SubjectView } from '../gateway/src/consent/book.ts'
import type { DeviceRef, Subject } from '../gateway/src/consent/model.ts'
import { Classifier } from '../gateway/src/streams/classifier.ts'
import { tempDir } from '../test/helpers/gateway.ts'
import { typicalMessages, type TypicalMessage } from './messages.ts'
import { benchPipeline, type BenchPipeline } from './pipeline.ts'
import { round } from './stats.ts'
import { interleave, nsPerOp, warmUp, type Batch } from './timing.ts'

/**
 * Section (f): what consent costs per message (issue 15). The filter stage looks the device's subject up once per
 * message (`ConsentBook.of`) and picks each domain's policy variant with a bit test; this measures the lookup alone
 * and the whole pipeline with a household-only book against a book of many subjects.
 */
export interface ConsentOptions {
  /** Alternating rounds of the pipeline contenders (as in section (a)). */
  readonly rounds: number
  readonly batch: number
  readonly warmup: number
  readonly stepMs: number
  /** Subjects in the large book, each claiming two devices (a plug and a phone). */
  readonly subjects: number
  /** Lookups per timed batch: a lookup is a few ns, so a batch is long enough for the clock. */
  readonly lookupBatch: number
}

export const CONSENT_FULL: ConsentOptions = {
  rounds: 150,
  batch: 400,
  warmup: 20_000,
  stepMs: 10_000,
  subjects: 1_000,
  lookupBatch: 100_000,
}
export const CONSENT_QUICK: ConsentOptions = {
  rounds: 20,
  batch: 200,
  warmup: 2_000,
  stepMs: 10_000,
  subjects: 1_000,
  lookupBatch: 20_000,
}

/** The budget issue 15 set for consent: at most 0.1 µs per message. */
export const CONSENT_BUDGET_NS = 100

export interface LookupRow {
  /** `household only`, `1 000 subjects, hit`, `1 000 subjects, miss`, or `loop only` (the timing loop, no lookup). */
  readonly book: string
  readonly ns: number
}

export interface ConsentPipelineRow {
  readonly category: string
  readonly stream: string
  /** Median ns per message: the household-only book, twice (their spread is the noise), and the large book. */
  readonly householdNs: number
  readonly householdAgainNs: number
  readonly subjectsNs: number
  /** subjectsNs − householdNs. */
  readonly deltaNs: number
  /** |householdAgainNs − householdNs|: what two identical pipelines differ by in the same run. */
  readonly noiseNs: number
  /** Copies out per message with each book: the same, since the subject holds the household's defaults. */
  readonly outputsHousehold: number
  readonly outputsSubjects: number
}

export interface ConsentResult {
  readonly subjects: number
  readonly budgetNs: number
  readonly lookups: LookupRow[]
  readonly pipeline: ConsentPipelineRow[]
}

const CREATED = '2026-02-01T00:00:00.000Z'

/**
 * `count` adult subjects with no records (so they hold the household's defaults and the filter picks the same
 * variants for them as for the household: the pipelines differ only in the lookup), each claiming two devices.
 * The first claims `claimed` (the typical messages' devices), the others made-up plugs and phones.
 */
export function manySubjects(count: number, claimed: readonly DeviceRef[]): Subject[] {
  const subjects: Subject[] = []
  for (let i = 0; i < count; i++) {
    const devices: DeviceRef[] =
      i === 0
        ? [...claimed]
        : [
            { profile: 'tasmota', deviceId: `tasmota_${i.toString(16).padStart(6, '0')}` },
            { profile: 'owntracks', deviceId: `person${i}/phone${i}` },
          ]
    subjects.push({
      name: `person${i}`,
      id: i.toString(16).padStart(16, '0'),
      devices,
      minor: false,
      regions: undefined,
      created: CREATED,
    })
  }
  return subjects
}

export function bookOf(subjects: readonly Subject[]): ConsentBook {
  return ConsentBook.compile({ subjects, records: [], defaults: new Set(), regions: new Map() })
}

/** The device as the filter stage sees it: the classifier's profile and device id for the message's topic. */
function deviceOf(classifier: Classifier, message: TypicalMessage): DeviceRef {
  const c = classifier.classify(message.topic)
  if (c?.deviceId === undefined) throw new Error(`${message.stream}: no device id in ${message.topic}`)
  return { profile: c.stream.profile, deviceId: c.deviceId }
}

async function lookups(
  book: ConsentBook,
  household: ConsentBook,
  subjects: readonly Subject[],
  options: ConsentOptions,
): Promise<LookupRow[]> {
  // 1 024 keys cycled through, so a hit does not always find the same entry in cache.
  const K = 1024
  const hits: DeviceRef[] = []
  // Copies, not the book's own strings: the filter stage's device id is cut from each message's topic.
  const copy = (s: string): string => ` ${s}`.slice(1)
  for (let i = 0; i < K; i++) {
    const d = (subjects[i % subjects.length] as Subject).devices[i % 2] as DeviceRef
    hits.push({ profile: copy(d.profile), deviceId: copy(d.deviceId) })
  }
  const misses: DeviceRef[] = hits.map((d, i) => ({ profile: d.profile, deviceId: `${d.deviceId}_unclaimed${i}` }))
  for (const d of hits)
    if (book.of(d.profile, d.deviceId) === book.household) throw new Error(`${d.deviceId}: not claimed`)
  for (const d of misses)
    if (book.of(d.profile, d.deviceId) !== book.household) throw new Error(`${d.deviceId}: claimed`)
  let sink = 0
  const run =
    (b: ConsentBook, keys: readonly DeviceRef[]): Batch =>
    (n) => {
      const started = process.hrtime.bigint()
      for (let i = 0; i < n; i++) {
        const d = keys[i & (K - 1)] as DeviceRef
        sink += (b.of(d.profile, d.deviceId) as SubjectView).granted.length
      }
      return nsPerOp(started, n)
    }
  const loop: Batch = (n) => {
    const started = process.hrtime.bigint()
    for (let i = 0; i < n; i++) sink += (hits[i & (K - 1)] as DeviceRef).deviceId.length
    return nsPerOp(started, n)
  }
  const batches = [loop, run(household, hits), run(book, hits), run(book, misses)]
  await warmUp(batches, options.lookupBatch * 4)
  const ns = await interleave(batches, {
    rounds: Math.max(2, Math.round(options.rounds / 3)),
    batch: options.lookupBatch,
  })
  if (sink === 0) throw new Error('the lookups read nothing')
  const labels = [
    'loop only',
    'household only',
    `${subjects.length.toLocaleString('en-US')} subjects, hit`,
    `${subjects.length.toLocaleString('en-US')} subjects, miss`,
  ]
  return labels.map((label, i) => ({ book: label, ns: round(ns[i] as number, 1) }))
}

async function pipelineRow(
  message: TypicalMessage,
  household: ConsentBook,
  book: ConsentBook,
  options: ConsentOptions,
  dataDir: string,
): Promise<ConsentPipelineRow> {
  const contenders: { bench: BenchPipeline; now: number; outputs: number; processed: number }[] = []
  try {
    for (const [name, b] of [
      ['household', household],
      ['household-again', household],
      ['subjects', book],
    ] as const) {
      const bench = benchPipeline(join(dataDir, name), undefined, undefined, undefined, { current: b })
      contenders.push({ bench, now: Date.UTC(2026, 1, 2, 3, 0), outputs: 0, processed: 0 })
    }
    const batches: Batch[] = contenders.map((c) => async (n) => {
      const started = process.hrtime.bigint()
      for (let i = 0; i < n; i++) {
        c.now += options.stepMs
        const result = await c.bench.pipeline.process(message.topic, message.payload, c.now)
        c.outputs += result.outputs.length
      }
      c.processed += n
      return nsPerOp(started, n)
    })
    await warmUp(batches, options.warmup)
    for (const c of contenders) c.outputs = c.processed = 0
    const [householdNs, householdAgainNs, subjectsNs] = (await interleave(batches, options)) as [number, number, number]
    const [h, , s] = contenders as [
      (typeof contenders)[number],
      (typeof contenders)[number],
      (typeof contenders)[number],
    ]
    return {
      category: message.category,
      stream: message.stream,
      householdNs: round(householdNs, 0),
      householdAgainNs: round(householdAgainNs, 0),
      subjectsNs: round(subjectsNs, 0),
      deltaNs: round(subjectsNs - householdNs, 0),
      noiseNs: round(Math.abs(householdAgainNs - householdNs), 0),
      outputsHousehold: round(h.outputs / h.processed, 3),
      outputsSubjects: round(s.outputs / s.processed, 3),
    }
  } finally {
    for (const c of contenders) await c.bench.close()
  }
}

/** The streams measured through the pipeline: a plug's energy reading and a phone's location. */
export const CONSENT_STREAMS: readonly string[] = ['tasmota/sensor', 'owntracks/location']

export async function runConsent(options: ConsentOptions): Promise<ConsentResult> {
  const classifier = new Classifier(builtinProfiles)
  const messages = typicalMessages().filter((m) => CONSENT_STREAMS.includes(m.stream))
  const claimed = messages.map((m) => deviceOf(classifier, m))
  const subjects = manySubjects(options.subjects, claimed)
  const book = bookOf(subjects)
  const household = ConsentBook.household()
  for (const d of claimed)
    if (book.of(d.profile, d.deviceId).id !== (subjects[0] as Subject).id)
      throw new Error(`${d.deviceId}: not the first subject's`)
  const lookupRows = await lookups(book, household, subjects, options)
  const rows: ConsentPipelineRow[] = []
  for (const message of messages) {
    const dir = tempDir('veil-bench-consent-')
    try {
      rows.push(await pipelineRow(message, household, book, options, dir.path))
    } finally {
      dir.remove()
    }
  }
  return { subjects: options.subjects, budgetNs: CONSENT_BUDGET_NS, lookups: lookupRows, pipeline: rows }
}
