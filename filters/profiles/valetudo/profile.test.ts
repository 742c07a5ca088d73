import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { deflateRawSync, deflateSync, inflateSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { pngValetudoZtxt, PNG_MAX_CHUNKS } from './png.ts'
import { FIXTURES, shippedPipeline, type ProfilePipeline } from '../testing.ts'
import { PNG_SIGNATURE, pngChunk } from '../../../test/helpers/png.ts'

const ROBOT = 'SillyShinyVacuum'
const MAP_TOPIC = `valetudo/${ROBOT}/MapData/map-data`
const HASS_TOPIC = `valetudo/${ROBOT}/MapData/map-data-hass`
const T0 = Date.UTC(2026, 2, 1, 12)

const chunk = pngChunk
const SIGNATURE = PNG_SIGNATURE
/** A 1×1 grey PNG, as Valetudo's wrapper image: IHDR, IDAT (zlib of one filtered scanline), then zTXt, IEND. */
const IHDR = chunk('IHDR', Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]))
const IDAT = chunk('IDAT', deflateSync(Buffer.from([0, 0x80])))
const IEND = chunk('IEND', Buffer.alloc(0))
const ztxt = (deflated: Buffer, keyword = 'ValetudoMap', method = 0) =>
  chunk('zTXt', Buffer.concat([Buffer.from(`${keyword}\0`, 'latin1'), Buffer.from([method]), deflated]))
const png = (...chunks: Buffer[]) => Buffer.concat([SIGNATURE, ...chunks])
const hassPng = (json: Buffer) => png(IHDR, IDAT, ztxt(deflateSync(json)), IEND)

const mapJson = (name: string) => readFileSync(join(FIXTURES, 'valetudo', name))
const FIXTURE_NAMES = [
  'dreame_z10_1056_paths.json',
  'roborock_S5_FW2020_with_segments.json',
  '3irobotix_converted_3790.json',
  'dreame_x10plus_1104_with_obstacle.json',
]

/** Room names, obstacle image paths and other strings of a map; none may leave. */
function mapStrings(json: Buffer): string[] {
  const strings = new Set<string>()
  const walk = (v: unknown): void => {
    if (typeof v === 'string' && v.length >= 4 && !/^(ValetudoMap|MapLayer|floor|wall|segment|\w+MapEntity)$/.test(v))
      strings.add(v)
    else if (Array.isArray(v)) v.forEach(walk)
    else if (v !== null && typeof v === 'object') Object.values(v).forEach(walk)
  }
  walk(JSON.parse(json.toString('utf8')))
  return [...strings]
}

describe('valetudo map-data-hass (PNG zTXt) through the shipped robot_vacuum policy', () => {
  let p: ProfilePipeline
  afterEach(() => p.close())

  it('decodes and validates map-data and map-data-hass, and forwards no map to any domain (issue 13 part 8)', async () => {
    p = shippedPipeline()
    for (const name of FIXTURE_NAMES) {
      const json = mapJson(name)
      // Reaching the filter stage means decoded and valid; no domain has a policy for a map.
      expect((await p.send(T0, MAP_TOPIC, deflateSync(json))).dropped).toEqual({ stage: 'filter', reason: 'no_policy' })
      expect((await p.send(T0, HASS_TOPIC, hassPng(json))).dropped).toEqual({ stage: 'filter', reason: 'no_policy' })
      expect(JSON.stringify(p.audit.entries)).not.toContain(ROBOT)
      for (const text of mapStrings(json).slice(0, 50)) expect(JSON.stringify(p.audit.entries)).not.toContain(text)
    }
    expect(p.forwarded).toEqual([])
  })

  it('finds the chunk among other text chunks and ignores other keywords', () => {
    const json = mapJson('dreame_z10_1056_paths.json')
    const other = ztxt(deflateSync(Buffer.from('{"not":"it"}')), 'Comment')
    const tEXt = chunk('tEXt', Buffer.from('Software\0Valetudo', 'latin1'))
    const found = pngValetudoZtxt(png(IHDR, tEXt, other, IDAT, ztxt(deflateSync(json)), IEND))
    expect(found === undefined ? undefined : inflateSync(found).equals(json)).toBe(true)
  })

  it('accepts raw deflate on map-data (no zlib header)', async () => {
    p = shippedPipeline()
    const json = mapJson('dreame_z10_1056_paths.json')
    expect((await p.send(T0, MAP_TOPIC, deflateRawSync(json))).dropped).toEqual({
      stage: 'filter',
      reason: 'no_policy',
    })
  })
  const json = mapJson('dreame_z10_1056_paths.json')
  const good = hassPng(json)
  const zt = ztxt(deflateSync(json))
  const badCrc = Buffer.from(zt)
  badCrc.writeUInt32BE((badCrc.readUInt32BE(badCrc.length - 4) ^ 1) >>> 0, badCrc.length - 4)
  const hugeLength = Buffer.from(good)
  hugeLength.writeUInt32BE(0xfffffff0, SIGNATURE.length + IHDR.length)
  const bomb = deflateSync(Buffer.alloc(17 * 1024 * 1024, 0x20))
  const cases: [string, string, Buffer, string][] = [
    ['a truncated PNG', HASS_TOPIC, good.subarray(0, good.length - 40), 'undecodable'],
    [
      'a PNG cut after the zTXt chunk (no IEND)',
      HASS_TOPIC,
      good.subarray(0, good.length - IEND.length),
      'undecodable',
    ],
    ['a bad CRC on the ValetudoMap chunk', HASS_TOPIC, png(IHDR, IDAT, badCrc, IEND), 'undecodable'],
    ['a chunk length past the end', HASS_TOPIC, hugeLength, 'undecodable'],
    ['a PNG without the zTXt chunk', HASS_TOPIC, png(IHDR, IDAT, IEND), 'undecodable'],
    [
      'a zTXt with another keyword only',
      HASS_TOPIC,
      png(IHDR, IDAT, ztxt(deflateSync(json), 'ValetudoMapX'), IEND),
      'undecodable',
    ],
    ['two ValetudoMap chunks', HASS_TOPIC, png(IHDR, IDAT, zt, zt, IEND), 'undecodable'],
    [
      'an unknown compression method',
      HASS_TOPIC,
      png(IHDR, IDAT, ztxt(deflateSync(json), 'ValetudoMap', 1), IEND),
      'undecodable',
    ],
    ['no PNG signature', HASS_TOPIC, deflateSync(json), 'undecodable'],
    ['a PNG not starting with IHDR', HASS_TOPIC, png(IDAT, IHDR, zt, IEND), 'undecodable'],
    [
      'corrupt deflate inside zTXt',
      HASS_TOPIC,
      png(IHDR, ztxt(Buffer.from([0x78, 0x9c, 1, 2, 3])), IEND),
      'undecodable',
    ],
    ['not JSON inside zTXt', HASS_TOPIC, png(IHDR, ztxt(deflateSync('ValetudoMap?')), IEND), 'undecodable'],
    ['a zlib bomb inside zTXt', HASS_TOPIC, png(IHDR, IDAT, ztxt(bomb), IEND), 'decompressed_too_large'],
    [
      'a raw deflate bomb on map-data',
      MAP_TOPIC,
      deflateRawSync(Buffer.alloc(17 * 1024 * 1024, 0x20)),
      'decompressed_too_large',
    ],
    ['garbage on map-data', MAP_TOPIC, Buffer.from('not deflate at all'), 'undecodable'],
  ]
  for (const [what, topic, payload, reason] of cases) {
    it(`drops ${what} (decode/${reason}), audited without values`, async () => {
      p = shippedPipeline()
      const result = await p.send(T0, topic, payload)
      expect(result.dropped).toEqual({ stage: 'decode', reason })
      expect(p.forwarded).toEqual([])
      expect(JSON.stringify(p.audit.entries)).not.toContain(ROBOT)
    })
  }

  it('a map that fails the schema in a valid PNG is invalid, not forwarded', async () => {
    p = shippedPipeline()
    const result = await p.send(T0, HASS_TOPIC, hassPng(Buffer.from('[1,2,3]')))
    expect(result.dropped?.stage).toBe('validate')
    expect(p.forwarded).toEqual([])
  })
})

describe('pngValetudoZtxt', () => {
  it('stops after PNG_MAX_CHUNKS chunks', () => {
    const filler = chunk('tEXt', Buffer.from('a\0b', 'latin1'))
    const zt = ztxt(deflateSync('{}'))
    expect(pngValetudoZtxt(png(IHDR, ...Array<Buffer>(PNG_MAX_CHUNKS - 3).fill(filler), zt, IEND))).toBeDefined()
    expect(pngValetudoZtxt(png(IHDR, ...Array<Buffer>(PNG_MAX_CHUNKS).fill(filler), zt, IEND))).toBeUndefined()
  })

  it('survives every truncation of a valid PNG', () => {
    const small = png(IHDR, IDAT, ztxt(deflateSync('{"a":1}')), IEND)
    for (let n = 0; n < small.length; n++) expect(pngValetudoZtxt(small.subarray(0, n))).toBeUndefined()
    expect(pngValetudoZtxt(small)).toBeDefined()
  })
})

describe('valetudo statistics_area through the shipped robot_vacuum policy', () => {
  const AREA_TOPIC = (robot: string) => `valetudo/${robot}/CurrentStatisticsCapability/area`
  const MIN = 60_000

  /** A home: its map updates during the job, and the job's statistics (25 m² in 25 minutes, then docked). */
  async function home(robot: string, mapFixture: string): Promise<{ data: unknown; ts: number; domain: string }[]> {
    const p = shippedPipeline()
    const map = deflateSync(mapJson(mapFixture))
    for (let minute = 0; minute <= 90; minute++) {
      const cm2 = Math.min(minute, 25) * 10_000
      await p.send(T0 + minute * MIN, AREA_TOPIC(robot), String(cm2))
      if (minute % 5 === 0) await p.send(T0 + minute * MIN, `valetudo/${robot}/MapData/map-data`, map)
    }
    const out = p.forwarded.map((f) => ({ data: f.data, ts: f.ts, domain: f.domain }))
    p.close()
    return out
  }

  it('reports one job once, after it, in 5 m² steps, to svc only; nothing on map updates or while it grows', async () => {
    const out = await home('SillyShinyVacuum', 'dreame_z10_1056_paths.json')
    expect(out).toEqual([{ data: { cleaned_m2: 25 }, ts: T0 + (25 + 30) * MIN, domain: 'svc' }])
  })

  it('the floor area and the room count cannot be recovered: two homes of different size and room count, same job, same output', async () => {
    // 3irobotix 3790: 7 segments; Dreame L10s Ultra "giant": 18 segments and 810 m² (map_minimize's tests).
    const small = await home('robot-a', '3irobotix_converted_3790.json')
    const large = await home('robot-b', 'dreame_l10su_3031_giant.json')
    expect(small).toEqual(large)
    expect(small).toHaveLength(1)
  })
})
