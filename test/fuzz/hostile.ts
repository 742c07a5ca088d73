/**
 * Generators of hostile input for the fuzz tests: topics built from each profile's own patterns with random device
 * ids, and payloads from random bytes to valid device documents with canaries planted where no policy keeps a
 * value, huge numbers, long strings, deep nesting, prototype keys, invalid UTF-8, truncated and bombed zlib.
 * Every generator is driven by fast-check's seeded random source, so a failing run reproduces from its seed.
 */
import { deflateRawSync, deflateSync, inflateSync } from 'node:zlib'
import fc from 'fast-check'
import { mulberry32 } from '../../simulators/random.ts'
import { PNG_SIGNATURE, pngChunk } from '../helpers/png.ts'
import type { StreamDefinition } from '../../gateway/src/sdk/profile.ts'

/** A canary device id or value: `Cy` and 8 hex digits, 10 characters, never a substring of another. */
export const canaryArb = fc
  .integer({ min: 0, max: 0xffffffff })
  .map((n) => `Cy${n.toString(16).toUpperCase().padStart(8, '0')}`)

/** Characters that mean something to MQTT, JSON, paths or terminals, and a few outside the BMP. */
const SPECIAL = [
  '+',
  '#',
  '$',
  '/',
  '//',
  ' ',
  '\u0000',
  '\u202e',
  '\uFEFF',
  'é',
  '😀',
  '\\',
  '"',
  '.',
  '[]',
  '__proto__',
  '%00',
  '\n',
]

export interface HostileTopic {
  readonly topic: string
  /** The canaries planted in the topic's id levels. */
  readonly canaries: readonly string[]
}

/** A level that stands in for `{id}`: a canary with random unicode or MQTT-special text around it, or empty. */
const idLevelArb: fc.Arbitrary<{ level: string; canary?: string }> = fc.oneof(
  // A few recurring devices, so stateful operators (energy windows, downsampling) see a history and emit.
  {
    arbitrary: fc
      .integer({ min: 0, max: 3 })
      .map((n) => `Cy0000000${n}`)
      .map((canary) => ({ level: canary, canary })),
    weight: 6,
  },
  canaryArb.map((canary) => ({ level: canary, canary })),
  fc
    .tuple(
      fc.string({ unit: 'binary', maxLength: 4 }),
      canaryArb,
      fc.constantFrom(...SPECIAL),
      fc.string({ unit: 'grapheme', maxLength: 4 }),
    )
    .map(([pre, canary, special, post]) => ({ level: `${pre}${special}${canary}${post}`, canary })),
  fc.constant({ level: '' }),
  fc.constantFrom(...SPECIAL).map((level) => ({ level })),
  fc.string({ unit: 'binary', maxLength: 12 }).map((level) => ({ level })),
)

/** A topic from one of the stream's patterns, each `{id}` and `+` level replaced by a random one. */
export function topicArb(stream: StreamDefinition): fc.Arbitrary<HostileTopic> {
  return fc.constantFrom(...stream.topics).chain((pattern) => {
    const levels = pattern.split('/')
    const holes = levels.filter((l) => l === '{id}' || l === '+').length
    return fc.array(idLevelArb, { minLength: holes, maxLength: holes }).map((fills) => {
      let i = 0
      const canaries: string[] = []
      const topic = levels
        .map((l) => {
          if (l !== '{id}' && l !== '+') return l
          const fill = fills[i++] as { level: string; canary?: string }
          if (fill.canary !== undefined) canaries.push(fill.canary)
          return fill.level
        })
        .join('/')
      return { topic, canaries }
    })
  })
}

/** A random topic: mostly unknown, sometimes a profile root with junk after it, sometimes huge. */
export const randomTopicArb: fc.Arbitrary<HostileTopic> = fc
  .oneof(
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc
      .array(
        fc.constantFrom('tele', 'frigate', 'valetudo', 'owntracks', 'devices', 'veil', '$SYS', '', '+', '#', 'x'),
        { maxLength: 8 },
      )
      .map((l) => l.join('/')),
    fc.integer({ min: 1, max: 70_000 }).map((n) => 'a/'.repeat(n)),
    fc.integer({ min: 1000, max: 70_000 }).map((n) => 'x'.repeat(n)),
  )
  .map((topic) => ({ topic, canaries: [] }))

/** Where a policy keeps values: a planted value there may legitimately leave, so canaries go everywhere else. */
export interface KeptPaths {
  /** `$`: the whole value is kept (text and number streams, availability). */
  readonly whole: boolean
  readonly paths: readonly string[]
}

function touchesKept(path: string, kept: KeptPaths): boolean {
  if (kept.whole) return true
  const normal = path.replace(/\[\d+\]/g, '[]')
  return kept.paths.some(
    (a) =>
      normal === a ||
      normal.startsWith(`${a}.`) ||
      normal.startsWith(`${a}[]`) ||
      a.startsWith(`${normal}.`) ||
      a.startsWith(`${normal}[]`),
  )
}

/** Marks a string to be replaced by raw JSON text after serialising: numbers JSON.stringify cannot write. */
const RAW = '\u0000RAW:'
const RAW_PATTERN = /"\\u0000RAW:([^"]*)"/g

/** Hostile scalars: the edges of IEEE doubles, integers past 2^53, numbers as text, long and odd strings. */
const HOSTILE_RAW_NUMBERS = [
  '1e308',
  '-1e308',
  '1e400',
  '-0',
  '5e-324',
  '123456789012345678901234567890',
  '9007199254740993',
  '-9007199254740993',
  '0.1e-400',
  '1E+2',
]
function hostileScalar(random: () => number, canary: () => string, mayPlant: boolean): unknown {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T
  switch (Math.floor(random() * 9)) {
    case 0:
      return `${RAW}${pick(HOSTILE_RAW_NUMBERS)}`
    case 1:
      return pick([
        Number.MAX_VALUE,
        -Number.MAX_VALUE,
        Number.MIN_VALUE,
        -0,
        Number.MAX_SAFE_INTEGER,
        2 ** 64,
        -1,
        0,
        1e21,
      ])
    case 2:
      return pick([
        '1e308',
        '-0',
        'NaN',
        'Infinity',
        '12345678901234567890123',
        '0x10',
        '',
        ' ',
        '\u0000',
        '\ud800',
        '\udfff\ud800',
      ])
    case 3:
      return mayPlant
        ? `${canary()}${'A'.repeat(Math.floor(random() * 5000))}`
        : 'A'.repeat(Math.floor(random() * 5000))
    case 4:
      return pick([true, false, null, [], {}])
    case 5: {
      // Nested within the default depth limit and past it.
      const depth = pick([10, 60, 70])
      return JSON.parse(`${'['.repeat(depth)}1${']'.repeat(depth)}`) as unknown
    }
    case 6:
      return mayPlant ? canary() : pick(['ON', 'OFF', 'Online', 'person', 'new', 'end'])
    case 7:
      return mayPlant ? { name: canary(), ssid: canary(), mac: 'ca:11:a7:00:00:01' } : { a: 1 }
    default:
      return Math.floor(random() * 2 ** 31) * (random() < 0.5 ? -1 : 1)
  }
}

/** Numbers at the edges of IEEE doubles and of safe integers: still numbers, so they pass a schema's `type`. */
const EDGE_NUMBERS = [
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  1e308,
  1.5e308,
  -1e308,
  Number.MIN_VALUE,
  -0,
  2 ** 53 + 2,
  -(2 ** 53),
  1e21,
  0,
  -1,
  // biome-ignore lint/correctness/noPrecisionLoss: more digits than a double holds, on purpose
  123456789.123456789,
]

/**
 * Mutates a JSON value at random: replaces leaves with hostile scalars, adds fields (prototype keys among them),
 * and plants canaries only at paths no policy keeps. Returns the new value; `canaries` collects what was planted.
 */
export function mutate(
  value: unknown,
  random: () => number,
  kept: KeptPaths,
  canaries: string[],
  newCanary: () => string,
  rate = 0.3,
): unknown {
  const canary = (): string => {
    const c = newCanary()
    canaries.push(c)
    return c
  }
  const walk = (v: unknown, path: string, depth: number): unknown => {
    const mayPlant = path !== '' && !touchesKept(path, kept)
    if (random() < rate / (depth + 1)) return hostileScalar(random, canary, mayPlant)
    if (Array.isArray(v)) return v.map((item, i) => walk(item, `${path}[${i}]`, depth + 1))
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {}
      for (const [k, item] of Object.entries(v))
        Object.defineProperty(out, k, {
          value: walk(item, path === '' ? k : `${path}.${k}`, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        })
      if (random() < rate) {
        const key =
          random() < 0.3
            ? (['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'][
                Math.floor(random() * 5)
              ] as string)
            : `k${canary()}`
        const childPath = path === '' ? key : `${path}.${key}`
        const planted = !touchesKept(childPath, kept)
        // defineProperty: `out.__proto__ = ...` would set the prototype instead of a field named __proto__.
        Object.defineProperty(out, key, {
          value: planted ? { polluted: canary(), [key]: canary() } : { polluted: 1 },
          enumerable: true,
          writable: true,
          configurable: true,
        })
      }
      return out
    }
    if (mayPlant && typeof v === 'string' && random() < rate) return canary()
    // Type-preserving: an edge number passes validation and reaches the operators (energy windows, buckets).
    if (typeof v === 'number' && random() < rate * 2) return EDGE_NUMBERS[Math.floor(random() * EDGE_NUMBERS.length)]
    return v
  }
  return walk(value, '', 0)
}

/** JSON text of a mutated value, with the raw-number markers written as raw numbers. */
export function serialise(value: unknown): string {
  return (JSON.stringify(value) ?? 'null').replace(RAW_PATTERN, '$1')
}

/** Invalid UTF-8 sequences: a lone continuation byte, an overlong slash, a UTF-16 surrogate, a truncated 4-byte form, 0xFF. */
const BAD_UTF8 = [
  [0x80],
  [0xc0, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xf0, 0x9f, 0x98],
  [0xff],
  [0xc3, 0x28],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
]

export function corruptUtf8(bytes: Buffer, random: () => number): Buffer {
  const at = Math.floor(random() * (bytes.length + 1))
  const bad = BAD_UTF8[Math.floor(random() * BAD_UTF8.length)] as number[]
  return Buffer.concat([bytes.subarray(0, at), Buffer.from(bad), bytes.subarray(at)])
}

/** A PNG with a CRC-correct `ValetudoMap` zTXt chunk holding `deflated` (as Valetudo's map-data-hass). */
export function pngWithZtxt(deflated: Buffer): Buffer {
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(1, 0)
  ihdr.writeUInt32BE(1, 4)
  ihdr[8] = 8
  ihdr[9] = 6
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk('IHDR', ihdr),
    pngChunk('zTXt', Buffer.concat([Buffer.from('ValetudoMap\0\0', 'latin1'), deflated])),
    pngChunk('IEND', Buffer.alloc(0)),
  ])
}

/** One hostile message and what must never leave the gateway because of it. */
export interface HostileCase {
  readonly topic: string
  readonly payload: Buffer
  /** Planted identifiers (topic and payload). */
  readonly canaries: readonly string[]
  /** What kind of payload, for failure messages. */
  readonly kind: string
}

/** Valid documents of a stream (decoded), to mutate: hostile input that gets past decode and validate. */
export interface StreamSamples {
  /** The generic decoding, or the codec's name (`png-ztxt`). */
  readonly decoding: string
  readonly docs: readonly unknown[]
}

/** zlib bombs: small deflated input that inflates far past `limit` (zeros, and a JSON prefix then spaces). */
export function zlibBombs(limit: number): Buffer[] {
  return [
    deflateSync(Buffer.alloc(limit + 1, 0x20), { level: 1 }),
    deflateSync(Buffer.concat([Buffer.from('{"__class":"ValetudoMap","layers":['), Buffer.alloc(limit * 2, 0x20)]), {
      level: 1,
    }),
    deflateRawSync(Buffer.alloc(limit * 2, 0x30), { level: 1 }),
  ]
}

/**
 * Payloads for a stream: bytes, random JSON, mutated valid documents, deep nesting, long strings, invalid UTF-8,
 * zlib (valid, truncated, bombs, raw deflate) for the compressed decodings, payloads over the limit.
 */
export function payloadArb(
  samples: StreamSamples,
  kept: KeptPaths,
  limits: { payloadBytes: number },
  bombs: readonly Buffer[],
): fc.Arbitrary<{ payload: Buffer; canaries: string[]; kind: string }> {
  const compressed = samples.decoding === 'zlib-json' || samples.decoding === 'png-ztxt'
  const wrap = (text: Buffer, random: () => number): Buffer => {
    if (!compressed) return text
    const deflated = random() < 0.8 ? deflateSync(text) : deflateRawSync(text)
    const maybeTruncated = random() < 0.1 ? deflated.subarray(0, Math.floor(deflated.length * random())) : deflated
    return samples.decoding === 'png-ztxt' ? pngWithZtxt(maybeTruncated) : maybeTruncated
  }
  const seeded = <T>(f: (random: () => number, canary: () => string) => T): fc.Arbitrary<T> =>
    fc.tuple(fc.integer(), canaryArb).map(([seed, base]) => {
      let n = 0
      const random = mulberry32(seed)
      return f(random, () => `${base.slice(0, 6)}${(n++).toString(16).toUpperCase().padStart(4, '0')}`)
    })

  const arbs: fc.Arbitrary<{ payload: Buffer; canaries: string[]; kind: string }>[] = [
    fc.uint8Array({ maxLength: 300 }).map((b) => ({ payload: Buffer.from(b), canaries: [], kind: 'random bytes' })),
    fc.tuple(fc.jsonValue({ maxDepth: 4 }), fc.integer(), canaryArb).map(([value, seed, base]) => {
      const canaries: string[] = []
      let n = 0
      const random = mulberry32(seed)
      const doc = mutate(
        value,
        random,
        kept,
        canaries,
        () => `${base.slice(0, 6)}${(n++).toString(16).toUpperCase().padStart(4, '0')}`,
      )
      return { payload: wrap(Buffer.from(serialise(doc)), random), canaries, kind: 'random JSON' }
    }),
    seeded((random) => {
      const depth = [63, 64, 65, 1000, 100_000][Math.floor(random() * 5)] as number
      const open = random() < 0.5 ? '[' : '{"a":'
      const close = open === '[' ? ']' : '}'
      return {
        payload: wrap(Buffer.from(`${open.repeat(depth)}1${close.repeat(depth)}`), random),
        canaries: [],
        kind: `nesting ${depth}`,
      }
    }),
    seeded((random, canary) => {
      const c = canary()
      const length = Math.floor(random() * limits.payloadBytes * 1.2)
      return {
        payload: wrap(Buffer.from(JSON.stringify({ [`k${c}`]: `${c}${'x'.repeat(length)}` })), random),
        canaries: [c],
        kind: `long string ${length}`,
      }
    }),
    seeded((random) => ({
      payload: Buffer.alloc(limits.payloadBytes + 1 + Math.floor(random() * 4096), 0x20),
      canaries: [],
      kind: 'over the payload limit',
    })),
    seeded((random) => {
      const text = [
        '1e308',
        '-0',
        '-1e308',
        '1e400',
        '9'.repeat(400),
        'NaN',
        'Infinity',
        ' 42 ',
        '0x10',
        '4.',
        '.5',
        'Online',
        'ON',
        '',
        '\u0000',
        'null',
      ][Math.floor(random() * 16)] as string
      return {
        payload: wrap(Buffer.from(text), random),
        canaries: [],
        kind: `text ${JSON.stringify(text.slice(0, 12))}`,
      }
    }),
  ]
  if (samples.docs.length > 0) {
    const sampled = seeded((random, canary) => {
      const canaries: string[] = []
      const doc = samples.docs[Math.floor(random() * samples.docs.length)]
      // Mostly light mutation, so that much still validates and reaches the operators.
      const rate = [0, 0, 0.05, 0.05, 0.05, 0.1, 0.3][Math.floor(random() * 7)] as number
      const mutated = mutate(doc, random, kept, canaries, canary, rate)
      let bytes: Buffer = Buffer.from(typeof mutated === 'string' ? mutated : serialise(mutated))
      if (random() < 0.1) bytes = corruptUtf8(bytes, random)
      return { payload: wrap(bytes, random), canaries, kind: 'mutated sample' }
    })
    // Mutated samples get past decode and validate: the operators' input. Weighted up.
    for (let i = 0; i < 6; i++) arbs.push(sampled)
  }
  if (compressed && bombs.length > 0) {
    arbs.push(
      fc.constantFrom(...bombs).map((bomb) => ({
        payload: samples.decoding === 'png-ztxt' ? pngWithZtxt(bomb) : bomb,
        canaries: [],
        kind: 'zlib bomb',
      })),
      fc.uint8Array({ maxLength: 200 }).map((b) => ({
        payload:
          samples.decoding === 'png-ztxt'
            ? pngWithZtxt(Buffer.from([0x78, 0x9c, ...b]))
            : Buffer.from([0x78, 0x9c, ...b]),
        canaries: [],
        kind: 'zlib garbage',
      })),
    )
  }
  return fc.oneof(...arbs)
}

/** Decodes a sample the way the stream does, for mutation; undefined for binary and PNG streams. */
export function decodeSample(decoding: string, payload: Buffer): unknown {
  switch (decoding) {
    case 'json':
      return JSON.parse(payload.toString('utf8')) as unknown
    case 'zlib-json':
      return JSON.parse(inflateSync(payload).toString('utf8')) as unknown
    case 'text':
    case 'number':
      return payload.toString('utf8').trim()
    default:
      return undefined
  }
}
