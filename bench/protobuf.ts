import { deepStrictEqual } from 'node:assert'
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  decodePayload,
  encodePayload,
  metricValue,
  toNumber,
  type SparkplugDocument,
} from '../filters/profiles/sparkplug/codec.ts'
import { SPARKPLUG_POLICIES, sparkplugBytes } from '../filters/profiles/sparkplug/testing.ts'
import { DEFAULT_POLICIES } from '../gateway/src/config/config.ts'
import type { Domain } from '../gateway/src/sdk/model.ts'
import { FILTERED_CONTENT_TYPE, JSON_CONTENT_TYPE, type OutputEncoding } from '../gateway/src/pipeline/encode.ts'
import { SPARKPLUG_CONTENT_TYPE } from '../filters/profiles/sparkplug/stream.ts'
import type { Output } from '../gateway/src/pipeline/envelope.ts'
import type { Pipeline } from '../gateway/src/pipeline/pipeline.ts'
import { compileProtoDecoder, protoType, ProtoDrop } from '../gateway/src/streams/proto.ts'
import { tempDir } from '../test/helpers/gateway.ts'
import type { InProcessOptions } from './inprocess.ts'
import { benchPipeline, type BenchPipeline } from './pipeline.ts'
import { round } from './stats.ts'
import { interleave, nsPerOp, warmUp, type Batch } from './timing.ts'

/** Same counts and clock as section (a): interleaved rounds of every contender after a warm-up. */
export type ProtobufOptions = InProcessOptions

export const PROTOBUF_FULL: ProtobufOptions = { rounds: 150, batch: 400, warmup: 20_000, stepMs: 10_000 }
export const PROTOBUF_QUICK: ProtobufOptions = { rounds: 20, batch: 200, warmup: 2_000, stepMs: 10_000 }

export type Encoding = 'JSON' | 'protobuf' | 'Sparkplug B'

export interface ProtobufRow {
  /** `smart_plug/energy`, `camera/event` (canonical streams) or `sparkplug/NDATA`. */
  readonly content: string
  /** Encode: one filtered copy (the svc domain's) written as JSON or Sparkplug B, as the encode stage does. */
  readonly step: 'decode' | 'encode' | 'pipeline'
  readonly input: Encoding
  /** The recipient domains' encoding; undefined for decode and encode rows (whose `input` is the encoding). */
  readonly output: Encoding | undefined
  /** Undefined for encode rows. */
  readonly bytesIn: number | undefined
  /** Bytes of all copies one message leaves as (pipeline rows), of the one copy written (encode rows). */
  readonly bytesOut: number | undefined
  /** Median over rounds, ns per message. */
  readonly ns: number
  /** Against the JSON in, JSON out pipeline of the same content; Sparkplug B rows against the smart plug's. */
  readonly ratio: number
  readonly outputsPerMessage: number | undefined
}

const TS = 1772366400
/** A canonical smart-plug energy reading and a camera detection (schemas/proto/canonical.proto), as devices send them. */
const ENERGY = { ts: TS, total_kwh: 1234.567, power_w: 61.5, voltage_v: 231.2, current_a: 0.27, relay: 'on' }
const CAMERA = {
  ts: TS,
  type: 'update',
  label: 'person',
  score: 0.87,
  zones: ['driveway', 'front_door'],
  sub_label: 'courier',
}

interface Canonical {
  readonly content: string
  readonly topic: string
  readonly messageType: string
  readonly doc: Record<string, unknown>
}

const CANONICAL: readonly Canonical[] = [
  {
    content: 'smart_plug/energy',
    topic: 'devices/smart_plug/plug1/energy',
    messageType: 'veil.canonical.v1.SmartPlugEnergy',
    doc: ENERGY,
  },
  {
    content: 'camera/event',
    topic: 'devices/camera/cam1/event',
    messageType: 'veil.canonical.v1.CameraEvent',
    doc: CAMERA,
  },
]

/**
 * A topic as it arrives from the wire: a fresh string, never an internalized literal (V8 treats literals better,
 * e.g. it caches String#split of them), so that no row is measured with a topic the broker could not deliver.
 */
const wire = (topic: string): string => Buffer.from(topic).toString('utf8')

const NODE = wire('spBv1.0/plant/NBIRTH/edge1')
const NDATA = wire('spBv1.0/plant/NDATA/edge1')

/**
 * The section's policies: the shipped camera policy (canonical/event: ts floored to the minute, score rounded, two
 * domains) and the Sparkplug test policy for smart plugs (canonical/energy and named Sparkplug metrics pass to svc).
 * Not the shipped smart-plug policy: its hourly energy window withholds all but one message in 360, so encoding
 * would hardly be measured, and it names no Sparkplug metric, so nothing of an NDATA would leave.
 */
function writePolicies(dir: string): string {
  copyFileSync(join(DEFAULT_POLICIES, 'camera.yaml'), join(dir, 'camera.yaml'))
  copyFileSync(join(SPARKPLUG_POLICIES, 'smart_plug.yaml'), join(dir, 'smart_plug.yaml'))
  return dir
}

interface Contender {
  readonly row: Omit<ProtobufRow, 'ns' | 'ratio' | 'outputsPerMessage'>
  readonly batch: Batch
  /** Filtered copies and messages counted after the warm-up (pipeline rows). */
  readonly counts: { outputs: number; processed: number } | undefined
  /** Index of the contender whose ns is this row's denominator. */
  reference: number
}

/** One step alone (a decode or an encode), called n times. */
function stepBatch(step: () => unknown): Batch {
  let sink = 0
  return (n) => {
    const started = process.hrtime.bigint()
    for (let i = 0; i < n; i++) if (step() !== undefined) sink++
    const ns = nsPerOp(started, n)
    if (sink === 0) throw new Error('the step produced nothing')
    return ns
  }
}

/** Each pipeline's own clock, advanced by stepMs per message as in section (a). */
interface Clocked {
  readonly pipeline: Pipeline
  now: number
}

function pipelineBatch(
  p: Clocked,
  topic: string,
  payloads: readonly Buffer[],
  start: number,
  stepMs: number,
  counts: { outputs: number; processed: number },
): Batch {
  let next = start % payloads.length
  return async (n) => {
    const started = process.hrtime.bigint()
    for (let i = 0; i < n; i++) {
      p.now += stepMs
      const result = await p.pipeline.process(topic, payloads[next] as Buffer, p.now)
      next = next + 1 === payloads.length ? 0 : next + 1
      counts.outputs += result.outputs.length
    }
    counts.processed += n
    return nsPerOp(started, n)
  }
}

/** One message through a pipeline before timing: what leaves must be there and in the configured encoding. */
async function check(
  p: Clocked,
  topic: string,
  payload: Buffer,
  contentType: string,
  what: string,
): Promise<readonly Output[]> {
  p.now += 1
  const result = await p.pipeline.process(topic, payload, p.now)
  if (result.outputs.length === 0)
    throw new Error(
      `${what}: nothing left the pipeline (${result.dropped?.stage ?? 'every domain'} dropped it: ${result.dropped?.reason ?? result.domainDrops.map((d) => d.reason).join(', ')})`,
    )
  for (const o of result.outputs)
    if (o.contentType !== contentType)
      throw new Error(`${what}: ${o.domain}'s copy is ${o.contentType}, expected ${contentType}`)
  return result.outputs
}

const bytesOf = (outputs: readonly Output[]): number => outputs.reduce((sum, o) => sum + o.payload.length, 0)

async function contenders(json: Clocked, pb: Clocked, options: ProtobufOptions): Promise<Contender[]> {
  const list: Contender[] = []
  const add = (row: Contender['row'], batch: Batch, counts?: Contender['counts']): number =>
    list.push({ row, batch, counts, reference: -1 }) - 1
  const counter = (): { outputs: number; processed: number } => ({ outputs: 0, processed: 0 })
  let energyReference = -1
  for (const c of CANONICAL) {
    const type = protoType(c.messageType)
    const jsonBytes = Buffer.from(JSON.stringify(c.doc))
    const pbBytes = Buffer.from(type.encode(type.fromObject(c.doc)).finish())
    const decodePb = compileProtoDecoder(c.messageType)
    // The same content: protobuf must decode to exactly what JSON.parse makes of the JSON stream.
    const decoded = decodePb(pbBytes)
    if (decoded instanceof ProtoDrop)
      throw new Error(`${c.content}: protobuf decoder refused the message (${decoded.reason})`)
    deepStrictEqual(
      decoded,
      JSON.parse(jsonBytes.toString('utf8')),
      `${c.content}: protobuf and JSON decode differently`,
    )
    const pbTopic = wire(`${c.topic}/pb`)
    const jsonTopic = wire(c.topic)
    const jsonOut = await check(json, jsonTopic, jsonBytes, JSON_CONTENT_TYPE, `${c.content} JSON in, JSON out`)
    const pbJsonOut = await check(json, pbTopic, pbBytes, JSON_CONTENT_TYPE, `${c.content} protobuf in, JSON out`)
    deepStrictEqual(
      pbJsonOut.map((o) => [o.topic, o.payload.toString()]),
      jsonOut.map((o) => [o.topic, o.payload.toString()]),
      `${c.content}: protobuf in and JSON in leave differently`,
    )
    const pbOut = await check(pb, pbTopic, pbBytes, FILTERED_CONTENT_TYPE, `${c.content} protobuf in, protobuf out`)
    const base = { content: c.content, bytesOut: undefined, output: undefined, step: 'decode' } as const
    const first = add(
      { ...base, input: 'JSON', bytesIn: jsonBytes.length },
      stepBatch(() => JSON.parse(jsonBytes.toString('utf8'))),
    )
    add(
      { ...base, input: 'protobuf', bytesIn: pbBytes.length },
      stepBatch(() => decodePb(pbBytes)),
    )
    const counts = [counter(), counter(), counter()] as const
    const reference = add(
      {
        content: c.content,
        step: 'pipeline',
        input: 'JSON',
        output: 'JSON',
        bytesIn: jsonBytes.length,
        bytesOut: bytesOf(jsonOut),
      },
      pipelineBatch(json, jsonTopic, [jsonBytes], 0, options.stepMs, counts[0]),
      counts[0],
    )
    add(
      {
        content: c.content,
        step: 'pipeline',
        input: 'protobuf',
        output: 'JSON',
        bytesIn: pbBytes.length,
        bytesOut: bytesOf(pbJsonOut),
      },
      pipelineBatch(json, pbTopic, [pbBytes], 0, options.stepMs, counts[1]),
      counts[1],
    )
    add(
      {
        content: c.content,
        step: 'pipeline',
        input: 'protobuf',
        output: 'protobuf',
        bytesIn: pbBytes.length,
        bytesOut: bytesOf(pbOut),
      },
      pipelineBatch(pb, pbTopic, [pbBytes], 0, options.stepMs, counts[2]),
      counts[2],
    )
    for (let i = first; i < list.length; i++) (list[i] as Contender).reference = reference
    if (c.content === 'smart_plug/energy') energyReference = reference
  }

  // Sparkplug B: an edge node's birth names three metrics with aliases; each NDATA carries them by alias only, with
  // the next sequence number (a gap would be counted, not dropped, but it is not what a healthy node sends).
  const birth = sparkplugBytes({
    timestamp: TS * 1000,
    seq: 0,
    metrics: [
      { name: 'Temperature', alias: 1, datatype: 10, value: 21 },
      { name: 'Energy/Total', alias: 2, datatype: 10, value: 1234.5 },
      { name: 'Secret', alias: 3, datatype: 12, value: 'x' },
    ],
  })
  const ndata = Array.from({ length: 256 }, (_, i) =>
    sparkplugBytes({
      timestamp: TS * 1000,
      seq: (i + 1) % 256,
      metrics: [
        { alias: 1, datatype: 10, value: 22.5 },
        { alias: 2, datatype: 10, value: 1234.6 },
        { alias: 3, datatype: 12, value: 'y' },
      ],
    }),
  )
  const first = ndata[0] as Buffer
  await check(json, NODE, birth, JSON_CONTENT_TYPE, 'Sparkplug B NBIRTH, JSON out')
  await check(pb, NODE, birth, SPARKPLUG_CONTENT_TYPE, 'Sparkplug B NBIRTH, Sparkplug B out')
  const spJson = await check(json, NDATA, first, JSON_CONTENT_TYPE, 'Sparkplug B NDATA, JSON out')
  const spPb = await check(pb, NDATA, first, SPARKPLUG_CONTENT_TYPE, 'Sparkplug B NDATA, Sparkplug B out')

  // Decode: the NDATA's content as a JSON document, against Veil's Sparkplug B decoder (before the metrics state
  // names the metrics). The same content: the decoded payload, its uint64s as numbers, is the JSON document.
  const spDoc = {
    timestamp: TS * 1000,
    seq: 1,
    metrics: [
      { alias: 1, datatype: 10, value: 22.5 },
      { alias: 2, datatype: 10, value: 1234.6 },
      { alias: 3, datatype: 12, value: 'y' },
    ],
  }
  const spJsonBytes = Buffer.from(JSON.stringify(spDoc))
  const decoded = decodePayload(first)
  if (typeof decoded === 'string') throw new Error(`Sparkplug B NDATA: the decoder refused it (${decoded})`)
  deepStrictEqual(
    {
      timestamp: toNumber(decoded.timestamp),
      seq: toNumber(decoded.seq),
      metrics: (decoded.metrics ?? []).map((m) => ({
        alias: toNumber(m.alias),
        datatype: m.datatype,
        value: metricValue(m, m.datatype ?? 0),
      })),
    },
    JSON.parse(spJsonBytes.toString('utf8')),
    'Sparkplug B NDATA: the decoder and JSON.parse of its content differ',
  )
  const spBase = { content: 'sparkplug/NDATA', output: undefined, bytesOut: undefined } as const
  const decodeRows = [
    add(
      { ...spBase, step: 'decode', input: 'JSON', bytesIn: spJsonBytes.length },
      stepBatch(() => JSON.parse(spJsonBytes.toString('utf8'))),
    ),
    add(
      { ...spBase, step: 'decode', input: 'Sparkplug B', bytesIn: first.length },
      stepBatch(() => decodePayload(first)),
    ),
  ]

  // Encode: svc's filtered copy of that NDATA written as the encode stage writes it, as JSON and as Sparkplug B;
  // both must be byte for byte what the pipelines above sent to svc.
  const svcJson = spJson.find((o) => o.domain === 'svc')
  const svcPb = spPb.find((o) => o.domain === 'svc')
  if (svcJson === undefined || svcPb === undefined) throw new Error('Sparkplug B NDATA: no copy for svc')
  const left = JSON.parse(svcJson.payload.toString('utf8')) as {
    policy: string
    data: SparkplugDocument & { seq: number }
  }
  const version = left.policy
  const filtered: SparkplugDocument = {
    type: left.data.type,
    timestamp: left.data.timestamp,
    metrics: left.data.metrics,
  }
  const seq = left.data.seq
  const prefix = `{"policy":${JSON.stringify(version)},"data":`
  const writeJson = (): Buffer =>
    Buffer.from(
      `${prefix}${JSON.stringify({ type: filtered.type, timestamp: filtered.timestamp, seq, metrics: filtered.metrics })}}`,
    )
  if (!writeJson().equals(svcJson.payload))
    throw new Error("Sparkplug B NDATA: the JSON encode differs from the pipeline's copy")
  if (!encodePayload(filtered, seq, version).equals(svcPb.payload))
    throw new Error("Sparkplug B NDATA: the Sparkplug B encode differs from the pipeline's copy")
  const encodeRows = [
    add(
      { ...spBase, step: 'encode', input: 'JSON', bytesIn: undefined, bytesOut: svcJson.payload.length },
      stepBatch(writeJson),
    ),
    add(
      { ...spBase, step: 'encode', input: 'Sparkplug B', bytesIn: undefined, bytesOut: svcPb.payload.length },
      stepBatch(() => encodePayload(filtered, seq, version)),
    ),
  ]
  for (const i of [...decodeRows, ...encodeRows]) (list[i] as Contender).reference = energyReference
  for (const [output, p, outputs] of [
    ['JSON', json, spJson],
    ['Sparkplug B', pb, spPb],
  ] as const) {
    const counts = counter()
    const i = add(
      {
        content: 'sparkplug/NDATA',
        step: 'pipeline',
        input: 'Sparkplug B',
        output,
        bytesIn: first.length,
        bytesOut: bytesOf(outputs),
      },
      pipelineBatch(p, NDATA, ndata, 1, options.stepMs, counts),
      counts,
    )
    ;(list[i] as Contender).reference = energyReference
  }
  return list
}

/**
 * Section (e): protobuf against JSON for the same content (issue 7). Decoding alone, and the whole pipeline with JSON
 * in and out, protobuf in and JSON out, protobuf in and out (both domains configured `encoding: protobuf`), and a
 * Sparkplug B NDATA: decoded against its content as JSON, one filtered copy encoded as JSON and as Sparkplug B, and
 * the pipeline with JSON and Sparkplug B out; all contenders interleaved in one process, timed like section (a).
 */
export async function runProtobuf(options: ProtobufOptions): Promise<ProtobufRow[]> {
  const policies = tempDir('veil-bench-policies-')
  const jsonData = tempDir('veil-bench-')
  const pbData = tempDir('veil-bench-')
  const open: BenchPipeline[] = []
  try {
    writePolicies(policies.path)
    const pbEncodings = new Map<Domain, OutputEncoding>([
      ['svc', 'protobuf'],
      ['ana', 'protobuf'],
    ])
    const jsonBench = benchPipeline(jsonData.path, policies.path)
    open.push(jsonBench)
    const pbBench = benchPipeline(pbData.path, policies.path, pbEncodings)
    open.push(pbBench)
    const start = Date.UTC(2026, 2, 1, 12, 0)
    const list = await contenders(
      { pipeline: jsonBench.pipeline, now: start },
      { pipeline: pbBench.pipeline, now: start },
      options,
    )
    const batches = list.map((c) => c.batch)
    await warmUp(batches, options.warmup)
    for (const c of list) if (c.counts !== undefined) Object.assign(c.counts, { outputs: 0, processed: 0 })
    const medians = await interleave(batches, options)
    return list.map((c, i) => {
      const ns = medians[i] as number
      return {
        ...c.row,
        ns: round(ns, 0),
        ratio: round(ns / (medians[c.reference] as number), 2),
        outputsPerMessage: c.counts === undefined ? undefined : round(c.counts.outputs / c.counts.processed, 3),
      }
    })
  } finally {
    for (const b of open) await b.close()
    policies.remove()
    jsonData.remove()
    pbData.remove()
  }
}
