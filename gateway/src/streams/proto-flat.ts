import { endianness } from 'node:os'
import type protobuf from 'protobufjs'
import { text } from '../sdk/protobuf.ts'

/**
 * One-pass decoders for flat messages (the canonical streams of schemas/proto/canonical.proto): straight-line code
 * generated once per message type, as protobufjs generates its own decoders, that checks the wire and builds the
 * plain object in the same pass. It replaces three passes (proto.ts' checkWire walk, protobufjs' decode into a
 * message instance with Long objects for 64-bit fields, then toObject) and gives exactly their result:
 *
 * - the same drop reason: the first problem checkWire would find, in wire order (`invalid` for an undeclared
 *   field, `undecodable` for the rest), then `undecodable` for what only protobufjs' decode refused (a 64-bit
 *   varint longer than ten bytes);
 * - the same object: fields in field-number order, present only when on the wire, the last value of a repeated
 *   scalar winning, repeated strings in wire order, uint64 as a Number (low + high × 2^32), doubles as they are.
 *
 * Varints where protobufjs reads them as 32-bit (tags, lengths) are read its way, quirks included: at most five
 * bytes, the fifth's high bits ignored, and five more bytes skipped unread after a fifth byte that continues.
 * Only the field types the canonical messages use are compiled (double, uint64, string, repeated string); any
 * other message gets undefined and keeps the three passes. proto-flat.test.ts checks generated messages, valid and
 * corrupted, against the three passes.
 */

type Kind = 'double' | 'uint64' | 'string'
const WIRE: Record<Kind, number> = { double: 1, uint64: 0, string: 2 }

/** A 32-bit varint into `name`, as protobufjs' Reader#uint32 reads it; running past the end is a drop. */
function varint32(name: string): string {
  return `
    c = b[p++]; ${name} = c & 127
    if (c >= 128) {
      if (p >= n) return U
      c = b[p++]; ${name} |= (c & 127) << 7
      if (c >= 128) {
        if (p >= n) return U
        c = b[p++]; ${name} |= (c & 127) << 14
        if (c >= 128) {
          if (p >= n) return U
          c = b[p++]; ${name} |= (c & 127) << 21
          if (c >= 128) {
            if (p >= n) return U
            c = b[p++]; ${name} = (${name} | (c & 15) << 28) >>> 0
            if (c >= 128) { p += 5; if (p > n) return U }
          }
        }
      }
    }`
}

function readField(kind: Kind, local: string, repeated: boolean): string {
  switch (kind) {
    case 'double':
      return `
    if (p + 8 > n) return U
    s8[0] = b[p]; s8[1] = b[p + 1]; s8[2] = b[p + 2]; s8[3] = b[p + 3]; s8[4] = b[p + 4]; s8[5] = b[p + 5]; s8[6] = b[p + 6]; s8[7] = b[p + 7]
    p += 8
    ${local} = f64[0]`
    case 'uint64':
      // protobufjs' readLongVarint: seven bits a byte into low (28) and high; more than ten bytes throws in its
      // decode, after the wire check (which skips any length of varint) has passed the whole message.
      return `
    lo = 0; hi = 0
    for (k = 0; ; k++) {
      if (p >= n) return U
      c = b[p++]
      if (k < 4) lo |= (c & 127) << (7 * k)
      else if (k === 4) { lo |= (c & 127) << 28; hi = (c & 127) >> 4 }
      else hi |= (c & 127) << (7 * (k - 5) + 3)
      if (c < 128) break
      if (k === 9) {
        late = true
        do { if (p >= n) return U } while (b[p++] & 128)
        break
      }
    }
    ${local} = (lo >>> 0) + (hi >>> 0) * 4294967296`
    case 'string':
      return `${varint32('l')}
    e = p + l
    if (e > n) return U
    v = text(b, p, e)
    if (v === undefined) return U
    p = e
    ${repeated ? `if (${local} === undefined) ${local} = [v]; else ${local}.push(v)` : `${local} = v`}`
  }
}

/** The compiled decoder, or undefined when the message has a field of another kind (or extensions). */
export function compileFlatDecoder<D>(
  type: protobuf.Type,
  drops: { readonly undecodable: D; readonly invalid: D },
): ((bytes: Uint8Array) => unknown) | undefined {
  if (endianness() !== 'LE') return undefined
  if (type.extensions !== undefined && type.extensions.length > 0) return undefined
  const fields = type.fieldsArray.slice().sort((a, b) => a.id - b.id)
  for (const field of fields) {
    field.resolve()
    const repeatedOk = !field.repeated || field.type === 'string'
    if (field.map || field.resolvedType !== null || !(field.type in WIRE) || !repeatedOk) return undefined
  }
  const locals = fields.map((_, i) => `f${i}`)
  const cases = fields.map(
    (field, i) => `
  case ${((field.id << 3) | (WIRE[field.type as Kind] as number)) >>> 0}: {${readField(field.type as Kind, locals[i] as string, field.repeated)}
    break
  }`,
  )
  const known = fields.map((field) => `id === ${field.id}`).join(' || ') || 'false'
  const build = fields
    .map((field, i) => `  if (${locals[i]} !== undefined) d[${JSON.stringify(field.name)}] = ${locals[i]}`)
    .join('\n')
  const source = `
return function decode${type.name.replace(/\W/g, '')}(b) {
  const n = b.length
  let p = 0, c = 0, t = 0, l = 0, e = 0, k = 0, lo = 0, hi = 0, v, late = false
  ${locals.length > 0 ? `let ${locals.join(', ')}` : ''}
  while (p < n) {${varint32('t')}
    switch (t) {${cases.join('')}
    default: {
      const id = t >>> 3, w = t & 7
      if (id === 0 || w === 3 || w === 4 || w > 5) return U
      if (!(${known})) return I
      return U
    }
    }
  }
  if (late) return U
  const d = {}
${build}
  return d
}`
  const f64 = new Float64Array(1)
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- compiled once per message type at load, like protobufjs' own decoders
  return new Function('U', 'I', 'text', 'f64', 's8', source)(
    drops.undecodable,
    drops.invalid,
    text,
    f64,
    new Uint8Array(f64.buffer),
  ) as (bytes: Uint8Array) => unknown
}
