import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { deflateSync } from 'node:zlib'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { builtinOperators } from '../../../filters/operators/index.ts'
import { TEST_POLICIES, tempDir } from '../../../test/helpers/gateway.ts'
import { FileAuditLog, MemoryAuditLog } from '../audit/audit.ts'
import { defineOperator, SUPPRESS, type OperatorDefinition } from '../sdk/operator.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { jsonTooDeep, utf8Text } from './decode.ts'
import { DEFAULT_LIMITS, type Limits } from './pipeline.ts'
import { writeFileSync, mkdirSync } from 'node:fs'
import type { Domain } from '../sdk/model.ts'
import type { OutputEncoding } from './encode.ts'
import { builtinPipeline } from '../../../test/helpers/pipeline.ts'

const SENSOR = 'tele/tasmota_0329F7/SENSOR'
const sensor = (extra: Record<string, unknown> = {}) =>
  Buffer.from(
    JSON.stringify({
      Time: '2026-01-01T00:00:00',
      ENERGY: { Total: 12.5, Yesterday: 0.31, Today: 0.2, Power: 42, ...extra },
    }),
  )

function build(
  options: {
    policies?: string
    operators?: readonly OperatorDefinition[]
    limits?: Partial<Limits>
    encodings?: ReadonlyMap<Domain, OutputEncoding>
  } = {},
) {
  const audit = new MemoryAuditLog()
  const { pipeline, metrics, policies } = builtinPipeline({
    policies: options.policies ?? TEST_POLICIES,
    operators: options.operators ?? builtinOperators,
    master: Buffer.alloc(32, 9),
    audit,
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    encodings: options.encodings,
  })
  return { pipeline, metrics, audit, policies }
}

async function dropCount(metrics: Metrics, labels: Record<string, string>): Promise<number> {
  const metric = await metrics.dropped.get()
  return metric.values
    .filter((v) => Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l))
    .reduce((n, v) => n + v.value, 0)
}

/** A policy directory with one custom smart_plug policy, for operator behaviour. */
function policyDir(yaml: string): { path: string; remove(): void } {
  const dir = tempDir()
  writeFileSync(join(dir.path, 'smart_plug.yaml'), yaml)
  return dir
}

describe('pipeline', () => {
  it('forwards only the allowlisted fields, per domain, under pseudonymous topics', async () => {
    const { pipeline } = build()
    const result = await pipeline.process(SENSOR, sensor())
    expect(result.dropped).toBeUndefined()
    expect(result.outputs.map((o) => o.domain)).toEqual(['svc', 'ana'])
    for (const out of result.outputs) {
      expect(out.topic).toMatch(new RegExp(`^veil/${out.domain}/smart_plug/[a-z2-7]{26}/sensor$`))
      expect(JSON.parse(out.payload.toString())).toEqual({
        policy: pipeline.policyVersion,
        data: { ENERGY: { Yesterday: 0.31 } },
      })
      expect(out.topic.toLowerCase()).not.toContain('0329f7')
    }
  })

  const drops: [string, string, Buffer, string, string][] = [
    ['an unknown topic', 'some/unknown/topic', Buffer.from('{}'), 'classify', 'unknown_topic'],
    ['a payload over the size limit', SENSOR, Buffer.alloc(2048, 0x20), 'classify', 'payload_too_large'],
    ['undecodable JSON', SENSOR, Buffer.from('{"ENERGY":'), 'decode', 'undecodable'],
    ['invalid UTF-8', SENSOR, Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 'decode', 'undecodable'],
    [
      'a non-numeric number stream',
      'valetudo/CanaryRobo/BatteryStateAttribute/level',
      Buffer.from('lots'),
      'decode',
      'undecodable',
    ],
    [
      'corrupt zlib map data',
      'valetudo/CanaryRobo/MapData/map-data',
      Buffer.from([0x78, 0x9c, 1, 2, 3]),
      'decode',
      'undecodable',
    ],
    [
      'a zlib bomb',
      'valetudo/CanaryRobo/MapData/map-data',
      deflateSync(Buffer.alloc(600_000, 0x20)),
      'decode',
      'decompressed_too_large',
    ],
    ['a payload that fails its schema', SENSOR, Buffer.from('{"ENERGY":{"Total":"lots"}}'), 'validate', 'invalid'],
    [
      'an event without its device id',
      'frigate/events',
      Buffer.from('{"type":"new","after":{"label":"person","camera":""}}'),
      'validate',
      'invalid',
    ],
    [
      'a stream no domain has a policy for',
      'frigate/CanaryCam/person/snapshot',
      Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2]),
      'filter',
      'no_policy',
    ],
    [
      'a topic over the length limit',
      `tele/tasmota_0329F7${'x'.repeat(1100)}/SENSOR`,
      sensor(),
      'classify',
      'topic_too_long',
    ],
    [
      'a topic whose UTF-8 bytes exceed the length limit',
      `tele/tasmota_0329F7${'é'.repeat(600)}/SENSOR`,
      sensor(),
      'classify',
      'topic_too_long',
    ],
    [
      'a topic with more levels than the limit',
      `tele/tasmota_0329F7/${'a/'.repeat(20)}SENSOR`,
      sensor(),
      'classify',
      'too_many_topic_levels',
    ],
    [
      'JSON nested deeper than the limit',
      SENSOR,
      Buffer.from(`{"ENERGY":{"Total":${'['.repeat(70)}${']'.repeat(70)}}}`),
      'decode',
      'nesting_too_deep',
    ],
    [
      'zlib map data nested 100 000 deep',
      'valetudo/CanaryRobo/MapData/map-data',
      deflateSync(`{"layers":${'['.repeat(100_000)}${']'.repeat(100_000)}}`),
      'decode',
      'nesting_too_deep',
    ],
  ]

  for (const [what, topic, payload, stage, reason] of drops) {
    it(`drops ${what}: counted, audited without values, nothing forwarded`, async () => {
      const { pipeline, metrics, audit } = build({ limits: { payloadBytes: 1024, decompressedBytes: 512 * 1024 } })
      const result = await pipeline.process(topic, payload, 1_700_000_000_000)
      expect(result.outputs).toEqual([])
      expect(result.dropped).toEqual({ stage, reason })
      expect(await dropCount(metrics, { stage, reason })).toBe(1)
      expect(audit.entries).toHaveLength(1)
      const entry = audit.entries[0]
      expect(entry).toMatchObject({ stage, reason, policy: pipeline.policyVersion })
      expect(Object.keys(entry ?? {}).sort()).toEqual(['category', 'domain', 'policy', 'reason', 'stage', 'time'])
      expect(JSON.stringify(entry)).not.toMatch(/0329F7|CanaryRobo|CanaryCam/i)
    })
  }

  it('applies each configured limit instead of the default', async () => {
    const map = 'valetudo/CanaryRobo/MapData/map-data'
    const cases: [Partial<Limits>, string, Buffer, string][] = [
      [{ topicBytes: 20 }, SENSOR, sensor(), 'topic_too_long'],
      [{ topicLevels: 3 }, map, deflateSync('{}'), 'too_many_topic_levels'],
      [{ jsonDepth: 1 }, SENSOR, sensor(), 'nesting_too_deep'],
      [{ payloadBytes: 10 }, SENSOR, sensor(), 'payload_too_large'],
      [{ decompressedBytes: 100 }, map, deflateSync(Buffer.alloc(200, 0x20)), 'decompressed_too_large'],
    ]
    for (const [limits, topic, payload, reason] of cases) {
      const { pipeline } = build({ limits })
      expect((await pipeline.process(topic, payload)).dropped?.reason).toBe(reason)
      // The same message passes the stage under the default limits.
      expect((await build().pipeline.process(topic, payload)).dropped?.reason).not.toBe(reason)
    }
  })

  it('reads UTF-8 exactly as a fatal TextDecoder does: the same text, and an error for the same bytes', () => {
    const strict = new TextDecoder('utf-8', { fatal: true })
    const read = (decode: (b: Buffer) => string, bytes: Buffer): string => {
      try {
        return `ok:${decode(bytes)}`
      } catch {
        return 'error'
      }
    }
    const same = (bytes: Buffer): boolean => read(utf8Text, bytes) === read((b) => strict.decode(b), bytes)
    // Bytes that are mostly text, with invalid sequences, overlong forms, surrogates, a BOM and U+FFFD itself mixed in.
    const piece = fc.oneof(
      fc.string({ unit: 'grapheme' }).map((t) => Buffer.from(t)),
      fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)),
      fc.constantFrom(
        ...[
          [0xef, 0xbb, 0xbf],
          [0xef, 0xbf, 0xbd],
          [0xc0, 0xaf],
          [0xed, 0xa0, 0x80],
          [0xf4, 0x90, 0x80, 0x80],
          [0xe2, 0x82],
        ].map((b) => Buffer.from(b)),
      ),
    )
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 6 }), (pieces) => same(Buffer.concat(pieces))),
      { numRuns: 2000 },
    )
    for (const bytes of [
      [0xef, 0xbb, 0xbf, 0x7b, 0x7d],
      [0xef, 0xbf, 0xbd],
      [0x7b, 0xff, 0x7d],
      [0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf],
    ])
      expect(same(Buffer.from(bytes))).toBe(true)
    expect(() => utf8Text(Buffer.from([0x22, 0xc3, 0x22]))).toThrow()
  })

  it('guards the depth of JSON in an OsmAnd body as of every JSON payload', async () => {
    const { pipeline } = build()
    const deep = `{"id":"t1","lat":1,"lon":2,"x":${'['.repeat(100)}${']'.repeat(100)}}`
    const result = await pipeline.process('traccar/osmand', Buffer.from(deep))
    expect(result.dropped).toEqual({ stage: 'decode', reason: 'nesting_too_deep' })
  })

  it('counts nesting outside strings only: brackets in a string are text', () => {
    expect(jsonTooDeep(`{"a":"${'['.repeat(200)}"}`, 64)).toBe(false)
    // An escaped backslash ends before the quote, which closes the string; an escaped quote does not close it.
    expect(jsonTooDeep(String.raw`{"a":"\\"` + '['.repeat(200), 64)).toBe(true)
    expect(jsonTooDeep(`${String.raw`{"a":"\"` + '['.repeat(200)}"}`, 64)).toBe(false)
    expect(jsonTooDeep(`${'['.repeat(64)}${']'.repeat(64)}`, 64)).toBe(false)
    expect(jsonTooDeep(`${'[{"a":'.repeat(33)}1${'}]'.repeat(33)}`, 64)).toBe(true)
    // More than 64 brackets side by side, none deep: the bracket count sends it to the exact walk, which clears it.
    expect(jsonTooDeep(`[${'[1],'.repeat(100)}{"a":{}}]`, 64)).toBe(false)
    expect(jsonTooDeep(`[${'{"a":1},'.repeat(100)}${'['.repeat(65)}${']'.repeat(65)}]`, 64)).toBe(true)
  })

  it('drops a domain whose operator throws, and keeps serving the other domains', async () => {
    const boom = defineOperator({
      name: 'boom',
      description: 'throws',
      configSchema: { type: 'object' },
      compile: () => () => {
        throw new Error('operator bug')
      },
    })
    const dir = policyDir(`category: smart_plug
domains:
  svc: { streams: { tasmota/sensor: { allow: [ENERGY.Yesterday], operators: [ { boom: {} } ] } } }
  ana: { streams: { tasmota/sensor: { allow: [ENERGY.Yesterday] } } }
`)
    try {
      const { pipeline, metrics, audit } = build({ policies: dir.path, operators: [boom] })
      const result = await pipeline.process(SENSOR, sensor())
      expect(result.outputs.map((o) => o.domain)).toEqual(['ana'])
      expect(result.domainDrops).toEqual([{ stage: 'filter', domain: 'svc', reason: 'operator_error' }])
      expect(await dropCount(metrics, { stage: 'filter', reason: 'operator_error' })).toBe(1)
      expect(audit.entries[0]).toMatchObject({ domain: 'svc', reason: 'operator_error' })
    } finally {
      dir.remove()
    }
  })

  it('withholds a copy an operator suppresses, and one whose allowlist leaves nothing', async () => {
    const quiet = defineOperator({
      name: 'quiet',
      description: 'suppresses',
      configSchema: { type: 'object' },
      compile: () => () => SUPPRESS,
    })
    const dir = policyDir(`category: smart_plug
domains:
  svc: { streams: { tasmota/sensor: { allow: [ENERGY.Total], operators: [ { quiet: {} } ] } } }
  ana: { streams: { tasmota/sensor: { allow: [ENERGY.Voltage] } } }
`)
    try {
      const { pipeline } = build({ policies: dir.path, operators: [quiet] })
      const result = await pipeline.process(SENSOR, sensor())
      expect(result.outputs).toEqual([])
      expect(result.domainDrops).toEqual([
        { stage: 'filter', domain: 'svc', reason: 'suppressed' },
        { stage: 'filter', domain: 'ana', reason: 'empty_after_filter' },
      ])
    } finally {
      dir.remove()
    }
  })

  it('drops a copy that cannot be encoded', async () => {
    const bigint = defineOperator({
      name: 'bigint',
      description: 'unserialisable',
      configSchema: { type: 'object' },
      compile: () => () => ({ n: 1n }),
    })
    const dir = policyDir(`category: smart_plug
domains:
  svc: { streams: { tasmota/sensor: { allow: [ENERGY.Total], operators: [ { bigint: {} } ] } } }
`)
    try {
      const { pipeline } = build({ policies: dir.path, operators: [bigint] })
      const result = await pipeline.process(SENSOR, sensor())
      expect(result.outputs).toEqual([])
      expect(result.domainDrops).toEqual([{ stage: 'encode', domain: 'svc', reason: 'encode_error' }])
    } finally {
      dir.remove()
    }
  })

  it('drops a copy holding NaN or Infinity instead of forwarding a silent null (found probing hostile numbers)', async () => {
    const overflow = defineOperator({
      name: 'overflow',
      description: 'non-finite',
      configSchema: { type: 'object' },
      compile: () => () => ({ a: null, b: [1, { c: Number.POSITIVE_INFINITY }] }),
    })
    const honest = defineOperator({
      name: 'honest',
      description: 'a real null',
      configSchema: { type: 'object' },
      compile: () => () => ({ a: null, b: [1, { c: 2 }] }),
    })
    const dir = policyDir(`category: smart_plug
domains:
  svc: { streams: { tasmota/sensor: { allow: [ENERGY.Total], operators: [ { overflow: {} } ] } } }
  ana: { streams: { tasmota/sensor: { allow: [ENERGY.Total], operators: [ { honest: {} } ] } } }
`)
    try {
      const { pipeline } = build({ policies: dir.path, operators: [overflow, honest] })
      const result = await pipeline.process(SENSOR, sensor())
      expect(result.domainDrops).toEqual([{ stage: 'encode', domain: 'svc', reason: 'encode_error' }])
      expect(result.outputs.map((o) => JSON.parse(o.payload.toString()).data)).toEqual([{ a: null, b: [1, { c: 2 }] }])
      // A protobuf domain (veil.v1.Filtered) drops it too: its writer refuses the number.
      const protobuf = build({
        policies: dir.path,
        operators: [overflow, honest],
        encodings: new Map([['svc', 'protobuf']]),
      })
      const binary = await protobuf.pipeline.process(SENSOR, sensor())
      expect(binary.domainDrops).toEqual([{ stage: 'encode', domain: 'svc', reason: 'encode_error' }])
      expect(binary.outputs.map((o) => o.domain)).toEqual(['ana'])
    } finally {
      dir.remove()
    }
  })

  it('counts in and out per stage with bounded labels', async () => {
    const { pipeline, metrics } = build()
    await pipeline.process(SENSOR, sensor())
    await pipeline.process('nope', Buffer.from('x'))
    const text = await metrics.registry.metrics()
    expect(text).toContain('veil_stage_in_total{stage="classify",category="unclassified"} 2')
    expect(text).toContain('veil_stage_out_total{stage="route",category="smart_plug"} 1')
    expect(text).not.toMatch(/0329F7|tasmota_/i)
  })

  it('treats the same device id in different letter case as one device', async () => {
    const { pipeline } = build()
    const upper = await pipeline.process('tele/tasmota_0329F7/SENSOR', sensor())
    const lower = await pipeline.process('tele/tasmota_0329f7/SENSOR', sensor())
    expect(upper.outputs[0]?.topic).toBe(lower.outputs[0]?.topic)
  })

  it('writes the audit log as JSON lines in the data directory, without values', async () => {
    const dir = tempDir()
    try {
      mkdirSync(dir.path, { recursive: true })
      const audit = new FileAuditLog(dir.path)
      const { pipeline } = builtinPipeline({
        policies: TEST_POLICIES,
        master: Buffer.alloc(32),
        dataDir: dir.path,
        audit,
      })
      await pipeline.process(SENSOR, Buffer.from('{"ENERGY":{"Total":"CANARY-VALUE"}}'))
      await pipeline.process('secret/CANARY-TOPIC', Buffer.from('x'))
      await audit.close()
      const lines = readFileSync(join(dir.path, 'audit.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
      expect(lines.map((l) => l.reason)).toEqual(['invalid', 'unknown_topic'])
      expect(lines[0]).toMatchObject({ stage: 'validate', category: 'smart_plug', policy: pipeline.policyVersion })
      expect(typeof lines[0]?.time).toBe('string')
      expect(readFileSync(join(dir.path, 'audit.jsonl'), 'utf8')).not.toMatch(/CANARY|0329F7/)
    } finally {
      dir.remove()
    }
  })

  it('rotates the audit log at its size bound', async () => {
    const dir = tempDir()
    try {
      const audit = new FileAuditLog(dir.path, { maxBytes: 1000 })
      for (let i = 0; i < 50; i++)
        audit.record({ stage: 'classify', category: 'unclassified', reason: 'unknown_topic' }, 'v', 0)
      await audit.close()
      const current = readFileSync(join(dir.path, 'audit.jsonl'), 'utf8')
      const rotated = readFileSync(join(dir.path, 'audit.jsonl.1'), 'utf8')
      expect(current.length).toBeLessThanOrEqual(1000)
      expect(rotated.length).toBeLessThanOrEqual(1000)
    } finally {
      dir.remove()
    }
  })
})
