import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { findCanaries } from '../../../test/helpers/canary.ts'
import { findPii } from '../../operators/pii_scan/detect.ts'
import type { Output } from '../../../gateway/src/pipeline/envelope.ts'
import { JSON_CONTENT_TYPE } from '../../../gateway/src/pipeline/encode.ts'
import { SPARKPLUG_CONTENT_TYPE, sparkplugCodec } from './stream.ts'
import { decodePayload, metricValue, sparkplugPayloadType, toNumber, type WireMetric } from './codec.ts'
import { SparkplugState } from './state.ts'
import { pipelinesClosedAfterEach } from '../../../test/helpers/test-pipelines.ts'
import {
  counterValue,
  sparkplugBytes,
  testPipeline,
  valueField,
  type MetricSpec,
  type TestPipeline,
} from './testing.ts'

const FIXTURES = join(import.meta.dirname, '../../../test/fixtures/sparkplug')
const fixture = (name: string): Buffer => readFileSync(join(FIXTURES, `benthos_umh_${name}.bin`))
const T0 = 1_750_855_643_474
/** What the test policy forwards of T0: Sparkplug timestamps (epoch ms) floored to the minute. */
const T0_MINUTE = T0 - (T0 % 60_000)

const pipeline = pipelinesClosedAfterEach()

interface JsonOut {
  policy: string
  data: {
    type: string
    timestamp?: number
    seq?: number
    metrics: { name: string; dataType: string; value: unknown; timestamp?: number }[]
  }
}
const json = (out: Output): JsonOut => JSON.parse(out.payload.toString('utf8')) as JsonOut
const svc = (outputs: readonly Output[]): Output | undefined => outputs.find((o) => o.domain === 'svc')

/** A Sparkplug payload back from Veil's protobuf output, with only the fields on the wire. */
function decodeOutput(bytes: Buffer): {
  seq?: number
  timestamp?: number
  uuid?: string
  metrics: Record<string, unknown>[]
} {
  const type = sparkplugPayloadType()
  return type.toObject(type.decode(bytes), { longs: Number, defaults: false }) as {
    seq?: number
    timestamp?: number
    uuid?: string
    metrics: Record<string, unknown>[]
  }
}

describe('Sparkplug B fixtures (benthos-umh test vectors)', () => {
  it('drops data before a birth and counts it, then follows birth, data and a sequence gap', async () => {
    const { pipeline: p, metrics } = pipeline()
    const before = await p.process('spBv1.0/PlantA/NDATA/Edge1', fixture('NDATA_BEFORE_BIRTH'), T0)
    expect(before.outputs).toEqual([])
    expect(before.dropped).toEqual({ stage: 'decode', reason: 'no_birth' })
    expect(await counterValue(metrics, 'veil_messages_dropped_total', { stage: 'decode', reason: 'no_birth' })).toBe(1)
    expect(await counterValue(metrics, 'veil_sparkplug_events_total', { event: 'data_before_birth' })).toBe(1)

    const birth = await p.process('spBv1.0/PlantA/NBIRTH/Edge1', fixture('NBIRTH_V1'), T0)
    const birthOut = svc(birth.outputs)
    expect(birthOut?.topic).toMatch(/^veil\/svc\/smart_plug\/[a-z0-9]+\/nbirth$/)
    expect(birthOut?.contentType).toBe(JSON_CONTENT_TYPE)
    // Node Control/Rebirth is not in the allowlist; bdSeq and Temperature are.
    expect(json(birthOut as Output).data).toEqual({
      type: 'NBIRTH',
      timestamp: T0_MINUTE,
      seq: 0,
      metrics: [
        { name: 'bdSeq', dataType: 'UInt64', value: 88 },
        { name: 'Temperature', dataType: 'Double', value: 21.5 },
      ],
    })
    // ana may receive only Energy/* metrics: a birth without any is withheld from it.
    expect(birth.domainDrops).toContainEqual({ stage: 'filter', domain: 'ana', reason: 'empty_after_filter' })

    const data = await p.process('spBv1.0/PlantA/NDATA/Edge1', fixture('NDATA_V1'), T0)
    expect(json(svc(data.outputs) as Output).data).toEqual({
      type: 'NDATA',
      timestamp: T0_MINUTE,
      seq: 1,
      metrics: [{ name: 'Temperature', dataType: 'Double', value: 22.5 }],
    })

    const gap = await p.process('spBv1.0/PlantA/NDATA/Edge1', fixture('NDATA_GAP'), T0)
    expect(await counterValue(metrics, 'veil_sparkplug_events_total', { event: 'seq_gap' })).toBe(1)
    // The gap was the device's: Veil's own numbering for svc stays contiguous.
    expect(json(svc(gap.outputs) as Output).data.seq).toBe(2)
    expect(json(svc(gap.outputs) as Output).data.metrics).toEqual([
      { name: 'Temperature', dataType: 'Double', value: 27 },
    ])
  })

  it("refuses a death whose bdSeq is not the current birth's (a stale Will) and keeps the session", async () => {
    const { pipeline: p, metrics } = pipeline()
    await p.process('spBv1.0/PlantA/NBIRTH/Edge1', fixture('NBIRTH_V1'), T0)
    // NDEATH_V1 carries bdSeq 0, NBIRTH_V1 bdSeq 88.
    const death = await p.process('spBv1.0/PlantA/NDEATH/Edge1', fixture('NDEATH_V1'), T0)
    expect(death.dropped).toEqual({ stage: 'decode', reason: 'stale_death' })
    expect(await counterValue(metrics, 'veil_sparkplug_events_total', { event: 'stale_death' })).toBe(1)
    const data = await p.process('spBv1.0/PlantA/NDATA/Edge1', fixture('NDATA_V1'), T0)
    expect(svc(data.outputs)).toBeDefined()
  })

  it("re-encodes as Sparkplug B for a protobuf domain: names instead of aliases, Veil's seq, the policy in uuid", async () => {
    const { pipeline: p } = pipeline({ encodings: { svc: 'protobuf' } })
    const birth = await p.process('spBv1.0/PlantA/NBIRTH/Edge1', fixture('NBIRTH_V1'), T0)
    const out = svc(birth.outputs) as Output
    expect(out.contentType).toBe(SPARKPLUG_CONTENT_TYPE)
    const decoded = decodeOutput(out.payload)
    expect(decoded.seq).toBe(0)
    expect(decoded.timestamp).toBe(T0_MINUTE)
    expect(decoded.uuid).toBe(`veil-policy/${p.policyVersion}`)
    expect(decoded.metrics).toEqual([
      { name: 'bdSeq', datatype: 8, long_value: 88 },
      { name: 'Temperature', datatype: 10, double_value: 21.5 },
    ])
    const data = await p.process('spBv1.0/PlantA/NDATA/Edge1', fixture('NDATA_V1'), T0)
    const dataOut = decodeOutput((svc(data.outputs) as Output).payload)
    expect(dataOut).toMatchObject({ seq: 1, metrics: [{ name: 'Temperature', datatype: 10, double_value: 22.5 }] })
    expect(dataOut.metrics[0]).not.toHaveProperty('alias')
  })
})

describe('Sparkplug B state', () => {
  const node = 'spBv1.0/G1/%/N1'
  const dev = (type: string, device = 'D1'): string => `spBv1.0/G1/${type}/N1/${device}`
  const birthMetrics: MetricSpec[] = [
    { name: 'bdSeq', alias: 0, datatype: 8, value: 5 },
    { name: 'Temperature', alias: 1, datatype: 10, value: 20 },
    { name: 'Energy/Total', alias: 2, datatype: 10, value: 1234.56 },
    { name: 'Secret', alias: 3, datatype: 12, value: 'hidden' },
  ]

  it('resolves device aliases, forgets a device on DDEATH and every device on a new NBIRTH', async () => {
    const { pipeline: p } = pipeline()
    expect(
      (await p.process(dev('DDATA'), sparkplugBytes({ seq: 0, metrics: [{ alias: 1, datatype: 10, value: 1 }] }), T0))
        .dropped?.reason,
    ).toBe('no_birth')
    await p.process(node.replace('%', 'NBIRTH'), sparkplugBytes({ timestamp: T0, seq: 0, metrics: birthMetrics }), T0)
    expect(
      (await p.process(dev('DDATA'), sparkplugBytes({ seq: 1, metrics: [{ alias: 1, datatype: 10, value: 1 }] }), T0))
        .dropped?.reason,
    ).toBe('no_birth')
    const dbirth = await p.process(
      dev('DBIRTH'),
      sparkplugBytes({
        timestamp: T0,
        seq: 2,
        metrics: [
          { name: 'Temperature', alias: 7, datatype: 10, value: 20.2 },
          { name: 'Label', alias: 8, datatype: 12, value: 'line one' },
        ],
      }),
      T0,
    )
    // The device policy rounds Temperature to 0.5.
    expect(json(svc(dbirth.outputs) as Output).data.metrics).toEqual([
      { name: 'Temperature', dataType: 'Double', value: 20 },
      { name: 'Label', dataType: 'String', value: 'line one' },
    ])
    expect(svc(dbirth.outputs)?.topic).toMatch(/\/dbirth$/)
    const ddata = await p.process(
      dev('DDATA'),
      sparkplugBytes({
        seq: 3,
        metrics: [
          { alias: 7, value: 21.8, datatype: 10 },
          { alias: 99, datatype: 10, value: 1 },
        ],
      }),
      T0,
    )
    expect(json(svc(ddata.outputs) as Output).data).toMatchObject({
      type: 'DDATA',
      seq: 2,
      metrics: [{ name: 'Temperature', value: 22 }],
    })
    expect(p.codecState(sparkplugCodec)?.births.deviceCount('G1', 'N1')).toBe(1)
    const ddeath = await p.process(dev('DDEATH'), sparkplugBytes({ timestamp: T0, seq: 4, metrics: [] }), T0)
    expect(json(svc(ddeath.outputs) as Output).data).toEqual({
      type: 'DDEATH',
      timestamp: T0_MINUTE,
      seq: 3,
      metrics: [],
    })
    expect(p.codecState(sparkplugCodec)?.births.deviceCount('G1', 'N1')).toBe(0)
    expect(
      (await p.process(dev('DDATA'), sparkplugBytes({ seq: 5, metrics: [{ alias: 7, datatype: 10, value: 1 }] }), T0))
        .dropped?.reason,
    ).toBe('no_birth')
    await p.process(
      dev('DBIRTH'),
      sparkplugBytes({ seq: 6, metrics: [{ name: 'Temperature', alias: 7, datatype: 10, value: 1 }] }),
      T0,
    )
    expect(p.codecState(sparkplugCodec)?.births.deviceCount('G1', 'N1')).toBe(1)
    await p.process(node.replace('%', 'NBIRTH'), sparkplugBytes({ seq: 0, metrics: birthMetrics }), T0)
    expect(p.codecState(sparkplugCodec)?.births.deviceCount('G1', 'N1')).toBe(0)
  })

  it("forwards a matching NDEATH without seq, then drops the node's data until it is born again", async () => {
    const { pipeline: p, metrics } = pipeline({ encodings: { ana: 'protobuf' } })
    await p.process(node.replace('%', 'NBIRTH'), sparkplugBytes({ seq: 0, metrics: birthMetrics }), T0)
    const death = await p.process(
      node.replace('%', 'NDEATH'),
      sparkplugBytes({ timestamp: T0, metrics: [{ name: 'bdSeq', datatype: 8, value: 5 }] }),
      T0,
    )
    expect(json(svc(death.outputs) as Output).data).toEqual({
      type: 'NDEATH',
      timestamp: T0_MINUTE,
      metrics: [{ name: 'bdSeq', dataType: 'UInt64', value: 5 }],
    })
    // ana keeps no metric of a death, and its Sparkplug NDEATH carries no seq (specification 6.4.x).
    const ana = decodeOutput((death.outputs.find((o) => o.domain === 'ana') as Output).payload)
    expect(ana.seq).toBeUndefined()
    expect(ana.metrics).toBeUndefined()
    expect(await counterValue(metrics, 'veil_sparkplug_events_total', { event: 'death' })).toBe(1)
    expect(
      (
        await p.process(
          node.replace('%', 'NDATA'),
          sparkplugBytes({ seq: 1, metrics: [{ alias: 1, datatype: 10, value: 1 }] }),
          T0,
        )
      ).dropped?.reason,
    ).toBe('no_birth')
  })

  it('keeps ids in their case: edge nodes whose names differ only in case get their own pseudonym and seq', async () => {
    const { pipeline: p } = pipeline()
    const born = async (edge: string): Promise<Output> => {
      const r = await p.process(
        `spBv1.0/G1/NBIRTH/${edge}`,
        sparkplugBytes({ timestamp: T0, seq: 0, metrics: birthMetrics }),
        T0,
      )
      return svc(r.outputs) as Output
    }
    const upper = await born('Line1')
    const lower = await born('line1')
    expect(upper.topic).not.toBe(lower.topic)
    // The second node's data continues its own seq (1 after its birth's 0), not the first node's.
    const data = await p.process(
      'spBv1.0/G1/NDATA/Line1',
      sparkplugBytes({ seq: 1, metrics: [{ alias: 1, datatype: 10, value: 21 }] }),
      T0,
    )
    expect(svc(data.outputs)?.topic.replace(/ndata$/, '')).toBe(upper.topic.replace(/nbirth$/, ''))
    expect(json(svc(data.outputs) as Output).data).toMatchObject({ type: 'NDATA', seq: 1 })
  })

  it("handles STATE (Sparkplug 3.0 JSON) from host applications under the host's pseudonym", async () => {
    const { pipeline: p } = pipeline()
    const result = await p.process(
      'spBv1.0/STATE/scada-host-1',
      Buffer.from(JSON.stringify({ online: true, timestamp: T0 })),
      T0,
    )
    expect(result.outputs.map((o) => [o.domain, JSON.parse(o.payload.toString()).data])).toEqual([
      ['svc', { online: true }],
    ])
    expect(result.outputs[0]?.topic).toMatch(/^veil\/svc\/smart_plug\/[a-z0-9]+\/state$/)
    expect((await p.process('spBv1.0/STATE/scada-host-1', Buffer.from('ONLINE'), T0)).dropped?.reason).toBe(
      'undecodable',
    )
  })

  it('keeps ana to its prefix and rounds Energy/* for svc', async () => {
    const { pipeline: p } = pipeline()
    const birth = await p.process(
      node.replace('%', 'NBIRTH'),
      sparkplugBytes({ timestamp: T0, seq: 0, metrics: birthMetrics }),
      T0,
    )
    const ana = birth.outputs.find((o) => o.domain === 'ana') as Output
    // No timestamp for ana: its allow is empty.
    expect(json(ana).data).toEqual({
      type: 'NBIRTH',
      seq: 0,
      metrics: [{ name: 'Energy/Total', dataType: 'Double', value: 1234.56 }],
    })
    expect(json(svc(birth.outputs) as Output).data.metrics).toContainEqual({
      name: 'Energy/Total',
      dataType: 'Double',
      value: 1234.6,
    })
  })

  it('is bounded: evicts the least recently seen edge node and refuses births past the metric limit', async () => {
    const events: string[] = []
    const state = new SparkplugState({ maxEdgeNodes: 3, maxDevicesPerNode: 2, maxMetricsPerBirth: 4 }, (e) =>
      events.push(e),
    )
    const birth = { seq: 0, metrics: [{ name: 'a', alias: 1, datatype: 10, double_value: 1 }] }
    for (let i = 0; i < 5; i++) state.apply({ group: 'g', node: `n${i}`, device: undefined, type: 'NBIRTH' }, birth)
    expect(state.nodeCount).toBe(3)
    expect(events.filter((e) => e === 'node_evicted')).toHaveLength(2)
    expect(state.apply({ group: 'g', node: 'n0', device: undefined, type: 'NDATA' }, { seq: 1, metrics: [] })).toBe(
      'no_birth',
    )
    for (let i = 0; i < 3; i++)
      state.apply({ group: 'g', node: 'n4', device: `d${i}`, type: 'DBIRTH' }, { ...birth, seq: i + 1 })
    expect(state.deviceCount('g', 'n4')).toBe(2)
    expect(events).toContain('device_evicted')
    const large = { seq: 0, metrics: Array.from({ length: 5 }, (_, i) => ({ name: `m${i}`, alias: i, datatype: 10 })) }
    expect(state.apply({ group: 'g', node: 'big', device: undefined, type: 'NBIRTH' }, large)).toBe('invalid')
    expect(events).toContain('birth_too_large')
  })

  it('refuses a birth that repeats an alias or leaves a metric unnamed', () => {
    const state = new SparkplugState()
    const at = { group: 'g', node: 'n', device: undefined, type: 'NBIRTH' } as const
    expect(
      state.apply(at, {
        seq: 0,
        metrics: [
          { name: 'a', alias: 1, datatype: 10 },
          { name: 'b', alias: 1, datatype: 10 },
        ],
      }),
    ).toBe('invalid')
    expect(state.apply(at, { seq: 0, metrics: [{ alias: 1, datatype: 10 }] })).toBe('invalid')
    expect(state.apply(at, { seq: 256, metrics: [] })).toBe('invalid')
  })
})

describe('Sparkplug B generated payloads', () => {
  /** A value that fits a scalar data type. */
  const scalarOf = (type: number): fc.Arbitrary<number | string | boolean> => {
    switch (type) {
      case 1:
        return fc.integer({ min: -128, max: 127 })
      case 2:
        return fc.integer({ min: -32768, max: 32767 })
      case 3:
        return fc.integer({ min: -2147483648, max: 2147483647 })
      case 4:
        return fc.integer({ min: -(2 ** 40), max: 2 ** 40 })
      case 5:
        return fc.integer({ min: 0, max: 255 })
      case 6:
        return fc.integer({ min: 0, max: 65535 })
      case 7:
        return fc.integer({ min: 0, max: 4294967295 })
      case 8:
      case 13:
        return fc.integer({ min: 0, max: 2 ** 48 })
      case 9:
        return fc.float({ noNaN: true, noDefaultInfinity: true }).map(Math.fround)
      case 10:
        return fc.double({ noNaN: true, noDefaultInfinity: true })
      case 11:
        return fc.boolean()
      default:
        return fc.stringMatching(/^[a-z ]{0,12}$/)
    }
  }
  const SCALAR_TYPES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
  const typed = fc.constantFrom(...SCALAR_TYPES).chain((t) => fc.tuple(fc.constant(t), scalarOf(t), scalarOf(t)))
  const typedValue = fc.constantFrom(...SCALAR_TYPES).chain((t) => fc.tuple(fc.constant(t), scalarOf(t)))

  it('round trip: a birth and alias-only data come out named, typed and valued as sent', async () => {
    const { pipeline: p } = pipeline({ encodings: { svc: 'protobuf' } })
    let n = 0
    await fc.assert(
      fc.asyncProperty(typed, fc.integer({ min: 0, max: 2 ** 40 }), async ([type, birthValue, dataValue], alias) => {
        const edge = `n${n++}`
        await p.process(
          `spBv1.0/G/NBIRTH/${edge}`,
          sparkplugBytes({ seq: 0, metrics: [{ name: 'Temperature', alias, datatype: type, value: birthValue }] }),
          T0,
        )
        // The data names neither the metric nor its type: both come from the birth, through the alias.
        const bytes = sparkplugPayloadType()
          .encode({ seq: 1, metrics: [{ alias, ...valueField(type, dataValue) }] })
          .finish()
        const data = await p.process(`spBv1.0/G/NDATA/${edge}`, Buffer.from(bytes), T0)
        const decoded = decodePayload((svc(data.outputs) as Output).payload)
        if (typeof decoded === 'string') throw new Error(decoded)
        expect(toNumber(decoded.seq)).toBe(1)
        const metric = decoded.metrics?.[0] as WireMetric
        expect(metric.name).toBe('Temperature')
        expect(metric.datatype).toBe(type)
        expect(metric.alias).toBeUndefined()
        expect(metricValue(metric, type)).toEqual(dataValue)
      }),
      { numRuns: 200 },
    )
  })

  it('seq: wraps after 255 without a gap, counts every gap, and numbers output per domain contiguously', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 258, maxLength: 280 }), async (steps) => {
        const tp = testPipeline()
        const { pipeline: p, metrics } = tp
        try {
          await p.process(
            'spBv1.0/G/NBIRTH/N',
            sparkplugBytes({ seq: 0, metrics: [{ name: 'Temperature', alias: 1, datatype: 10, value: 1 }] }),
            T0,
          )
          let seq = 0
          let gaps = 0
          const outSeqs: number[] = []
          for (const step of steps) {
            seq = (seq + step) % 256
            if (step !== 1) gaps++
            const r = await p.process(
              'spBv1.0/G/NDATA/N',
              sparkplugBytes({ seq, metrics: [{ alias: 1, datatype: 10, value: seq }] }),
              T0,
            )
            outSeqs.push(json(svc(r.outputs) as Output).data.seq as number)
          }
          expect(await counterValue(metrics, 'veil_sparkplug_events_total', { event: 'seq_gap' })).toBe(gaps)
          expect(outSeqs).toEqual(steps.map((_, i) => (i + 1) % 256))
        } finally {
          tp.close()
        }
      }),
      { numRuns: 4 },
    )
  })

  it('data before a birth is dropped and counted, whatever it holds', async () => {
    const { pipeline: p, metrics } = pipeline()
    let count = 0
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 1000 }), typedValue), { maxLength: 8 }),
        fc.integer({ min: 0, max: 255 }),
        async (specs, seq) => {
          const r = await p.process(
            `spBv1.0/G/NDATA/unborn${count++}`,
            sparkplugBytes({ seq, metrics: specs.map(([alias, [datatype, value]]) => ({ alias, datatype, value })) }),
            T0,
          )
          expect(r.outputs).toEqual([])
          expect(r.dropped).toEqual({ stage: 'decode', reason: 'no_birth' })
        },
      ),
      { numRuns: 100 },
    )
    expect(await counterValue(metrics, 'veil_messages_dropped_total', { stage: 'decode', reason: 'no_birth' })).toBe(
      count,
    )
  })
})

describe('Sparkplug B privacy', () => {
  const GROUP = 'PlantCanaryGroup'
  const NODE = 'EdgeCanaryNode'
  const DEVICE = 'DeviceCanary42'
  const EMAIL = 'anna.schmidt@example.org'

  it('no group, edge node or device name, and no PII in string metrics, reaches any output in either encoding', async () => {
    for (const encoding of ['json', 'protobuf'] as const) {
      const { pipeline: p } = pipeline({ encodings: { svc: encoding, ana: encoding } })
      const outputs: Output[] = []
      const send = async (topic: string, bytes: Buffer): Promise<void> => {
        outputs.push(...(await p.process(topic, bytes, T0)).outputs)
      }
      const metricsOf = (label: string): MetricSpec[] => [
        { name: 'bdSeq', alias: 0, datatype: 8, value: 1 },
        { name: 'Label', alias: 1, datatype: 12, value: label },
        { name: 'Status', alias: 2, datatype: 12, value: `operator ${EMAIL}` },
        { name: 'Energy/Total', alias: 3, datatype: 10, value: 10 },
        { name: 'Owner', alias: 4, datatype: 12, value: NODE },
        { name: `Energy/${EMAIL}`, alias: 5, datatype: 10, value: 3 },
      ]
      await send(`spBv1.0/${GROUP}/NBIRTH/${NODE}`, sparkplugBytes({ seq: 0, metrics: metricsOf('line one') }))
      await send(
        `spBv1.0/${GROUP}/NDATA/${NODE}`,
        sparkplugBytes({
          seq: 1,
          metrics: [
            { alias: 1, datatype: 12, value: 'call +49 30 1234567' },
            { alias: 2, datatype: 12, value: EMAIL },
            { alias: 3, datatype: 10, value: 11 },
          ],
        }),
      )
      await send(
        `spBv1.0/${GROUP}/DBIRTH/${NODE}/${DEVICE}`,
        sparkplugBytes({ seq: 2, metrics: metricsOf('00:1A:2B:3C:4D:5E') }),
      )
      await send(
        `spBv1.0/${GROUP}/DDATA/${NODE}/${DEVICE}`,
        sparkplugBytes({ seq: 3, metrics: [{ alias: 3, datatype: 10, value: 12 }] }),
      )
      await send(`spBv1.0/${GROUP}/DDEATH/${NODE}/${DEVICE}`, sparkplugBytes({ seq: 4, metrics: [] }))
      await send(
        `spBv1.0/${GROUP}/NDEATH/${NODE}`,
        sparkplugBytes({ metrics: [{ name: 'bdSeq', datatype: 8, value: 1 }] }),
      )
      expect(outputs.length).toBeGreaterThanOrEqual(8)
      for (const out of outputs) {
        // latin1 keeps every protobuf byte as one character, so a name inside a length-delimited field shows.
        const text = `${out.topic}\n${out.payload.toString('latin1')}`
        expect(findCanaries(text, [GROUP, NODE, DEVICE, EMAIL])).toEqual([])
        expect(findPii(text)).toBeUndefined()
      }
      // The plain label was kept: pii_scan removed only what holds an identifier.
      expect(outputs.some((o) => o.payload.toString('latin1').includes('line one'))).toBe(true)
    }
  })
})

describe('malformed Sparkplug B payloads', () => {
  const birth = sparkplugBytes({
    timestamp: T0,
    seq: 0,
    metrics: [
      { name: 'Temperature', alias: 1, datatype: 10, value: 20 },
      { name: 'Status', alias: 2, datatype: 12, value: 'ok' },
    ],
  })

  async function expectDropped(p: TestPipeline, bytes: Buffer, reasons: readonly string[]): Promise<void> {
    const r = await p.pipeline.process('spBv1.0/G/NBIRTH/N', bytes, T0)
    expect(r.outputs).toEqual([])
    expect(reasons).toContain(r.dropped?.reason)
  }

  it('drops every truncation of a birth, wrong wire types, unknown fields and huge lengths, with a reason', async () => {
    const p = pipeline()
    for (let cut = 1; cut < birth.length; cut++) {
      const r = await p.pipeline.process('spBv1.0/G/NBIRTH/N', birth.subarray(0, cut), T0)
      // A cut exactly between two fields is a shorter but well-formed birth: forwarded, or filtered per domain.
      if (r.dropped === undefined) expect(r.outputs.length + r.domainDrops.length).toBeGreaterThan(0)
      else expect(['undecodable', 'invalid', 'empty_after_filter']).toContain(r.dropped.reason)
    }
    // metrics (field 2) sent as a varint; seq (field 3) sent length-delimited.
    await expectDropped(p, Buffer.from([0x10, 0x05]), ['undecodable'])
    await expectDropped(p, Buffer.from([0x1a, 0x01, 0x00]), ['undecodable'])
    // A Metric with field 25, which Metric does not declare (it has no extension range).
    await expectDropped(p, Buffer.from([0x12, 0x03, 0xc8, 0x01, 0x01]), ['invalid'])
    // metrics with a length of 2^31 - 1 in a 7-byte payload.
    await expectDropped(p, Buffer.from([0x12, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00]), ['undecodable'])
    // A varint of 11 bytes, a group, field number 0, invalid UTF-8 in a name.
    await expectDropped(p, Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), [
      'undecodable',
    ])
    await expectDropped(p, Buffer.from([0x0b, 0x0c]), ['undecodable'])
    await expectDropped(p, Buffer.from([0x00, 0x01]), ['undecodable'])
    await expectDropped(p, Buffer.from([0x12, 0x04, 0x0a, 0x02, 0xc3, 0x28]), ['undecodable'])
    expect(
      await counterValue(p.metrics, 'veil_messages_dropped_total', { stage: 'decode', reason: 'undecodable' }),
    ).toBeGreaterThanOrEqual(7)
  })

  it('skips a Payload extension field (6 and above), which the specification reserves for third parties', async () => {
    const p = pipeline()
    const withExtension = Buffer.concat([birth, Buffer.from([0x32, 0x03, 0x61, 0x62, 0x63])])
    const r = await p.pipeline.process('spBv1.0/G/NBIRTH/N', withExtension, T0)
    expect(json(svc(r.outputs) as Output).data.metrics).toEqual([
      { name: 'Temperature', dataType: 'Double', value: 20 },
      { name: 'Status', dataType: 'String', value: 'ok' },
    ])
    expect(r.outputs.some((o) => o.payload.includes('abc'))).toBe(false)
  })

  it('fuzz: random bytes and mutated births never crash, and whatever passes holds only allowed metrics', async () => {
    const p = pipeline({ encodings: { ana: 'protobuf' } })
    const allowed = new Set(['Temperature', 'bdSeq', 'Status', 'Label'])
    const mutated = fc
      .tuple(fc.integer({ min: 0, max: birth.length - 1 }), fc.integer({ min: 0, max: 255 }))
      .map(([i, b]) => {
        const copy = Buffer.from(birth)
        copy[i] = b
        return copy
      })
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
          mutated,
        ),
        fc.constantFrom('NBIRTH', 'NDATA', 'DBIRTH', 'DDATA', 'NDEATH'),
        async (bytes, type) => {
          const topic = type.startsWith('D') ? `spBv1.0/G/${type}/N/D` : `spBv1.0/G/${type}/N`
          const r = await p.pipeline.process(topic, bytes, T0)
          if (r.dropped !== undefined)
            expect(['undecodable', 'invalid', 'no_birth', 'stale_death', 'empty_after_filter']).toContain(
              r.dropped.reason,
            )
          for (const out of r.outputs.filter((o) => o.domain === 'svc')) {
            for (const m of json(out).data.metrics)
              expect(allowed.has(m.name) || m.name.startsWith('Energy/')).toBe(true)
          }
        },
      ),
      { numRuns: 400 },
    )
  })
})
