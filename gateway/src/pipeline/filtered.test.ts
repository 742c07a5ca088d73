import { isUtf8 } from 'node:buffer'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { protoType } from '../streams/proto.ts'
import { encodeFiltered, MAX_VALUE_DEPTH } from './filtered.ts'
import { fromValue } from '../../../test/helpers/protobuf-value.ts'
import { hasNonFinite } from './encode.ts'

const filtered = protoType('veil.v1.Filtered')

/** The encoder this module replaced, kept as the reference: a google.protobuf.Value tree, then protobufjs. */
function toValue(value: unknown, depth: number): Record<string, unknown> {
  if (depth > MAX_VALUE_DEPTH) throw new Error('document nested too deep')
  if (value === null) return { nullValue: 0 }
  switch (typeof value) {
    case 'number':
      return { numberValue: value }
    case 'string':
      return { stringValue: value }
    case 'boolean':
      return { boolValue: value }
    case 'object': {
      if (value instanceof Uint8Array) throw new Error('bytes in a filtered document')
      if (Array.isArray(value))
        return { listValue: { values: value.map((v) => (v === undefined ? { nullValue: 0 } : toValue(v, depth + 1))) } }
      const fields: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(value)) if (v !== undefined) fields[k] = toValue(v, depth + 1)
      return { structValue: { fields } }
    }
    default:
      throw new Error(`${typeof value} in a filtered document`)
  }
}
const reference = (policy: string, doc: unknown): Buffer =>
  Buffer.from(filtered.encode({ policy, data: toValue(doc, 0) }).finish())

const decode = (bytes: Uint8Array): { policy: string; data: unknown } => {
  const m = filtered.toObject(filtered.decode(bytes), { defaults: false }) as {
    policy: string
    data: Record<string, unknown>
  }
  return { policy: m.policy, data: fromValue(m.data) }
}

/** JSON-like documents with what filtered documents hold: undefined fields, long and non-ASCII strings, nesting. */
const text = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({ maxLength: 300 }),
  fc.constantFrom('', 'ts', '__proto__', '1', '0', 'é', '😀'),
)
const leaf = fc.oneof(fc.constant(null), fc.boolean(), fc.double(), fc.integer(), text, fc.constant(undefined))
const documents = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('value'), { maxLength: 6 }),
    fc.dictionary(text, tie('value'), { maxKeys: 8 }),
  ),
})).value

describe('veil.v1.Filtered writer', () => {
  it('writes the bytes protobufjs wrote from a Value tree, for generated documents', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), documents, (policy, doc) => {
        let want: Buffer | Error
        try {
          want = reference(policy, doc)
        } catch (err) {
          want = err as Error
        }
        if (want instanceof Error || hasNonFinite(doc)) {
          // Only a top-level undefined makes the reference throw among these documents; the writer also refuses
          // the NaN and ±Infinity that the reference wrote as doubles.
          expect(() => encodeFiltered(policy, doc, false)).toThrow()
          return
        }
        expect(encodeFiltered(policy, doc, false).equals(want)).toBe(true)
      }),
      { numRuns: 3000 },
    )
  })

  it('round-trips through protobufjs: the document itself (-0 included, which JSON writes as 0)', () => {
    fc.assert(
      // An own `__proto__` field never left (see filtered.ts); the identity test above covers it.
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 20 }),
        fc.jsonValue().filter((d) => !JSON.stringify(d).includes('"__proto__"')),
        (policy, doc) => {
          const { policy: p, data } = decode(encodeFiltered(policy, doc, false))
          expect(p).toBe(policy)
          expect(data).toEqual(doc)
        },
      ),
      { numRuns: 1000 },
    )
  })

  it('writes lengths of any size, and a huge document does not keep its buffer', () => {
    const doc = {
      big: 'x'.repeat(200_000),
      list: Array.from({ length: 3000 }, (_, i) => ({ i, s: 'é'.repeat(i % 70) })),
      small: 'ok',
    }
    expect(encodeFiltered('v', doc, false).equals(reference('v', doc))).toBe(true)
    expect(encodeFiltered('v', { a: 1 }, false).equals(reference('v', { a: 1 }))).toBe(true)
    for (const n of [127, 128, 16383, 16384, 2_097_152]) {
      const s = { s: 'a'.repeat(n) }
      expect(encodeFiltered('v', s, false).equals(reference('v', s)), String(n)).toBe(true)
    }
  })

  it('refuses bytes, functions, symbols, bigints and nesting past MAX_VALUE_DEPTH, as before', () => {
    const nest = (n: number): unknown => (n === 0 ? 1 : { a: nest(n - 1) })
    expect(encodeFiltered('v', nest(MAX_VALUE_DEPTH), false).equals(reference('v', nest(MAX_VALUE_DEPTH)))).toBe(true)
    for (const doc of [
      { b: new Uint8Array(2) },
      { b: Buffer.from('x') },
      [() => 1],
      { s: Symbol('s') },
      { n: 1n },
      nest(MAX_VALUE_DEPTH + 1),
      undefined,
    ]) {
      expect(() => reference('v', doc)).toThrow()
      expect(() => encodeFiltered('v', doc, false)).toThrow()
    }
    const cycle: Record<string, unknown> = {}
    cycle.self = cycle
    expect(() => encodeFiltered('v', cycle, false)).toThrow(/too deep/)
    // After a refusal the next document is whole.
    expect(encodeFiltered('v', { a: 1 }, false).equals(reference('v', { a: 1 }))).toBe(true)
  })

  it('refuses Buffer JSON ({"type":"Buffer","data":[…]}) in binary streams, as the JSON encoding does', () => {
    const doc = { snap: { type: 'Buffer', data: [1, 2, 3] } }
    expect(() => encodeFiltered('v', doc, true)).toThrow(/bytes/)
    expect(encodeFiltered('v', doc, false).equals(reference('v', doc))).toBe(true)
  })

  it('writes valid UTF-8 for a lone surrogate (U+FFFD) and null for a hole, where protobufjs wrote WTF-8 or threw', () => {
    const bytes = encodeFiltered('v', { s: 'a\ud800b' }, false)
    expect(decode(bytes).data).toEqual({ s: 'a\ufffdb' })
    expect(isUtf8(bytes.subarray(bytes.indexOf('a'), bytes.indexOf('a') + 5))).toBe(true)
    // biome-ignore lint/suspicious/noSparseArray: a hole in an array is the case under test
    expect(decode(encodeFiltered('v', [1, , 3], false)).data).toEqual([1, null, 3])
  })
})
