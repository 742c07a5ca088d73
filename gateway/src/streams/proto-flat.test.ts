import { deepStrictEqual } from 'node:assert'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compileCheckedDecoder, compileProtoDecoder, protoType, ProtoDrop } from './proto.ts'
import { compileFlatDecoder } from './proto-flat.ts'

const CANONICAL = [
  'SmartPlugEnergy',
  'CameraEvent',
  'RobotVacuumStatus',
  'BodyScaleMeasurement',
  'GpsTrackerLocation',
].map((n) => `veil.canonical.v1.${n}`)

/** What the decode stage makes of a decoder's answer: an object, or a drop reason (a throw is `undecodable`). */
function outcome(decode: (bytes: Uint8Array) => unknown, bytes: Uint8Array): unknown {
  try {
    const r = decode(bytes)
    return r instanceof ProtoDrop ? r.reason : r
  } catch {
    return 'undecodable'
  }
}

function varint(value: bigint): number[] {
  const out: number[] = []
  let v = BigInt.asUintN(64, value)
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80)
    v >>= 7n
  }
  out.push(Number(v))
  return out
}
const tag = (id: number, wire: number): number[] => varint(BigInt(((id << 3) | wire) >>> 0))
const utf8 = (s: string): number[] => [...Buffer.from(s)]

/** One field on the wire: well-formed for some field number, or deliberately wrong in one of the ways checkWire and protobufjs see. */
const field = fc.oneof(
  // Well-formed varint, 64-bit and length-delimited fields for any number (declared or not).
  fc
    .tuple(fc.integer({ min: 1, max: 9 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }))
    .map(([id, v]) => [...tag(id, 0), ...varint(v)]),
  fc.tuple(fc.integer({ min: 1, max: 9 }), fc.double()).map(([id, d]) => {
    const b = Buffer.alloc(8)
    b.writeDoubleLE(d)
    return [...tag(id, 1), ...b]
  }),
  fc
    .tuple(
      fc.integer({ min: 1, max: 9 }),
      fc.oneof(
        fc.string({ unit: 'grapheme', maxLength: 40 }),
        fc.string({ maxLength: 8 }),
        fc.constantFrom('\ufeffbom', 'é', '😀', ''),
      ),
    )
    .map(([id, s]) => [...tag(id, 2), ...varint(BigInt(Buffer.byteLength(s))), ...utf8(s)]),
  // Arbitrary bytes as a string (invalid UTF-8 likely), or a length that is off.
  fc
    .tuple(fc.integer({ min: 1, max: 9 }), fc.uint8Array({ maxLength: 6 }), fc.integer({ min: -2, max: 2 }))
    .map(([id, b, off]) => [...tag(id, 2), ...varint(BigInt(Math.max(0, b.length + off))), ...b]),
  // Varints longer than ten bytes (checkWire skips them, protobufjs' decode throws) and exactly ten with junk.
  fc
    .tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 9, max: 14 }))
    .map(([id, k]) => [...tag(id, 0), ...Array<number>(k).fill(0xff), 0x01]),
  fc
    .tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 0x7f }))
    .map(([id, last]) => [...tag(id, 0), ...Array<number>(9).fill(0x80 | 0x55), last]),
  // Tags protobufjs reads as 32-bit its own way: non-minimal, a fifth byte with high bits, a fifth that continues.
  fc
    .tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 5 }))
    .map(([id, wire]) => [0x80 | ((id << 3) | wire), 0x80, 0x80, 0x80, 0x70, 0x00]),
  fc
    .tuple(fc.integer({ min: 1, max: 9 }), fc.uint8Array({ minLength: 5, maxLength: 5 }))
    .map(([id, junk]) => [0x80 | (id << 3) | 1, 0x80, 0x80, 0x80, 0x80, ...junk, 0, 0, 0, 0, 0, 0, 0, 0]),
  // Anything: field 0, groups, wire types 6 and 7, raw bytes.
  fc
    .tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 7 }), fc.uint8Array({ maxLength: 10 }))
    .map(([id, wire, body]) => [...tag(id, wire), ...body]),
)

const message = fc.oneof(
  fc.array(field, { maxLength: 8 }).map((fields) => Uint8Array.from(fields.flat())),
  // Corrupted: one byte changed and the message cut somewhere.
  fc
    .tuple(fc.array(field, { minLength: 1, maxLength: 6 }), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat())
    .map(([fields, i, b, cut]) => {
      const bytes = Uint8Array.from(fields.flat())
      bytes[i % bytes.length] = b
      return bytes.subarray(0, cut % (bytes.length + 1))
    }),
  fc.uint8Array({ maxLength: 40 }),
)

describe('one-pass decoders of the canonical messages', () => {
  it('are compiled for every canonical message type, and not for types with other field kinds', () => {
    for (const name of CANONICAL)
      expect(compileFlatDecoder(protoType(name), { undecodable: 1, invalid: 2 }), name).toBeDefined()
    for (const name of ['org.eclipse.tahu.protobuf.Payload', 'google.protobuf.Value', 'veil.v1.Filtered'])
      expect(compileFlatDecoder(protoType(name), { undecodable: 1, invalid: 2 }), name).toBeUndefined()
  })

  it('decode well-formed messages to exactly what checkWire + protobufjs decode + toObject made of them', () => {
    for (const name of CANONICAL) {
      const type = protoType(name)
      const fast = compileProtoDecoder(name)
      const slow = compileCheckedDecoder(type)
      const declared = type.fieldsArray.map((f) => f.id)
      fc.assert(
        fc.property(fc.array(field, { maxLength: 10 }), (fields) => {
          // Declared fields only, so that most messages are accepted.
          const bytes = Uint8Array.from(fields.filter((f) => declared.includes((f[0] as number) >> 3)).flat())
          const want = outcome(slow, bytes)
          const got = outcome(fast, bytes)
          deepStrictEqual(got, want)
          if (typeof want === 'object') expect(Object.keys(got as object)).toEqual(Object.keys(want as object))
        }),
        { numRuns: 1500 },
      )
    }
  })

  it('drop exactly what the three passes dropped, for the same reason, on corrupted and random bytes', () => {
    let accepted = 0
    for (const name of CANONICAL) {
      const type = protoType(name)
      const fast = compileProtoDecoder(name)
      const slow = compileCheckedDecoder(type)
      fc.assert(
        fc.property(message, (bytes) => {
          const want = outcome(slow, bytes)
          const got = outcome(fast, bytes)
          deepStrictEqual(got, want)
          if (typeof want === 'object') {
            accepted++
            expect(Object.keys(got as object)).toEqual(Object.keys(want as object))
          }
        }),
        { numRuns: 3000 },
      )
    }
    expect(accepted).toBeGreaterThan(100)
  })

  it('agree on hand-picked edges: 64-bit extremes, overlong varints before an unknown field, Buffer and plain Uint8Array', () => {
    const fast = compileProtoDecoder('veil.canonical.v1.CameraEvent')
    const slow = compileCheckedDecoder(protoType('veil.canonical.v1.CameraEvent'))
    const cases = [
      [...tag(1, 0), ...varint(2n ** 64n - 1n)],
      [...tag(1, 0), ...varint(2n ** 53n + 1n), ...tag(5, 2), 1, 0x61, ...tag(5, 2), 0],
      // Too long for protobufjs' decode, but checkWire reports the unknown field 9 first.
      [...tag(1, 0), ...Array<number>(11).fill(0xff), 0x01, ...tag(9, 0), 1],
      [...tag(1, 0), ...Array<number>(11).fill(0xff), 0x01],
      [...tag(3, 2), 2, 0xc3, 0x28, ...tag(9, 0), 1],
      [...tag(4, 1), 0, 0, 0, 0, 0, 0, 0xf8, 0x7f, ...tag(4, 1), 0, 0, 0, 0, 0, 0, 0, 0x80],
      [0x08],
      [0x88],
      [],
    ]
    for (const bytes of cases) {
      for (const input of [
        Buffer.from(bytes),
        Uint8Array.from(bytes),
        Buffer.concat([Buffer.from([9, 9]), Buffer.from(bytes)]).subarray(2),
      ]) {
        deepStrictEqual(outcome(fast, input), outcome(slow, input), Buffer.from(bytes).toString('hex'))
      }
    }
    expect(outcome(fast, Uint8Array.from(cases[0] as number[]))).toEqual({ ts: 2 ** 64 })
    expect(outcome(fast, Uint8Array.from(cases[2] as number[]))).toBe('invalid')
    expect(outcome(fast, Uint8Array.from(cases[3] as number[]))).toBe('undecodable')
  })
})
