/**
 * Sparkplug B's side of the protobuf benchmarks (issue 7), beside the core's in gateway/src/pipeline/
 * protobuf.benchmarks.ts: encoding one document with Veil's writer, with protobufjs and as JSON, and the whole
 * pipeline for Sparkplug B in (aliases resolved against a birth) and JSON or Sparkplug B out. Registered by
 * `sparkplugBenchmarks()`; `sparkplug.bench.ts` does for `npm run bench:operators`.
 */
import { bench, describe } from 'vitest'
import { encodePayload, type SparkplugDocument } from './codec.ts'
import { encodePayloadReflective, sparkplugBytes, testPipeline } from './testing.ts'

export function sparkplugBenchmarks(): void {
  const spDoc: SparkplugDocument = {
    type: 'NDATA',
    timestamp: 1772366400000,
    metrics: [
      { name: 'Temperature', dataType: 'Double', value: 22.5 },
      { name: 'Energy/Total', dataType: 'Double', value: 1234.6 },
    ],
  }
  describe('encode one Sparkplug B document', () => {
    bench("Sparkplug B payload, two metrics, Veil's writer (what the pipeline runs)", () => {
      encodePayload(spDoc, 7, '0123456789abcdef')
    })
    bench('Sparkplug B payload, two metrics, protobufjs (before)', () => {
      encodePayloadReflective(spDoc, 7, '0123456789abcdef')
    })
    bench('Sparkplug B as JSON, two metrics', () => {
      Buffer.from(`{"policy":"0123456789abcdef","data":${JSON.stringify({ ...spDoc, seq: 7 })}}`)
    })
  })

  // The whole pipeline, same content in and out (the policies of test/policies/sparkplug).
  const jsonOut = testPipeline()
  const pbOut = testPipeline({ encodings: { svc: 'protobuf', ana: 'protobuf' } })
  const birth = sparkplugBytes({
    timestamp: 1772366400000,
    seq: 0,
    metrics: [
      { name: 'Temperature', alias: 1, datatype: 10, value: 21 },
      { name: 'Energy/Total', alias: 2, datatype: 10, value: 1234.5 },
      { name: 'Secret', alias: 3, datatype: 12, value: 'x' },
    ],
  })
  for (const p of [jsonOut, pbOut]) void p.pipeline.process('spBv1.0/G/NBIRTH/N', birth, 1772366400000)
  let seq = 0
  const ndata = Array.from({ length: 256 }, (_, i) =>
    sparkplugBytes({
      timestamp: 1772366400000,
      seq: (i + 1) % 256,
      metrics: [
        { alias: 1, datatype: 10, value: 22.5 },
        { alias: 2, datatype: 10, value: 1234.6 },
        { alias: 3, datatype: 12, value: 'y' },
      ],
    }),
  )
  const spJson = JSON.stringify({
    timestamp: 1772366400000,
    seq: 1,
    metrics: [
      { name: 'Temperature', dataType: 'Double', value: 22.5 },
      { name: 'Energy/Total', dataType: 'Double', value: 1234.6 },
      { name: 'Secret', dataType: 'String', value: 'y' },
    ],
  })
  describe(`pipeline: classify, decode, validate, filter, encode, route (Sparkplug NDATA ${ndata[0]?.length} B, as JSON ${spJson.length} B)`, () => {
    bench('Sparkplug B NDATA in (aliases), JSON out', async () => {
      await jsonOut.pipeline.process('spBv1.0/G/NDATA/N', ndata[seq++ & 255] as Buffer, 1772366400000)
    })
    bench('Sparkplug B NDATA in (aliases), Sparkplug B out', async () => {
      await pbOut.pipeline.process('spBv1.0/G/NDATA/N', ndata[seq++ & 255] as Buffer, 1772366400000)
    })
  })
}
