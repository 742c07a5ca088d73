import { endianness } from 'node:os'
import protobuf from 'protobufjs'
import { utf8Text as text } from '#veil/sdk'
import type { WireMetric, WirePayload } from './codec.ts'

/**
 * A one-pass reader for the Sparkplug B payloads edge nodes send every few seconds: timestamp, seq, uuid, body and
 * metrics with name, alias, timestamp, datatype, the three flags, and a scalar or bytes value. It builds exactly what
 * codec.ts' checked path (checkWire, protobufjs' decode, copying the fields on the wire) builds, in one walk with no
 * message instances: the same keys in the same order, uint64 as the same Long objects, the last value winning.
 *
 * Anything else gives undefined and the caller takes the checked path for the whole message, which decides: metadata,
 * properties, datasets, templates and extensions (rare, nested, and only checked, never read, by Veil), and every
 * problem (truncation, a wrong wire type, an unknown field, a length past its message, invalid UTF-8, a varint longer
 * than the reader reads). So the drop reason, and any quirk of protobufjs' decode on odd input, is the checked
 * path's by construction; a malformed message costs one aborted walk more. codec.test.ts checks generated payloads,
 * valid and corrupted, against the checked path.
 */

/** Thrown (never escapes readPayload) when the message is not one this reader handles. */
const BAIL: unknown = Object.freeze({ bail: true })

const LONG = protobuf.util.Long as typeof protobuf.util.Long | undefined
const LITTLE_ENDIAN = endianness() === 'LE'
const f32 = new Float32Array(1)
const f32Bytes = new Uint8Array(f32.buffer)
const f64 = new Float64Array(1)
const f64Bytes = new Uint8Array(f64.buffer)
const EMPTY = new Uint8Array(0)

// The message being read and the position in it: module state, as the reader never yields or re-enters.
let b: Uint8Array = EMPTY
let p = 0

/** The payload, or undefined for the checked path. */
export function readPayload(bytes: Uint8Array): WirePayload | undefined {
  if (!LITTLE_ENDIAN) return undefined
  b = bytes
  p = 0
  try {
    return payload(bytes.length)
  } catch (err) {
    if (err === BAIL) return undefined
    throw err
  } finally {
    b = EMPTY
  }
}

function payload(end: number): WirePayload {
  let timestamp: WirePayload['timestamp']
  let seq: WirePayload['seq']
  const metrics: WireMetric[] = []
  while (p < end) {
    switch (varint32(end)) {
      case 0x08:
        timestamp = uint64(end)
        break // timestamp = 1
      case 0x12: {
        // metrics = 2
        const stop = lengthEnd(end)
        metrics.push(metric(stop))
        break
      }
      case 0x18:
        seq = uint64(end)
        break // seq = 3
      case 0x22:
        string(end)
        break // uuid = 4, checked but not kept
      case 0x2a:
        p = lengthEnd(end)
        break // body = 5
      default:
        throw BAIL
    }
  }
  // The checked path's key order: timestamp, seq, metrics (always there).
  const out: WirePayload = {}
  if (timestamp !== undefined) out.timestamp = timestamp
  if (seq !== undefined) out.seq = seq
  out.metrics = metrics
  return out
}

function metric(end: number): WireMetric {
  // Keys in the order of their first occurrence, as protobufjs assigns them to the message.
  const m: WireMetric = {}
  while (p < end) {
    switch (varint32(end)) {
      case 0x0a:
        m.name = string(end)
        break // name = 1
      case 0x10:
        m.alias = uint64(end)
        break // alias = 2
      case 0x18:
        m.timestamp = uint64(end)
        break // timestamp = 3
      case 0x20:
        m.datatype = varint32(end)
        break // datatype = 4
      case 0x28:
        m.is_historical = varint32(end) !== 0
        break // is_historical = 5
      case 0x30:
        m.is_transient = varint32(end) !== 0
        break // is_transient = 6
      case 0x38:
        m.is_null = varint32(end) !== 0
        break // is_null = 7
      case 0x50:
        m.int_value = varint32(end)
        break // int_value = 10
      case 0x58:
        m.long_value = uint64(end)
        break // long_value = 11
      case 0x65: {
        // float_value = 12, 32-bit
        if (p + 4 > end) throw BAIL
        f32Bytes[0] = b[p] as number
        f32Bytes[1] = b[p + 1] as number
        f32Bytes[2] = b[p + 2] as number
        f32Bytes[3] = b[p + 3] as number
        p += 4
        m.float_value = f32[0]
        break
      }
      case 0x69: {
        // double_value = 13, 64-bit
        if (p + 8 > end) throw BAIL
        for (let i = 0; i < 8; i++) f64Bytes[i] = b[p + i] as number
        p += 8
        m.double_value = f64[0]
        break
      }
      case 0x70:
        m.boolean_value = varint32(end) !== 0
        break // boolean_value = 14
      case 0x7a:
        m.string_value = string(end)
        break // string_value = 15
      case 0x82:
        p = lengthEnd(end)
        break // bytes_value = 16: (16 << 3 | 2) = 0x82, on the wire 0x82 0x01; not kept
      default:
        throw BAIL
    }
  }
  return m
}

/**
 * A 32-bit varint as protobufjs' Reader#uint32 reads it (the fifth byte's high bits ignored, unsigned), for tags,
 * lengths and uint32 and bool values; a fifth byte that continues (protobufjs then skips five bytes unread) bails.
 */
function varint32(end: number): number {
  if (p >= end) throw BAIL
  let c = b[p++] as number
  if (c < 0x80) return c
  let v = c & 0x7f
  for (let shift = 7; shift < 28; shift += 7) {
    if (p >= end) throw BAIL
    c = b[p++] as number
    v |= (c & 0x7f) << shift
    if (c < 0x80) return v
  }
  if (p >= end) throw BAIL
  c = b[p++] as number
  if (c >= 0x80) throw BAIL
  return (v | ((c & 0x0f) << 28)) >>> 0
}

/** A uint64 as protobufjs' readLongVarint reads it (ten bytes at most), then as its Long (unsigned). */
function uint64(end: number): protobuf.Long | number {
  let lo = 0
  let hi = 0
  for (let i = 0; ; i++) {
    if (p >= end || i === 10) throw BAIL
    const c = b[p++] as number
    if (i < 4) lo |= (c & 0x7f) << (7 * i)
    else if (i === 4) {
      lo |= (c & 0x7f) << 28
      hi = (c & 0x7f) >> 4
    } else hi |= (c & 0x7f) << (7 * (i - 5) + 3)
    if (c < 0x80) break
  }
  if (LONG !== undefined) return new LONG(lo | 0, hi | 0, true)
  return new protobuf.util.LongBits(lo >>> 0, hi >>> 0).toNumber(true)
}

function lengthEnd(end: number): number {
  const length = varint32(end)
  const stop = p + length
  if (stop > end) throw BAIL
  return stop
}

function string(end: number): string {
  const stop = lengthEnd(end)
  const s = text(b, p, stop)
  if (s === undefined) throw BAIL
  p = stop
  return s
}
