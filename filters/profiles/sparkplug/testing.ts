/**
 * Test helpers for Sparkplug B and protobuf: payload builders and a pipeline over a given policy directory with
 * per-domain encodings. Tests and benchmarks only.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryAuditLog } from '../../../gateway/src/audit/audit.ts'
import type { Domain } from '#veil/sdk'
import type { OutputEncoding } from '../../../gateway/src/pipeline/encode.ts'
import type { Pipeline } from '../../../gateway/src/pipeline/pipeline.ts'
import type { Metrics } from '../../../gateway/src/telemetry/metrics.ts'
import { outputType, sparkplugPayloadType, type MetricValue, type SparkplugDocument } from './codec.ts'
import type { SparkplugLimits } from './state.ts'
import { builtinPipeline } from '../../../test/helpers/pipeline.ts'

export const SPARKPLUG_POLICIES = join(import.meta.dirname, '../../../test/policies/sparkplug')

export interface MetricSpec {
  name?: string
  alias?: number
  datatype?: number
  value?: number | string | boolean | null
  timestamp?: number
}

/** The value field of a metric, as a Sparkplug edge node sets it (signed ints as two's complement). */
export function valueField(datatype: number, value: number | string | boolean): Record<string, unknown> {
  const field = fieldOf(datatype)
  return { [field]: field === 'int_value' ? (value as number) >>> 0 : value }
}

function fieldOf(datatype: number): string {
  if (datatype >= 1 && datatype <= 3) return 'int_value'
  if (datatype >= 5 && datatype <= 7) return 'int_value'
  if (datatype === 4 || datatype === 8 || datatype === 13) return 'long_value'
  if (datatype === 9) return 'float_value'
  if (datatype === 10) return 'double_value'
  if (datatype === 11) return 'boolean_value'
  if (datatype === 17 || datatype === 18) return 'bytes_value'
  return 'string_value'
}

/** Encodes a Sparkplug B payload the way an edge node would (signed ints as two's complement). */
export function sparkplugBytes(spec: { timestamp?: number; seq?: number; metrics: readonly MetricSpec[] }): Buffer {
  const metrics = spec.metrics.map((m) => {
    const out: Record<string, unknown> = {}
    if (m.name !== undefined) out.name = m.name
    if (m.alias !== undefined) out.alias = m.alias
    if (m.timestamp !== undefined) out.timestamp = m.timestamp
    if (m.datatype !== undefined) out.datatype = m.datatype
    if (m.value === null) out.is_null = true
    else if (m.value !== undefined) {
      const field = fieldOf(m.datatype ?? 10)
      out[field] =
        field === 'int_value'
          ? (m.value as number) >>> 0
          : field === 'bytes_value'
            ? Buffer.from(String(m.value))
            : m.value
    }
    return out
  })
  const payload: Record<string, unknown> = { metrics }
  if (spec.timestamp !== undefined) payload.timestamp = spec.timestamp
  if (spec.seq !== undefined) payload.seq = spec.seq
  return Buffer.from(sparkplugPayloadType().encode(payload).finish())
}

export interface TestPipeline {
  readonly pipeline: Pipeline
  readonly metrics: Metrics
  readonly audit: MemoryAuditLog
  close(): void
}

export function testPipeline(
  options: {
    policies?: string
    encodings?: Partial<Record<Domain, OutputEncoding>>
    sparkplug?: SparkplugLimits
    master?: Buffer
  } = {},
): TestPipeline {
  const dataDir = mkdtempSync(join(tmpdir(), 'veil-sparkplug-'))
  const audit = new MemoryAuditLog()
  const encodings = new Map(Object.entries(options.encodings ?? {}) as [Domain, OutputEncoding][])
  const { pipeline, metrics } = builtinPipeline({
    policies: options.policies ?? SPARKPLUG_POLICIES,
    master: options.master ?? Buffer.alloc(32, 3),
    dataDir,
    audit,
    encodings,
    profileSettings: { sparkplug: options.sparkplug },
  })
  return { pipeline, metrics, audit, close: () => rmSync(dataDir, { recursive: true, force: true }) }
}

/** The sum of a counter over every label set that has the given labels (0 when never incremented). */
export async function counterValue(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name)
  if (metric === undefined) return 0
  const data = await metric.get()
  const hits = data.values.filter((v) =>
    Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want),
  )
  return hits.reduce((sum, v) => sum + v.value, 0)
}

/** Sets the value field of an outgoing metric for its data type (encodePayloadReflective). */
function setValue(out: Record<string, unknown>, datatype: number, value: MetricValue): void {
  if (value === null) {
    out.is_null = true
    return
  }
  switch (datatype) {
    case 1:
    case 2:
    case 3:
    case 5:
    case 6:
    case 7:
      out.int_value = (value as number) >>> 0
      return
    case 4:
    case 8:
    case 13:
      out.long_value = value as number
      return
    case 9:
      out.float_value = value
      return
    case 10:
      out.double_value = value
      return
    case 11:
      out.boolean_value = value
      return
    default:
      out.string_value = value
  }
}

/**
 * codec.ts' encodePayload before its direct writer: an object per metric, then protobufjs' reflective encoder. The
 * reference its bytes are compared with (codec.test.ts), and the "before" of measurements.
 */
export function encodePayloadReflective(
  doc: SparkplugDocument,
  seq: number | undefined,
  policyVersion: string,
): Uint8Array {
  const metrics: Record<string, unknown>[] = []
  for (const m of doc.metrics) {
    const datatype = outputType(m.dataType, m.value)
    const out: Record<string, unknown> = { name: m.name, datatype }
    if (m.timestamp !== undefined) out.timestamp = m.timestamp
    if (m.isHistorical === true) out.is_historical = true
    if (m.isTransient === true) out.is_transient = true
    setValue(out, datatype, m.value)
    metrics.push(out)
  }
  const payload: Record<string, unknown> = { metrics, uuid: `veil-policy/${policyVersion}` }
  if (doc.timestamp !== undefined) payload.timestamp = doc.timestamp
  if (seq !== undefined) payload.seq = seq
  return sparkplugPayloadType().encode(payload).finish()
}
