import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { deflateSync } from 'node:zlib'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SUPPRESS } from '#veil/sdk'
import { compileEnv, compileOperator, opContext, seededRandom } from '../testing.ts'
import imageGate, { isMediaString } from './index.ts'
import { hasImageMagic } from './magic.ts'
import { pngChunk } from '../../../test/helpers/png.ts'

const FIXTURES = join(import.meta.dirname, '../../../test/fixtures')
const env = compileEnv({ category: 'camera' })
const ctx = opContext({ category: 'camera' })
const compile = (config: unknown = {}) => {
  const run = compileOperator(imageGate, config, env)
  return (doc: unknown) => run(doc, ctx)
}
const readJson = (path: string): unknown => JSON.parse(readFileSync(join(FIXTURES, path), 'utf8'))

const chunk = pngChunk

/** A valid PNG of random grey pixels (OwnTracks `card.face` is a PNG avatar). */
function png(random: () => number, side = 8): Buffer {
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(side, 0)
  ihdr.writeUInt32BE(side, 4)
  ihdr[8] = 8
  ihdr[9] = 0
  const raw = Buffer.alloc(side * (side + 1))
  for (let i = 0; i < raw.length; i++) raw[i] = i % (side + 1) === 0 ? 0 : Math.floor(random() * 256)
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ])
}

function tail(random: () => number, n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)))
}

/** Headers as the formats write them, followed by random content. */
const MEDIA: Readonly<Record<string, (random: () => number) => Buffer>> = {
  jpeg: (r) => Buffer.concat([Buffer.from('ffd8ffe000104a46494600010100000100010000', 'hex'), tail(r, 200)]),
  jpeg_exif: (r) =>
    Buffer.concat([Buffer.from('ffd8ffe1', 'hex'), Buffer.from('\0\x40Exif\0\0', 'latin1'), tail(r, 200)]),
  png,
  gif: (r) => Buffer.concat([Buffer.from('GIF89a', 'latin1'), Buffer.from([1, 0, 1, 0, 0x80, 0, 0]), tail(r, 60)]),
  webp: (r) =>
    Buffer.concat([
      Buffer.from('RIFF', 'latin1'),
      Buffer.from([0x40, 0, 0, 0]),
      Buffer.from('WEBPVP8L', 'latin1'),
      tail(r, 120),
    ]),
  mp4: (r) =>
    Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypmp42\0\0\0\0mp42isom', 'latin1'), tail(r, 200)]),
  mp4_iso5: (r) =>
    Buffer.concat([
      Buffer.from([0, 0, 0, 0x20]),
      Buffer.from('ftypiso5\0\0\x02\0iso5iso6mp41', 'latin1'),
      tail(r, 200),
    ]),
  mov: (r) =>
    Buffer.concat([Buffer.from([0, 0, 0, 0x14]), Buffer.from('ftypqt  \0\0\x02\0qt  ', 'latin1'), tail(r, 200)]),
  heic: (r) =>
    Buffer.concat([Buffer.from([0, 0, 0, 0x1c]), Buffer.from('ftypheic\0\0\0\0mif1heic', 'latin1'), tail(r, 200)]),
  webm: (r) => Buffer.concat([Buffer.from([0x1a, 0x45, 0xdf, 0xa3]), tail(r, 200)]),
  tiff: (r) => Buffer.concat([Buffer.from([0x49, 0x49, 0x2a, 0]), tail(r, 200)]),
  avi: (r) => Buffer.concat([Buffer.from('RIFF\x40\0\0\0AVI LIST', 'latin1'), tail(r, 200)]),
}
const KINDS = Object.keys(MEDIA)
const media = (kind: string, seed = 1): Buffer => (MEDIA[kind] as (r: () => number) => Buffer)(seededRandom(seed))

/** Every way a device puts the bytes into a JSON string. */
const ENCODINGS: Readonly<Record<string, (b: Buffer) => string>> = {
  base64: (b) => b.toString('base64'),
  base64url: (b) => b.toString('base64url'),
  mime_lines: (b) => `\n${b.toString('base64').replace(/(.{76})/g, '$1\r\n')}`,
  hex: (b) => b.toString('hex'),
  data_uri: (b) => `data:image/jpeg;base64,${b.toString('base64')}`,
  octet_data_uri: (b) => `data:application/octet-stream;base64,${b.toString('base64')}`,
  latin1: (b) => b.toString('latin1'),
  embedded: (b) => `<img alt="snapshot" src="x" data-src=${b.toString('base64')}>`,
}

describe('hasImageMagic', () => {
  it.each(KINDS)('recognises %s', (kind) => {
    expect(hasImageMagic(media(kind))).toBe(true)
  })

  it('does not take other bytes for media', () => {
    for (const bytes of [
      Buffer.from('789c0300', 'hex'),
      Buffer.from('{"a":1}'),
      Buffer.from('rr'),
      Buffer.alloc(0),
      Buffer.from('RIFF\0\0\0\0WAVE'),
    ]) {
      expect(hasImageMagic(bytes)).toBe(false)
    }
  })
})

describe('image_gate on binary payloads', () => {
  it.each(KINDS)('withholds a raw %s payload (both actions)', (kind) => {
    for (const action of ['drop_message', 'drop_field']) expect(compile({ action })(media(kind))).toBe(SUPPRESS)
  })

  it('withholds binary of unknown type too: bytes never pass', () => {
    const run = compile()
    expect(run(Buffer.from('789c4b4c4a0600024d0127', 'hex'))).toBe(SUPPRESS)
    expect(run(Buffer.alloc(0))).toBe(SUPPRESS)
    expect(run(new Uint8Array([1, 2, 3]))).toBe(SUPPRESS)
    expect(compile({ action: 'drop_field' })({ a: 1, bytes: new Uint8Array([1, 2, 3]) })).toEqual({ a: 1 })
  })
})

describe('image_gate on JSON', () => {
  it.each(KINDS.flatMap((k) => Object.keys(ENCODINGS).map((e) => [k, e] as const)))(
    '%s as %s: dropped from nested JSON',
    (kind, encoding) => {
      const image = (ENCODINGS[encoding] as (b: Buffer) => string)(media(kind))
      const doc = () => ({
        type: 'update',
        after: { label: 'person', snapshot: { score: 0.8, image }, list: ['front', image, 3] },
      })
      expect(compile({ action: 'drop_field' })(doc())).toEqual({
        type: 'update',
        after: { label: 'person', snapshot: { score: 0.8 }, list: ['front', 3] },
      })
      expect(compile()(doc())).toBe(SUPPRESS)
      expect(compile({ action: 'drop_field' })(image)).toBe(SUPPRESS)
    },
  )

  it('catches the short base64 prefixes of the brief', () => {
    for (const prefix of [
      '/9j/4AAQSkZJRg',
      'iVBORw0KGgoAAAANSUhEUg',
      'UklGRiQAAABXRUJQ',
      'R0lGODlhAQABAIAAAP',
      'AAAAGGZ0eXBtcDQy',
      'AAAAIGZ0eXBpc29t',
      'AAAAHGZ0eXBoZWlj',
      'data:video/mp4;base64,AAAA',
    ]) {
      expect(isMediaString(prefix), prefix).toBe(true)
    }
  })

  it('catches byte arrays (Buffer.toJSON) that open like media', () => {
    const doc = { snapshot: media('jpeg').toJSON(), box: [424, 500, 536, 712] }
    expect(compile({ action: 'drop_field' })(doc)).toEqual({ snapshot: { type: 'Buffer' }, box: [424, 500, 536, 712] })
  })

  it('OwnTracks card: the base64 PNG face goes, tid stays (real card fixture)', () => {
    const card = readJson('gps/owntracks_android_card_message_with_tid.json') as Record<string, unknown>
    const face = png(seededRandom(7), 32).toString('base64')
    expect(face.startsWith('iVBORw0KGgo')).toBe(true)
    const out = compile({ action: 'drop_field' })({ ...card, face })
    expect(out).toEqual(card)
    expect(compile()({ ...card, face })).toBe(SUPPRESS)
    expect(compile()(structuredClone(card))).toEqual(card)
  })

  it('OwnTracks location: `image` (base64 JPEG) goes, the fix stays', () => {
    const location = readJson('gps/owntracks_android_valid_location_message.json') as Record<string, unknown>
    const out = compile({ action: 'drop_field' })({
      ...location,
      image: media('jpeg').toString('base64'),
      imagename: 'poi.jpg',
    })
    expect(out).toEqual({ ...location, imagename: 'poi.jpg' })
  })

  it('Double Take: `base64` null passes; a base64 face crop goes (real fixtures)', () => {
    for (const file of ['camera/doubletake_matches_david.json', 'camera/doubletake_cameras_back-door.json']) {
      const doc = readJson(file) as Record<string, unknown>
      expect(compile()(structuredClone(doc)), file).toEqual(doc)
      const withFace = JSON.parse(
        JSON.stringify(doc).replace('"base64":null', `"base64":"${media('jpeg', 3).toString('base64')}"`),
      ) as unknown
      expect(compile()(structuredClone(withFace))).toBe(SUPPRESS)
      expect(compile({ action: 'drop_field' })(withFace)).toEqual(
        JSON.parse(JSON.stringify(doc).replace('"base64":null,', '').replace(',"base64":null', '')),
      )
    }
  })

  it('passes every real JSON fixture unchanged (no false positive on device data)', () => {
    const run = compile()
    let files = 0
    for (const dir of readdirSync(FIXTURES, { withFileTypes: true }).filter((d) => d.isDirectory())) {
      for (const file of readdirSync(join(FIXTURES, dir.name)).filter((f) => f.endsWith('.json'))) {
        const doc = readJson(`${dir.name}/${file}`)
        expect(run(structuredClone(doc)), file).toEqual(doc)
        files++
      }
    }
    expect(files).toBeGreaterThan(50)
  })

  it('does not block ordinary strings: labels, ISO timestamps, hex ids, uuids, sha-256, paths', () => {
    const run = compile()
    const benign = fc.oneof(
      fc.constantFrom(
        'person',
        'car',
        'front_door',
        'driveway',
        'ON',
        'OFF',
        '/data/record/1.jpg',
        'snapshot.jpg',
        'image/jpeg',
        'AAAA',
        'RIFF',
        'ftyp',
      ),
      fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }).map((d) => d.toISOString()),
      fc.uuid(),
      fc.stringMatching(/^[0-9a-f]{8,64}$/),
      fc.stringMatching(/^[0-9A-F]{12}$/),
      fc.string({ maxLength: 80 }),
      fc.lorem({ maxCount: 12 }),
    )
    fc.assert(
      fc.property(benign, (s) => {
        expect(run({ value: s, list: [s] })).toEqual({ value: s, list: [s] })
      }),
      { seed: 42, numRuns: 2000 },
    )
  })

  it('removes an image wherever it is placed in arbitrary JSON, and only it (property)', () => {
    const run = compile({ action: 'drop_field' })
    const imageArb = fc.tuple(
      fc.constantFrom(...KINDS),
      fc.constantFrom(...Object.keys(ENCODINGS)),
      fc.integer({ min: 1, max: 1000 }),
    )
    type Step = { key: string } | { index: number }
    const key = fc.string({ minLength: 1, maxLength: 6 }).map((k) => ({ key: `k_${k}` }))
    const step: fc.Arbitrary<Step> = fc.oneof(
      key,
      fc.nat(3).map((index) => ({ index })),
    )
    const NONE = Symbol('none')
    // The container chain along `steps`, ending in `leaf`; with NONE the chain is built but the leaf left out.
    const build = (steps: readonly Step[], leaf: unknown): unknown => {
      if (steps.length === 0) return leaf
      const [first, ...rest] = steps as [Step, ...Step[]]
      const child = build(rest, leaf)
      if ('key' in first) return child === NONE ? {} : { [first.key]: child }
      const pads = Array.from({ length: first.index }, (_, i) => `pad-${i}`)
      return child === NONE ? pads : [...pads, child]
    }
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 3 })),
        key,
        fc.array(step, { maxLength: 5 }),
        imageArb,
        (base, root, path, [kind, enc, seed]) => {
          const image = (ENCODINGS[enc] as (b: Buffer) => string)(media(kind, seed))
          const withImage: Record<string, unknown> = { ...structuredClone(base), [root.key]: build(path, image) }
          const expected: Record<string, unknown> = { ...structuredClone(base), [root.key]: build(path, NONE) }
          if (path.length === 0) delete expected[root.key]
          const out = run(withImage)
          expect(out).toEqual(expected)
          expect(JSON.stringify(out)).not.toContain(image.trim().slice(0, 40))
        },
      ),
      { seed: 42, numRuns: 400 },
    )
  })

  it('refuses what is not JSON data and absurd nesting', () => {
    let deep: unknown = 'x'
    for (let i = 0; i < 100; i++) deep = [deep]
    expect(() => compile()(deep)).toThrow(/nested/)
    expect(() => compile({ action: 'drop_field' })({ a: () => 1 })).toThrow(/not JSON/)
    expect(() => compile()({ a: [1n] })).toThrow(/not JSON/)
    expect(() => compile({ action: 'other' })).toThrow(/action/)
  })
})
