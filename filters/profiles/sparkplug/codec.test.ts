import fc from 'fast-check'
import protobuf from 'protobufjs'
import { describe, expect, it } from 'vitest'
import { hasNonFinite } from '../../../gateway/src/pipeline/encode.ts'
import { sparkplugNonFinite } from './stream.ts'
import { MAX_PROTO_DEPTH } from '../../../gateway/src/streams/proto.ts'
import {
  DATA_TYPES,
  decodePayload,
  decodePayloadChecked,
  encodePayload,
  outputType,
  sparkplugPayloadType,
  type MetricValue,
  type SparkplugDocument,
  type SparkplugMetric,
} from './codec.ts'
import { readPayload } from './read.ts'
import { encodePayloadReflective } from './testing.ts'

const Long = protobuf.util.Long as typeof protobuf.util.Long
const unsignedLong = (v: bigint): protobuf.Long => new Long(Number(v & 0xffffffffn) | 0, Number(v >> 32n) | 0, true)
/** No lone UTF-16 surrogate (String#isWellFormed, which the compile target does not declare). */
const isWellFormed = (s: string): boolean => !/\p{Cs}/u.test(s)
const type = sparkplugPayloadType()

/** What a decoder gives, or that it threw (the checked path throws where protobufjs' decode does). */
function outcome(decode: (bytes: Uint8Array) => unknown, bytes: Uint8Array): unknown {
  try {
    return { value: decode(bytes) }
  } catch {
    return { threw: true }
  }
}

function expectSame(bytes: Uint8Array): void {
  expect(outcome(decodePayload, bytes)).toStrictEqual(outcome(decodePayloadChecked, bytes))
}

// --- Generated payloads, encoded by protobufjs as an edge node's library would ------------------------------------

const uint64 = fc.oneof(
  fc.integer({ min: 0, max: 300 }),
  fc.maxSafeNat(),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(unsignedLong),
)
const uint32 = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 4294967295 }))
const text = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({ maxLength: 200 }),
  fc.constantFrom('', 'Temperature', 'bdSeq', 'é', '😀', '\ufeffbom'),
)
const bytes = fc.uint8Array({ maxLength: 40 })

/** A scalar metric, as edge nodes send them: fields present or not, at most one value (or, rarely, several). */
const scalarMetric = fc.record(
  {
    name: text,
    alias: uint64,
    timestamp: uint64,
    datatype: fc.oneof(fc.integer({ min: 0, max: 34 }), uint32),
    is_historical: fc.boolean(),
    is_transient: fc.boolean(),
    is_null: fc.boolean(),
    int_value: uint32,
    long_value: uint64,
    float_value: fc.float(),
    double_value: fc.double(),
    boolean_value: fc.boolean(),
    string_value: text,
    bytes_value: bytes,
  },
  { requiredKeys: [] },
)
const VALUES = [
  'int_value',
  'long_value',
  'float_value',
  'double_value',
  'boolean_value',
  'string_value',
  'bytes_value',
] as const
const oneValue = fc.tuple(scalarMetric, fc.constantFrom(...VALUES), fc.boolean()).map(([m, keep, several]) => {
  if (several) return m
  const out: Record<string, unknown> = { ...m }
  for (const v of VALUES) if (v !== keep) delete out[v]
  return out
})

/** The rare parts the reader leaves to the checked path: metadata, properties, datasets, templates, extensions. */
const propertySet = fc.record(
  {
    keys: fc.array(text, { maxLength: 3 }),
    values: fc.array(fc.record({ type: uint32, int_value: uint32, string_value: text }, { requiredKeys: [] }), {
      maxLength: 3,
    }),
  },
  { requiredKeys: [] },
)
const rareMetric = fc
  .tuple(
    oneValue,
    fc.record(
      {
        metadata: fc.record(
          { is_multi_part: fc.boolean(), content_type: text, size: uint64, md5: text },
          { requiredKeys: [] },
        ),
        properties: propertySet,
        dataset_value: fc.record(
          {
            num_of_columns: uint64,
            columns: fc.array(text, { maxLength: 3 }),
            types: fc.array(uint32, { maxLength: 3 }),
            rows: fc.array(
              fc.record({
                elements: fc.array(fc.record({ int_value: uint32, string_value: text }, { requiredKeys: [] }), {
                  maxLength: 3,
                }),
              }),
              { maxLength: 2 },
            ),
          },
          { requiredKeys: [] },
        ),
        template_value: fc.record(
          {
            version: text,
            metrics: fc.array(oneValue, { maxLength: 2 }),
            template_ref: text,
            is_definition: fc.boolean(),
            parameters: fc.array(fc.record({ name: text, type: uint32, long_value: uint64 }, { requiredKeys: [] }), {
              maxLength: 2,
            }),
          },
          { requiredKeys: [] },
        ),
        extension_value: fc.constant({}),
      },
      { requiredKeys: [] },
    ),
  )
  .map(([m, rare]) => ({ ...m, ...rare }))

interface Generated {
  readonly object: Record<string, unknown>
  /** Only scalar metrics: the reader must read it itself. */
  readonly common: boolean
}

const payloadOf = (metrics: fc.Arbitrary<Record<string, unknown>[]>): fc.Arbitrary<Record<string, unknown>> =>
  fc.record({ timestamp: uint64, metrics, seq: uint64, uuid: text, body: bytes }, { requiredKeys: [] })
const generated: fc.Arbitrary<Generated> = fc.oneof(
  { weight: 3, arbitrary: payloadOf(fc.array(oneValue, { maxLength: 6 })).map((object) => ({ object, common: true })) },
  {
    weight: 1,
    arbitrary: payloadOf(fc.array(fc.oneof(oneValue, rareMetric), { maxLength: 4 })).map((object) => ({
      object,
      common: false,
    })),
  },
)
const encode = (object: Record<string, unknown>): Buffer => Buffer.from(type.encode(object).finish())

// --- Hand-made wire fields: the odd ones a generator over the schema never writes ----------------------------------

const varint = (v: bigint): number[] => {
  const out: number[] = []
  let x = v
  while (x >= 0x80n) {
    out.push(Number(x & 0x7fn) | 0x80)
    x >>= 7n
  }
  out.push(Number(x))
  return out
}
const field = (id: number, wire: number, body: readonly number[]): number[] => [
  ...varint(BigInt((id << 3) | wire)),
  ...(wire === 2 ? varint(BigInt(body.length)) : []),
  ...body,
]
/** A varint padded to `n` bytes with continuation bytes (non-minimal, still well-formed) when n exceeds its size. */
const padded = (v: bigint, n: number): number[] => {
  const minimal = varint(v)
  if (n <= minimal.length) return minimal
  const out = minimal.map((c) => c | 0x80)
  while (out.length < n - 1) out.push(0x80)
  out.push(0)
  return out
}
const rawMetricField = fc.oneof(
  fc
    .record({
      id: fc.integer({ min: 1, max: 21 }),
      wire: fc.constantFrom(0, 1, 2, 5),
      body: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 10 }),
    })
    .map(({ id, wire, body }) =>
      field(
        id,
        wire,
        wire === 0
          ? varint(BigInt(body[0] ?? 0))
          : wire === 1
            ? [...body, 0, 0, 0, 0, 0, 0, 0, 0].slice(0, 8)
            : wire === 5
              ? [...body, 0, 0, 0, 0].slice(0, 4)
              : body,
      ),
    ),
  // uint32 and bool fields (datatype, flags, int_value) and uint64 ones (alias, timestamp, long_value) in 1-12 bytes.
  fc
    .tuple(
      fc.constantFrom(4, 5, 6, 7, 10, 14, 2, 3, 11),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      fc.integer({ min: 1, max: 12 }),
    )
    .map(([id, v, n]) => field(id, 0, padded(v, n))),
  // Strings: valid, invalid UTF-8 (lone continuation, overlong, surrogate, truncated sequence).
  fc
    .tuple(
      fc.constantFrom(1, 15),
      fc.constantFrom(
        [0x61],
        [0x80],
        [0xc0, 0xaf],
        [0xed, 0xa0, 0x80],
        [0xe2, 0x82],
        [0xf0, 0x9f, 0x98, 0x80],
        [0xef, 0xbb, 0xbf],
      ),
    )
    .map(([id, body]) => field(id, 2, body)),
  fc.constant(field(16, 2, [1, 2, 3])),
)
const rawPayload = fc
  .array(
    fc.oneof(
      { weight: 4, arbitrary: fc.array(rawMetricField, { maxLength: 5 }).map((fields) => field(2, 2, fields.flat())) },
      {
        weight: 1,
        arbitrary: fc
          .tuple(fc.constantFrom(1, 3), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.integer({ min: 1, max: 12 }))
          .map(([id, v, n]) => field(id, 0, padded(v, n))),
      },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          field(4, 2, [0x76]),
          field(4, 2, [0xff]),
          field(5, 2, [0xff]),
          field(6, 0, [1]),
          field(100, 2, [1, 2]),
          field(2, 0, [1]),
          field(0, 0, [0]),
        ),
      },
    ),
    { maxLength: 5 },
  )
  .map((fields) => Buffer.from(fields.flat()))

/** Truncations, flipped and inserted bytes, and cut ranges of a valid payload. */
const corrupted = fc
  .tuple(
    generated,
    fc.array(
      fc.tuple(fc.constantFrom('truncate', 'set', 'insert', 'cut'), fc.nat(), fc.integer({ min: 0, max: 255 })),
      { minLength: 1, maxLength: 3 },
    ),
  )
  .map(([g, edits]) => {
    let b = [...encode(g.object)]
    for (const [edit, at, byte] of edits) {
      const i = b.length === 0 ? 0 : at % (b.length + 1)
      if (edit === 'truncate') b = b.slice(0, i)
      else if (edit === 'set') b[Math.min(i, b.length - 1)] = byte
      else if (edit === 'insert') b.splice(i, 0, byte)
      else b.splice(i, 1 + (byte % 8))
    }
    return Buffer.from(b)
  })

describe('Sparkplug B one-pass reader', () => {
  it('reads what the checked path reads, for generated payloads, and reads the scalar ones itself', () => {
    fc.assert(
      fc.property(generated, fc.boolean(), ({ object, common }, plain) => {
        const buffer = encode(object)
        // A Buffer takes protobufjs' BufferReader, a plain Uint8Array its Reader: both paths must agree either way.
        const bytes = plain ? new Uint8Array(buffer) : buffer
        expectSame(bytes)
        if (common) expect(readPayload(bytes)).toStrictEqual(decodePayloadChecked(bytes))
      }),
      { numRuns: 4000 },
    )
  })

  it('gives the same payload or the same drop reason for corrupted payloads', () => {
    fc.assert(
      fc.property(corrupted, (bytes) => expectSame(bytes)),
      { numRuns: 6000 },
    )
  })

  it('gives the same payload or the same drop reason for hand-made fields: wrong wire types, unknown and extension fields, long varints, invalid UTF-8', () => {
    fc.assert(
      fc.property(rawPayload, (bytes) => expectSame(bytes)),
      { numRuns: 6000 },
    )
  })

  it('gives the same payload or the same drop reason for random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => expectSame(bytes)),
      { numRuns: 4000 },
    )
  })

  it('agrees on the edge cases one by one', () => {
    const cases: [string, number[]][] = [
      ['empty', []],
      ['truncated length', [0x12, 0x05, 0x08]],
      ['huge length', [0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]],
      ['length past a metric into the payload', [0x12, 0x02, 0x0a, 0x05, 0x61, 0x62, 0x63]],
      ['wrong wire type (seq as length-delimited)', field(3, 2, [1])],
      ['unknown metric field', field(2, 2, field(20, 0, [1]))],
      ['extension field in the payload', field(7, 0, [1])],
      ['extension value in a metric', field(2, 2, field(19, 2, []))],
      ['uint64 in 10 bytes', field(2, 2, field(2, 0, padded(1n, 10)))],
      ['uint64 in 11 bytes', field(2, 2, field(2, 0, padded(1n, 11)))],
      ['uint32 in 5 bytes, high bits of the fifth set', field(2, 2, field(10, 0, [0xff, 0xff, 0xff, 0xff, 0x7f]))],
      ['uint32 in 6 bytes', field(2, 2, [...field(10, 0, padded(5n, 6)), ...field(4, 0, [3])])],
      ['bool as 2', field(2, 2, field(5, 0, [2]))],
      ['tag in 5 bytes', [0x8a, 0x80, 0x80, 0x80, 0x00, 0x00]],
      ['field 0', [0x00, 0x00]],
      ['group', [0x0b, 0x0c]],
      ['invalid UTF-8 in uuid', field(4, 2, [0xc3])],
      ['BOM kept in a name', field(2, 2, field(1, 2, [0xef, 0xbb, 0xbf, 0x61]))],
    ]
    for (const [what, b] of cases) {
      const bytes = Buffer.from(b)
      expect(outcome(decodePayload, bytes), what).toStrictEqual(outcome(decodePayloadChecked, bytes))
    }
    expect(decodePayload(Buffer.from(field(2, 2, field(20, 0, [1]))))).toBe('invalid')
    expect(decodePayload(Buffer.from([0x12, 0x05, 0x08]))).toBe('undecodable')
  })

  it('leaves templates nested past the depth bound to the checked path, which refuses them', () => {
    let metric: number[] = field(1, 2, [0x61])
    for (let i = 0; i < MAX_PROTO_DEPTH; i++) metric = field(18, 2, field(2, 2, metric)) // template_value.metrics
    const bytes = Buffer.from(field(2, 2, metric))
    expect(readPayload(bytes)).toBeUndefined()
    expect(decodePayload(bytes)).toBe('undecodable')
    expectSame(bytes)
  })
})

// --- The writer -----------------------------------------------------------------------------------------------------

/** Strings without lone surrogates, which protobufjs wrote as WTF-8 under 40 units (see write.ts). */
const wellFormed = text.filter(isWellFormed)
const numberish = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double(),
  fc.constantFrom(
    0,
    -0,
    2 ** 53,
    2 ** 64,
    2 ** 64 + 4096,
    1e300,
    -(2 ** 63),
    4294967295,
    4294967296,
    Number.NaN,
    Infinity,
    -Infinity,
  ),
)
const value: fc.Arbitrary<MetricValue> = fc.oneof(fc.constant(null), fc.boolean(), numberish, wellFormed)
const outMetric: fc.Arbitrary<SparkplugMetric> = fc.record(
  {
    name: wellFormed,
    dataType: fc.constantFrom(...DATA_TYPES),
    value,
    timestamp: numberish,
    isHistorical: fc.constant(true as const),
    isTransient: fc.constant(true as const),
  },
  { requiredKeys: ['name', 'dataType', 'value'] },
)
const outDoc: fc.Arbitrary<SparkplugDocument> = fc.record(
  {
    type: fc.constantFrom('NBIRTH', 'NDATA', 'NDEATH', 'DBIRTH', 'DDATA', 'DDEATH' as const),
    timestamp: numberish,
    metrics: fc.array(outMetric, { maxLength: 6 }),
  },
  { requiredKeys: ['type', 'metrics'] },
)

describe('Sparkplug B output data types', () => {
  it('writes a Float past float32 range as a Double, never as ±Infinity', () => {
    expect(outputType('Float', 1.5)).toBe(9)
    expect(outputType('Float', 3.4e38)).toBe(9)
    expect(outputType('Float', 1e39)).toBe(10)
    expect(outputType('Float', -1e39)).toBe(10)
    const doc: SparkplugDocument = {
      type: 'NDATA',
      timestamp: 1,
      metrics: [{ name: 'm', dataType: 'Double', value: 1e39 }],
    }
    const back = sparkplugPayloadType().decode(
      encodePayload(
        {
          ...doc,
          metrics: [
            { name: 'm', dataType: DATA_TYPES[outputType('Float', 1e39)] as SparkplugMetric['dataType'], value: 1e39 },
          ],
        },
        0,
        'v',
      ),
    ) as unknown as { metrics: { doubleValue?: number; double_value?: number }[] }
    const value = back.metrics[0]?.double_value ?? back.metrics[0]?.doubleValue
    expect(value).toBe(1e39)
  })
})

describe('Sparkplug B writer', () => {
  it('writes the bytes protobufjs wrote, for generated documents', () => {
    fc.assert(
      fc.property(
        outDoc,
        fc.option(fc.oneof(fc.integer({ min: 0, max: 255 }), numberish), { nil: undefined }),
        fc.string({ maxLength: 20 }).filter(isWellFormed),
        (doc, seq, version) => {
          const got = Buffer.from(encodePayload(doc, seq, version))
          const want = Buffer.from(encodePayloadReflective(doc, seq, version))
          expect(got.toString('hex')).toBe(want.toString('hex'))
        },
      ),
      { numRuns: 4000 },
    )
  })

  it('finds NaN and Infinity in a Sparkplug document where the generic walk does (the encode stage drops that copy)', () => {
    fc.assert(
      fc.property(outDoc, (doc) => sparkplugNonFinite(doc) === hasNonFinite(doc)),
      { numRuns: 3000 },
    )
  })

  it('writes long metrics and names (multi-byte lengths), and a huge one does not break the next', () => {
    for (const n of [1, 100, 127, 128, 200, 16383, 16384, 100_000]) {
      const doc: SparkplugDocument = {
        type: 'NDATA',
        timestamp: 1,
        metrics: [
          { name: 'n'.repeat(n), dataType: 'String', value: 'é'.repeat(n) },
          { name: 'b', dataType: 'Double', value: 1.5 },
        ],
      }
      expect(
        Buffer.from(encodePayload(doc, 3, 'v')).equals(Buffer.from(encodePayloadReflective(doc, 3, 'v'))),
        String(n),
      ).toBe(true)
    }
    const small: SparkplugDocument = { type: 'NDATA', metrics: [{ name: 'a', dataType: 'Int8', value: -1 }] }
    expect(
      Buffer.from(encodePayload(small, undefined, 'v')).equals(
        Buffer.from(encodePayloadReflective(small, undefined, 'v')),
      ),
    ).toBe(true)
  })

  it('round-trips through the reader: the document as Veil left it', () => {
    const doc: SparkplugDocument = {
      type: 'NDATA',
      timestamp: 1772366400000,
      metrics: [
        { name: 'Temperature', dataType: 'Int8', value: -3, timestamp: 5 },
        { name: 'Energy', dataType: 'UInt64', value: 2 ** 60 },
        { name: 'On', dataType: 'Boolean', value: false, isHistorical: true },
        { name: 'Gone', dataType: 'Float', value: null, isTransient: true },
      ],
    }
    const read = decodePayload(encodePayload(doc, 7, 'abc'))
    expect(read).toStrictEqual(decodePayloadChecked(encodePayload(doc, 7, 'abc')))
    expect(read).toMatchObject({
      seq: unsignedLong(7n),
      metrics: [
        { name: 'Temperature', int_value: 0xfffffffd },
        { name: 'Energy' },
        { name: 'On', boolean_value: false, is_historical: true },
        { name: 'Gone', is_null: true, is_transient: true },
      ],
    })
  })

  it('writes a lone surrogate as U+FFFD (valid UTF-8), where protobufjs wrote WTF-8 under 40 units', () => {
    const doc: SparkplugDocument = {
      type: 'NDATA',
      metrics: [{ name: 'a\ud800', dataType: 'String', value: 'b\udc00c' }],
    }
    const read = decodePayload(encodePayload(doc, 1, 'v'))
    expect(read).toMatchObject({ metrics: [{ name: 'a\ufffd', string_value: 'b\ufffdc' }] })
    // The old bytes are not even a message Veil accepts.
    expect(decodePayload(encodePayloadReflective(doc, 1, 'v'))).toBe('undecodable')
  })
})
