import protobuf from 'protobufjs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkWire, type WireProblem } from '#veil/sdk'
import { readPayload } from './read.ts'
import { ProtoWriter } from './write.ts'

/** Sparkplug B data types (specification 3.0.0, 6.4.16), by number. */
export const DATA_TYPES = [
  'Unknown',
  'Int8',
  'Int16',
  'Int32',
  'Int64',
  'UInt8',
  'UInt16',
  'UInt32',
  'UInt64',
  'Float',
  'Double',
  'Boolean',
  'String',
  'DateTime',
  'Text',
  'UUID',
  'DataSet',
  'Bytes',
  'File',
  'Template',
  'PropertySet',
  'PropertySetList',
] as const
export type DataTypeName = (typeof DATA_TYPES)[number]

/** The scalar types Veil can filter; DataSet, Bytes, File, Template and the arrays carry values no policy can inspect. */
const SCALAR = new Set<number>([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])
const TYPE_NUMBER = new Map<string, number>(DATA_TYPES.map((name, i) => [name, i]))

export const MESSAGE_TYPES = ['NBIRTH', 'NDATA', 'NDEATH', 'DBIRTH', 'DDATA', 'DDEATH'] as const
export type MessageType = (typeof MESSAGE_TYPES)[number]

export type MetricValue = number | string | boolean | null

/** One metric after alias resolution: what policies see, and what leaves as JSON (Tahu's JSON names). */
export interface SparkplugMetric {
  name: string
  dataType: DataTypeName
  value: MetricValue
  timestamp?: number
  isHistorical?: true
  isTransient?: true
}

/** A decoded Sparkplug message. No group, edge node or device name: those live in the topic and become the pseudonym. */
export interface SparkplugDocument {
  type: MessageType
  timestamp?: number
  metrics: SparkplugMetric[]
}

/** A metric as protobufjs decodes it (field names as in sparkplug_b.proto). */
export interface WireMetric {
  name?: string
  alias?: number | protobuf.Long
  timestamp?: number | protobuf.Long
  datatype?: number
  is_historical?: boolean
  is_transient?: boolean
  is_null?: boolean
  int_value?: number
  long_value?: number | protobuf.Long
  float_value?: number
  double_value?: number
  boolean_value?: boolean
  string_value?: string
}

export interface WirePayload {
  timestamp?: number | protobuf.Long
  metrics?: WireMetric[]
  seq?: number | protobuf.Long
}

let payloadType: protobuf.Type | undefined
export function sparkplugPayloadType(): protobuf.Type {
  // The profile's own schema, loaded as the core loads its canonical ones (field names in their .proto spelling).
  payloadType ??= new protobuf.Root()
    .loadSync(join(dirname(fileURLToPath(import.meta.url)), 'sparkplug_b.proto'), { keepCase: true })
    .resolveAll()
    .lookupType('org.eclipse.tahu.protobuf.Payload')
  return payloadType
}

const METRIC_FIELDS: ReadonlySet<string> = new Set([
  'name',
  'alias',
  'timestamp',
  'datatype',
  'is_historical',
  'is_transient',
  'is_null',
  'int_value',
  'long_value',
  'float_value',
  'double_value',
  'boolean_value',
  'string_value',
])

/**
 * A payload as the metrics state reads it, or why the bytes are not one. The common payloads (scalar metrics) are
 * read in one pass (read.ts); anything else, and every problem, takes the checked path, which decides.
 */
export function decodePayload(bytes: Uint8Array): WirePayload | WireProblem {
  return readPayload(bytes) ?? decodePayloadChecked(bytes)
}

/**
 * Wire-checked decode: checkWire, protobufjs' decode, then a copy. protobufjs puts proto2 defaults on the message
 * prototype (an absent alias reads as 0, an absent name as ''), so only the fields present on the wire (own
 * properties) are copied out. The reference for read.ts, and its fallback.
 */
export function decodePayloadChecked(bytes: Uint8Array): WirePayload | WireProblem {
  const type = sparkplugPayloadType()
  const problem = checkWire(type, bytes)
  if (problem !== undefined) return problem
  const message = type.decode(bytes) as unknown as Record<string, unknown>
  const payload: WirePayload = {}
  if (Object.hasOwn(message, 'timestamp')) payload.timestamp = message.timestamp as number | protobuf.Long
  if (Object.hasOwn(message, 'seq')) payload.seq = message.seq as number | protobuf.Long
  const metrics = Object.hasOwn(message, 'metrics') ? (message.metrics as Record<string, unknown>[]) : []
  // The own keys are the fields on the wire (a handful), cheaper to walk than a hasOwn test per declared field.
  payload.metrics = metrics.map((m) => {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(m)) if (METRIC_FIELDS.has(key)) out[key] = m[key]
    return out as WireMetric
  })
  return payload
}

export function toNumber(value: number | protobuf.Long | undefined | null, signed = false): number | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value === 'number') return value
  return new protobuf.util.LongBits(value.low >>> 0, value.high >>> 0).toNumber(!signed)
}

/** A stable map key for a uint64 alias without losing bits above 2^53. */
export function aliasKey(alias: number | protobuf.Long): number | string {
  if (typeof alias === 'number') return alias
  return alias.high === 0 ? alias.low >>> 0 : `${alias.high >>> 0}:${alias.low >>> 0}`
}

/**
 * The value of a metric per its data type, or undefined when Veil cannot filter the type (or the value is missing
 * or of another kind than the type says). Signed integers travel as two's complement in unsigned fields
 * (specification 6.4.16): Int8 -1 may arrive as 0xFF or 0xFFFFFFFF, both read back as -1.
 */
export function metricValue(m: WireMetric, datatype: number): MetricValue | undefined {
  if (!SCALAR.has(datatype)) return undefined
  if (m.is_null === true) return null
  switch (datatype) {
    case 1:
      return m.int_value === undefined ? undefined : (m.int_value << 24) >> 24
    case 2:
      return m.int_value === undefined ? undefined : (m.int_value << 16) >> 16
    case 3:
      return m.int_value === undefined ? undefined : m.int_value | 0
    case 5:
    case 6:
    case 7:
      return m.int_value === undefined ? undefined : m.int_value >>> 0
    case 4:
      return toNumber(m.long_value, true)
    case 8:
    case 13:
      return toNumber(m.long_value)
    case 9:
      return m.float_value
    case 10:
      return m.double_value
    case 11:
      return m.boolean_value
    default:
      return m.string_value
  }
}

/**
 * The data type a value leaves with: the original one when the value still fits it, else the nearest one that
 * does (an operator may turn a number into a class label or a rounded fraction).
 */
export function outputType(dataType: DataTypeName, value: MetricValue): number {
  const original = TYPE_NUMBER.get(dataType) ?? 0
  if (value === null) return original
  if (typeof value === 'boolean') return 11
  if (typeof value === 'string') return original === 12 || original === 14 || original === 15 ? original : 12
  // A Float (9) holds at most ±3.4e38: a larger value an operator produced would leave as ±Infinity, so it leaves as
  // a Double.
  if (original === 10 || (original === 9 && Number.isFinite(Math.fround(value)))) return original
  if ((original >= 1 && original <= 8) || original === 13) {
    if (Number.isInteger(value) && (original === 4 || original === 8 || original === 13 || inRange(original, value)))
      return original
  }
  return 10
}

function inRange(type: number, v: number): boolean {
  switch (type) {
    case 1:
      return v >= -128 && v <= 127
    case 2:
      return v >= -32768 && v <= 32767
    case 3:
      return v >= -2147483648 && v <= 2147483647
    case 5:
      return v >= 0 && v <= 255
    case 6:
      return v >= 0 && v <= 65535
    case 7:
      return v >= 0 && v <= 4294967295
    default:
      return false
  }
}

const writer = new ProtoWriter()

/** The uuid field (`veil-policy/<version>`, tag and length included), encoded once per policy version. */
let uuidFor: { readonly version: string; readonly bytes: Uint8Array } | undefined
function uuidField(version: string): Uint8Array {
  if (uuidFor?.version !== version) {
    const text = Buffer.from(`veil-policy/${version}`, 'utf8')
    uuidFor = { version, bytes: Buffer.concat([Buffer.from([0x22, ...varint(text.length)]), text]) } // uuid = 4
  }
  return uuidFor.bytes
}

function varint(n: number): number[] {
  const out: number[] = []
  let v = n >>> 0
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80)
    v >>>= 7
  }
  out.push(v)
  return out
}

/**
 * A filtered document as a Sparkplug B payload: names instead of aliases (a recipient needs no birth to read a
 * DATA message, and Veil's aliases would be one more identifier), Veil's own `seq` per edge node and domain, and
 * the policy version in `uuid` (`veil-policy/<version>`), the field the specification gives to schema tracking.
 * Written field by field (write.ts), in field-number order, as protobufjs' encoder wrote the same payload (the
 * reflective encoder this replaced is `encodePayloadReflective` in testing.ts; codec.test.ts compares the bytes).
 */
export function encodePayload(doc: SparkplugDocument, seq: number | undefined, policyVersion: string): Buffer {
  const w = writer
  w.begin()
  try {
    if (doc.timestamp !== undefined) {
      w.byte(0x08) // timestamp = 1, uint64
      w.uint64(doc.timestamp)
    }
    for (const m of doc.metrics) {
      w.byte(0x12) // metrics = 2
      const at = w.beginLength()
      const datatype = outputType(m.dataType, m.value)
      w.byte(0x0a) // name = 1
      w.string(m.name)
      if (m.timestamp !== undefined) {
        w.byte(0x18) // timestamp = 3, uint64
        w.uint64(m.timestamp)
      }
      w.byte(0x20) // datatype = 4, uint32
      w.uint32(datatype)
      if (m.isHistorical === true) {
        w.byte(0x28) // is_historical = 5
        w.byte(1)
      }
      if (m.isTransient === true) {
        w.byte(0x30) // is_transient = 6
        w.byte(1)
      }
      writeValue(w, datatype, m.value)
      w.endLength(at)
    }
    if (seq !== undefined) {
      w.byte(0x18) // seq = 3, uint64
      w.uint64(seq)
    }
    w.raw(uuidField(policyVersion))
    return w.finish()
  } finally {
    w.reset()
  }
}

/** The value field of an outgoing metric for its data type (signed integers as two's complement). */
function writeValue(w: ProtoWriter, datatype: number, value: MetricValue): void {
  if (value === null) {
    w.byte(0x38) // is_null = 7
    w.byte(1)
    return
  }
  switch (datatype) {
    case 1:
    case 2:
    case 3:
    case 5:
    case 6:
    case 7:
      w.byte(0x50) // int_value = 10, uint32
      w.uint32(value as number)
      return
    case 4:
    case 8:
    case 13:
      w.byte(0x58) // long_value = 11, uint64
      w.uint64(value as number)
      return
    case 9:
      w.byte(0x65) // float_value = 12, 32-bit
      w.float(value as number)
      return
    case 10:
      w.byte(0x69) // double_value = 13, 64-bit
      w.double(value as number)
      return
    case 11:
      w.byte(0x70) // boolean_value = 14
      w.byte(value ? 1 : 0)
      return
    default:
      w.byte(0x7a) // string_value = 15
      w.string(value as string)
  }
}
