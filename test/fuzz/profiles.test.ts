/**
 * Fuzzing every builtin profile's streams through the real pipeline with the shipped policies, in process: topics
 * from each stream's own patterns with random ids, and hostile payloads (hostile.ts). For every message:
 * - nothing throws out of the pipeline, and it is forwarded or dropped with a known reason; no stage fails on it
 *   (internal_error, encode_error would mean a bug that fail-closed merely hid) and no operator crashes (an
 *   operator may refuse a value by throwing an Error; a TypeError or RangeError is a bug);
 * - no planted canary (in the topic's ids, or in payload fields no policy keeps) leaves, in any form the canary
 *   check knows, and no output carries the raw payload;
 * - no prototype is polluted;
 * and the heap after a bounded run is back within a generous bound of where it started.
 *
 * Seeded: a failure prints its seed and path; rerun with FUZZ_SEED=<seed> to reproduce. Runs are bounded in
 * count and in time (fast-check stops a property early, without failing, when its time budget is spent).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { deflateSync } from 'node:zlib'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { builtinOperators } from '../../filters/operators/index.ts'
import { builtinProfiles } from '../../filters/profiles/index.ts'
import { DROP_REASONS, type DropReason } from '../../gateway/src/sdk/model.ts'
import type { PipelineResult } from '../../gateway/src/pipeline/envelope.ts'
import { DEFAULT_LIMITS, type Pipeline } from '../../gateway/src/pipeline/pipeline.ts'
import { effectiveStreamPolicy, type PolicySet } from '../../gateway/src/policy/load.ts'
import type { OperatorDefinition } from '../../gateway/src/sdk/operator.ts'
import type { Classifier } from '../../gateway/src/streams/classifier.ts'
import type { ProfileDefinition, StreamDefinition } from '../../gateway/src/sdk/profile.ts'
import { profiles as simulators } from '../../simulators/index.ts'
import { findCanaries } from '../helpers/canary.ts'
import { tempDir } from '../helpers/gateway.ts'
import { goldenCaseFiles } from '../golden/cases.ts'
import {
  decodeSample,
  payloadArb,
  randomTopicArb,
  topicArb,
  zlibBombs,
  type HostileCase,
  type KeptPaths,
  type StreamSamples,
} from './hostile.ts'
import { decodingName } from '../../gateway/src/sdk/codec.ts'
import { builtinPipeline } from '../helpers/pipeline.ts'

const SEED = Number(process.env.FUZZ_SEED ?? 20_260_501)
/** FUZZ_RUNS and FUZZ_TIME_MS raise the bounds for a longer hunt; the defaults keep the suite fast. */
const RUNS_PER_STREAM = Number(process.env.FUZZ_RUNS ?? 40)
const TIME_PER_PROFILE_MS = Number(process.env.FUZZ_TIME_MS ?? 2000)
/**
 * Outcomes that are fail-closed but mean a stage broke on the input: none may occur. An operator may refuse a
 * value it cannot judge by throwing (operator_error); one that fails by accident (a TypeError, a stack overflow)
 * is caught by the wrapper below.
 */
const BUGS: ReadonlySet<DropReason> = new Set(['internal_error', 'encode_error'])
const operatorCrashes: string[] = []

/** The builtin operators, each wrapped to note an accidental exception before the pipeline turns it into a drop. */
const watchedOperators: OperatorDefinition[] = builtinOperators.map((def) => ({
  ...def,
  compile(config, env) {
    const run = def.compile(config, env)
    return (doc, ctx) => {
      try {
        return run(doc, ctx)
      } catch (err) {
        if (err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError)
          operatorCrashes.push(`${def.name}: ${String(err)}`)
        throw err
      }
    }
  },
}))
const KNOWN: ReadonlySet<string> = new Set(DROP_REASONS)
const T0 = Date.UTC(2026, 2, 1, 6)

const dir = tempDir('veil-fuzz-')
afterAll(() => dir.remove())

function build(optIn: readonly string[]): { pipeline: Pipeline; policies: PolicySet; classifier: Classifier } {
  const variables = { privacy_zones: [{ lat: 52.52, lon: 13.405, name: 'home' }] }
  const { pipeline, policies, classifier } = builtinPipeline({
    operators: watchedOperators,
    master: Buffer.alloc(32, 0x42),
    dataDir: dir.path,
    optIn: new Set(optIn),
    variables,
  })
  return { pipeline, policies: policies.current, classifier }
}

const OPT_INS = ['energy_15min', 'health_consent', 'precise_location', 'camera_exact_times', 'camera_zone_names']
const shipped = build([])
const optedIn = build(OPT_INS)
const bombs = zlibBombs(DEFAULT_LIMITS.decompressedBytes)

/** Every path any domain's allowlist keeps for a stream, opt-in variants included. */
function keptPaths(policies: PolicySet, category: string, key: string): KeptPaths {
  const paths: string[] = []
  for (const doc of policies.documents.values()) {
    if (doc.category !== category) continue
    for (const section of Object.values(doc.domains)) {
      const stream = section?.streams[key]
      if (stream === undefined) continue
      paths.push(...effectiveStreamPolicy(stream, new Set()).allow)
      for (const variant of Object.values(stream.opt_in ?? {})) paths.push(...variant.allow)
    }
  }
  return { whole: paths.includes('$'), paths }
}

/** Valid documents per stream key from the simulators and the golden inputs, decoded for mutation. */
function collectSamples(classifier: Classifier): Map<string, unknown[]> {
  const byStream = new Map<string, unknown[]>()
  const add = (topic: string, payload: Buffer): void => {
    const stream = classifier.classify(topic)?.stream
    if (stream === undefined || payload.length > 64 * 1024) return
    const list = byStream.get(stream.key) ?? []
    if (list.length >= 4) return
    try {
      const doc = decodeSample(decodingName(stream.decoding), payload)
      if (doc !== undefined) list.push(doc)
    } catch {
      return
    }
    byStream.set(stream.key, list)
  }
  for (const profile of Object.values(simulators)) {
    for (const device of profile.createDevices(2, 5)) {
      let t = T0
      for (const m of device.start(t)) add(m.topic, m.payload)
      for (let i = 0; i < 12; i++) for (const m of device.tick((t += 900_000))) add(m.topic, m.payload)
    }
  }
  for (const { path } of goldenCaseFiles()) {
    const { inputs } = JSON.parse(readFileSync(path, 'utf8')) as {
      inputs: { topic: string; payload?: unknown; fixture?: string; deflate?: boolean }[]
    }
    for (const input of inputs) {
      let bytes: Buffer | undefined
      if (input.fixture !== undefined) bytes = readFileSync(join(import.meta.dirname, '../fixtures', input.fixture))
      else if (input.payload !== undefined)
        bytes = Buffer.from(typeof input.payload === 'string' ? input.payload : JSON.stringify(input.payload))
      // Large maps would only slow mutation down: the simulators' maps are enough.
      if (bytes !== undefined && bytes.length <= 64 * 1024)
        add(input.topic, input.deflate === true ? deflateSync(bytes) : bytes)
    }
  }
  return byStream
}
const samples = collectSamples(shipped.classifier)

function streamCases(profile: ProfileDefinition): fc.Arbitrary<HostileCase> {
  const perStream = Object.entries(profile.streams).map(([name, def]) => {
    const key = `${profile.name}/${name}`
    const kept = keptPaths(shipped.policies, profile.category, key)
    const streamSamples: StreamSamples = { decoding: decodingName(def.decoding), docs: samples.get(key) ?? [] }
    return fc.tuple(topicArb(def), payloadArb(streamSamples, kept, DEFAULT_LIMITS, bombs)).map(([t, p]) => ({
      topic: t.topic,
      payload: p.payload,
      canaries: [...t.canaries, ...p.canaries],
      kind: `${key}: ${p.kind}`,
      // Keeping the whole value ($) may forward it as is: only the topic's canaries are checked then.
      wholeKept: kept.whole,
    }))
  })
  return fc.oneof(...perStream)
}

interface Checked {
  result: PipelineResult
  problems: string[]
}

/** Runs one case through a pipeline and lists every broken property. */
async function check(pipeline: Pipeline, c: HostileCase & { wholeKept?: boolean }, t: number): Promise<Checked> {
  const problems: string[] = []
  const protoKeys = Object.getOwnPropertyNames(Object.prototype).length
  let result: PipelineResult
  try {
    result = await pipeline.process(c.topic, c.payload, t)
  } catch (err) {
    return {
      result: { outputs: [], dropped: undefined, domainDrops: [], category: 'unclassified', stream: undefined },
      problems: [`threw: ${(err as Error).message}`],
    }
  }
  if (result.dropped !== undefined) {
    if (!KNOWN.has(result.dropped.reason)) problems.push(`unknown drop reason ${result.dropped.reason}`)
    if (BUGS.has(result.dropped.reason)) problems.push(`dropped at ${result.dropped.stage} as ${result.dropped.reason}`)
    if (result.outputs.length > 0) problems.push('dropped but has outputs')
  }
  for (const d of result.domainDrops) {
    if (!KNOWN.has(d.reason)) problems.push(`unknown domain drop reason ${d.reason}`)
    if (BUGS.has(d.reason)) problems.push(`${d.domain} dropped at ${d.stage} as ${d.reason}`)
  }
  const text = result.outputs.map((o) => `${o.topic}\n${o.payload.toString('utf8')}`).join('\n')
  const hits = findCanaries(text, c.wholeKept === true ? c.canaries.filter((x) => !c.payload.includes(x)) : c.canaries)
  if (hits.length > 0) problems.push(`canaries left: ${hits.slice(0, 3).join(', ')}`)
  for (const o of result.outputs) {
    if (!o.topic.startsWith(`veil/${o.domain}/`)) problems.push(`output outside veil/: ${o.topic}`)
    if (c.wholeKept !== true && c.payload.length >= 32 && o.payload.includes(c.payload))
      problems.push(`raw payload forwarded on ${o.topic}`)
    try {
      JSON.parse(o.payload.toString('utf8'))
    } catch {
      problems.push(`output is not JSON on ${o.topic}`)
    }
  }
  if (operatorCrashes.length > 0) problems.push(`operator crashed: ${operatorCrashes.splice(0).join('; ')}`)
  if (
    Object.getOwnPropertyNames(Object.prototype).length !== protoKeys ||
    ({} as Record<string, unknown>).polluted !== undefined
  )
    problems.push('Object.prototype polluted')
  return { result, problems }
}

async function fuzz(
  pipeline: Pipeline,
  arb: fc.Arbitrary<HostileCase & { wholeKept?: boolean }>,
  numRuns: number,
  seed: number,
): Promise<Map<string, number>> {
  const outcomes = new Map<string, number>()
  let t = T0
  await fc.assert(
    fc.asyncProperty(arb, async (c) => {
      // 20 minutes a message: the recurring devices cross energy and downsampling windows often.
      t += 1_200_000
      const { result, problems } = await check(pipeline, c, t)
      const outcome =
        result.dropped === undefined ? (result.outputs.length > 0 ? 'forwarded' : 'withheld') : result.dropped.reason
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
      if (problems.length > 0)
        throw new Error(`${c.kind} on ${JSON.stringify(c.topic.slice(0, 80))}: ${problems.join('; ')}`)
    }),
    { seed, numRuns, interruptAfterTimeLimit: TIME_PER_PROFILE_MS, markInterruptAsFailure: false, endOnFailure: true },
  )
  return outcomes
}

describe('fuzz: every builtin profile through the shipped policies', () => {
  builtinProfiles.forEach((profile, index) => {
    const streams = Object.keys(profile.streams).length
    it(`${profile.name} (${profile.category}): ${streams} streams, hostile topics and payloads`, async () => {
      const numRuns = Math.min(RUNS_PER_STREAM * streams, RUNS_PER_STREAM * 5)
      const outcomes = await fuzz(
        index % 2 === 0 ? shipped.pipeline : optedIn.pipeline,
        streamCases(profile),
        numRuns,
        SEED + index,
      )
      if (process.env.FUZZ_VERBOSE) console.log(profile.name, Object.fromEntries(outcomes))
      // The generators reach past classify: some messages of every profile are decoded and judged further on.
      const total = [...outcomes.values()].reduce((a, b) => a + b, 0)
      expect(total).toBeGreaterThan(0)
      expect(total - (outcomes.get('unknown_topic') ?? 0)).toBeGreaterThan(0)
    })
  })

  it('random and oversized topics', async () => {
    const arb = fc
      .tuple(randomTopicArb, fc.uint8Array({ maxLength: 64 }))
      .map(([t, p]) => ({ topic: t.topic, payload: Buffer.from(p), canaries: t.canaries, kind: 'random topic' }))
    const outcomes = await fuzz(shipped.pipeline, arb, 300, SEED - 1)
    expect(outcomes.get('forwarded') ?? 0).toBe(0)
  })
})

describe('fuzz: the checks find what they look for', () => {
  it('a policy that forwards a field the shipped ones never keep fails the canary check', async () => {
    const leaky = tempDir('veil-fuzz-leaky-')
    try {
      // Uptime: a string the shipped policies never keep (Time would be refused at load: a time must be floored), and
      // free, so the loader wants a pii_scan on it: one that looks for IPv6 addresses only.
      writeFileSync(
        join(leaky.path, 'smart_plug.yaml'),
        'category: smart_plug\ndomains:\n  svc: { streams: { tasmota/state: { allow: [Uptime], operators: [ { pii_scan: { detectors: [ipv6] } } ] } } }\n',
      )
      const { pipeline } = builtinPipeline({ policies: leaky.path, master: Buffer.alloc(32, 0x42), dataDir: dir.path })
      const tasmota = builtinProfiles.find((p) => p.name === 'tasmota') as ProfileDefinition
      const stateOnly: ProfileDefinition = { ...tasmota, streams: { state: tasmota.streams.state as StreamDefinition } }
      const failure = await fuzz(pipeline, streamCases(stateOnly), 300, SEED).then(
        () => undefined,
        (err: unknown) => err as Error,
      )
      // fast-check reports the counterexample; the property's own error is its cause.
      expect(failure).toBeInstanceOf(Error)
      expect(String((failure?.cause as Error | undefined)?.message)).toMatch(/canaries left: Cy[0-9A-F]{8}/)
    } finally {
      leaky.remove()
    }
  })
})

describe('fuzz: memory stays bounded', () => {
  it('the heap returns near its start after 600 hostile messages across all profiles', async () => {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const { pipeline } = build([])
    const arb = fc.oneof(...builtinProfiles.map((p) => streamCases(p)))
    // Warm up: compiled code, metric handles and the operators' per-device state for a first set of ids.
    await fuzz(pipeline, arb, 100, SEED + 1000)
    gc()
    const before = process.memoryUsage().heapUsed
    await fuzz(pipeline, arb, 600, SEED + 2000)
    gc()
    const grown = process.memoryUsage().heapUsed - before
    // Generous: per-device operator state (bounded LRU) grows with new ids; a leaked payload per message would not fit.
    expect(grown).toBeLessThan(48 * 1024 * 1024)
  })
})
