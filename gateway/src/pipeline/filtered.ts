import { endianness } from 'node:os'
import { MAX_NESTING } from '../sdk/nesting.ts'

/**
 * `veil.v1.Filtered { policy, data: google.protobuf.Value }` (schemas/proto/filtered.proto) written straight from
 * the filtered document in one walk, into one reused buffer. protobufjs needed a Value object tree per copy
 * (`{ structValue: { fields: { ts: { numberValue: … } } } }`) and then its reflective writer, which queues one
 * operation object per field and forks a state per nested message: twice the work of the JSON copy.
 *
 * The bytes are those protobufjs wrote for the same document (gateway/src/pipeline/filtered.test.ts compares them
 * for generated documents), field for field: Struct entries in the document's key order, `nullValue: 0`,
 * `boolValue: false` and empty strings written, not left out. Two deliberate differences, both for documents the
 * old path mishandled: a lone UTF-16 surrogate is written as U+FFFD (protobufjs wrote strings under 40 units as
 * WTF-8, which no protobuf runtime accepts as a string), and a hole in a sparse array is null like `undefined`
 * (protobufjs threw on it).
 */

/** A cycle or an absurd nesting is an encode error, not a stack overflow. */
export const MAX_VALUE_DEPTH = MAX_NESTING

/** Above this the scratch buffer is given back after the message, so one huge document does not pin its memory. */
const KEEP_BYTES = 64 * 1024

let buf = Buffer.allocUnsafeSlow(1024)
let pos = 0
const f64 = new Float64Array(1)
const f64Bytes = new Uint8Array(f64.buffer)
/** Protobuf doubles are little-endian; a Float64Array has the host's byte order. */
const LITTLE_ENDIAN = endianness() === 'LE'

function ensure(more: number): void {
  if (pos + more <= buf.length) return
  const next = Buffer.allocUnsafeSlow(Math.max(pos + more, buf.length * 2))
  buf.copy(next, 0, 0, pos)
  buf = next
}

/**
 * Reserves one byte for the length of what follows; `endLength` fixes it up. Lengths under 128 (nearly every
 * field of a telemetry document) fit that byte; a longer one moves its content up by the varint's extra bytes.
 */
function beginLength(): number {
  ensure(1)
  return pos++
}

function endLength(at: number): void {
  const length = pos - at - 1
  if (length < 0x80) {
    buf[at] = length
    return
  }
  let extra = 1
  for (let rest = length >>> 14; rest !== 0; rest >>>= 7) extra++
  ensure(extra)
  buf.copyWithin(at + 1 + extra, at + 1, pos)
  pos += extra
  let p = at
  let v = length
  while (v >= 0x80) {
    buf[p++] = (v & 0x7f) | 0x80
    v >>>= 7
  }
  buf[p] = v
}

function writeVarint(value: number): void {
  ensure(5)
  let v = value >>> 0
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80
    v >>>= 7
  }
  buf[pos++] = v
}

/** A length-prefixed UTF-8 string: short ASCII strings byte by byte, anything else through Buffer#write. */
function writeString(s: string): void {
  const n = s.length
  if (n < 0x80) {
    ensure(n + 1)
    const start = pos
    buf[pos++] = n
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i)
      if (c >= 0x80) {
        pos = start
        writeUtf8(s)
        return
      }
      buf[pos++] = c
    }
    return
  }
  writeUtf8(s)
}

function writeUtf8(s: string): void {
  const length = Buffer.byteLength(s, 'utf8')
  writeVarint(length)
  ensure(length)
  pos += buf.write(s, pos, length, 'utf8')
}

function isBufferJson(value: object): boolean {
  return (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)
}

/** The fields of one google.protobuf.Value (its content, without tag or length). */
function writeValue(value: unknown, depth: number, refuseBufferJson: boolean): void {
  if (depth > MAX_VALUE_DEPTH) throw new Error('document nested too deep')
  if (value === null) {
    ensure(2)
    buf[pos++] = 0x08 // null_value = 1, varint: NULL_VALUE (0)
    buf[pos++] = 0
    return
  }
  switch (typeof value) {
    case 'number':
      // Written as a double it would leave as it is; the one walk that writes it is the place to refuse it.
      if (!Number.isFinite(value)) throw new Error('NaN or ±Infinity in a filtered document')
      ensure(9)
      buf[pos++] = 0x11 // number_value = 2, 64-bit
      if (LITTLE_ENDIAN) {
        f64[0] = value
        for (let i = 0; i < 8; i++) buf[pos++] = f64Bytes[i] as number
      } else {
        pos = buf.writeDoubleLE(value, pos)
      }
      return
    case 'string':
      ensure(1)
      buf[pos++] = 0x1a // string_value = 3, length-delimited
      writeString(value)
      return
    case 'boolean':
      ensure(2)
      buf[pos++] = 0x20 // bool_value = 4, varint
      buf[pos++] = value ? 1 : 0
      return
    case 'object': {
      if (value instanceof Uint8Array) throw new Error('bytes in a filtered document')
      if (Array.isArray(value)) {
        ensure(1)
        buf[pos++] = 0x32 // list_value = 6
        const list = beginLength()
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i]
          ensure(1)
          buf[pos++] = 0x0a // ListValue.values = 1
          const at = beginLength()
          if (item === undefined) {
            ensure(2)
            buf[pos++] = 0x08
            buf[pos++] = 0
          } else {
            writeValue(item, depth + 1, refuseBufferJson)
          }
          endLength(at)
        }
        endLength(list)
        return
      }
      if (refuseBufferJson && isBufferJson(value)) throw new Error('bytes in a filtered document')
      ensure(1)
      buf[pos++] = 0x2a // struct_value = 5
      const struct = beginLength()
      const record = value as Record<string, unknown>
      const keys = Object.keys(record)
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string
        const field = record[key]
        // protobufjs' path assigned fields into a plain object, where `__proto__` sets the prototype instead of
        // adding a field: that field never left, and still does not.
        if (field === undefined || key === '__proto__') continue
        ensure(1)
        buf[pos++] = 0x0a // Struct.fields = 1, a map entry
        const entry = beginLength()
        ensure(1)
        buf[pos++] = 0x0a // key = 1
        writeString(key)
        ensure(1)
        buf[pos++] = 0x12 // value = 2
        const at = beginLength()
        writeValue(field, depth + 1, refuseBufferJson)
        endLength(at)
        endLength(entry)
      }
      endLength(struct)
      return
    }
    default:
      throw new Error(`${typeof value} in a filtered document`)
  }
}

/**
 * The filtered document as veil.v1.Filtered bytes. Throws (an encode error for the caller) on bytes, functions,
 * symbols, bigints and nesting past MAX_VALUE_DEPTH; for binary streams also on `{"type":"Buffer","data":[…]}`, the
 * shape the JSON encoding refuses too. Throws on NaN and ±Infinity as well: a number an operator overflowed never
 * leaves.
 */
export function encodeFiltered(policy: string, doc: unknown, binary: boolean): Buffer {
  pos = 0
  try {
    ensure(1)
    buf[pos++] = 0x0a // policy = 1
    writeString(policy)
    ensure(1)
    buf[pos++] = 0x12 // data = 2
    const at = beginLength()
    writeValue(doc, 0, binary)
    endLength(at)
    const out = Buffer.allocUnsafe(pos)
    buf.copy(out, 0, 0, pos)
    return out
  } finally {
    if (buf.length > KEEP_BYTES) buf = Buffer.allocUnsafeSlow(1024)
    pos = 0
  }
}
