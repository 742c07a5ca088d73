/**
 * Protobuf against JSON for the same content, side by side (issue 7): decoding a canonical message with Veil's
 * generated one-pass decoder, with protobufjs reflection (with and without the wire check), with a hand-written
 * static decoder and with JSON.parse; encoding a filtered document as JSON and veil.v1.Filtered (Veil's writer and
 * protobufjs); and the whole pipeline (classify, decode, validate, filter, encode, route) for JSON and protobuf in
 * and out. Sparkplug B's cases are its profile's (filters/profiles/sparkplug/sparkplug.benchmarks.ts). Registered by
 * `protobufBenchmarks()` so that a benchmark suite can run it; `protobuf.bench.ts` does for `npm run bench`.
 */
import protobuf from 'protobufjs'
import { bench, describe } from 'vitest'
import { testPipeline } from '../../../filters/profiles/sparkplug/testing.ts'
import { checkWire, compileCheckedDecoder, compileProtoDecoder, protoType } from '../streams/proto.ts'
import { encodeFiltered } from './filtered.ts'

const ENERGY = { ts: 1772366400, total_kwh: 1234.567, power_w: 61.5, voltage_v: 231.2, current_a: 0.27, relay: 'on' }
const TYPE = 'veil.canonical.v1.SmartPlugEnergy'

/**
 * What `pbjs -t static-module` emits for SmartPlugEnergy (a switch over field numbers on a Reader), fused with the
 * conversion to a plain object: the fastest static code can be, and what reflection is measured against.
 */
function staticDecodeEnergy(bytes: Uint8Array): Record<string, unknown> {
  const r = protobuf.Reader.create(bytes)
  const out: Record<string, unknown> = {}
  while (r.pos < r.len) {
    const tag = r.uint32()
    switch (tag >>> 3) {
      case 1: {
        const ts = r.uint64() as unknown as number | { toNumber(): number }
        out.ts = typeof ts === 'number' ? ts : ts.toNumber()
        break
      }
      case 2:
        out.total_kwh = r.double()
        break
      case 3:
        out.power_w = r.double()
        break
      case 4:
        out.voltage_v = r.double()
        break
      case 5:
        out.current_a = r.double()
        break
      case 6:
        out.relay = r.string()
        break
      default:
        r.skipType(tag & 7)
    }
  }
  return out
}

export function protobufBenchmarks(): void {
  const type = protoType(TYPE)
  const pb = Buffer.from(type.encode(ENERGY).finish())
  const json = Buffer.from(JSON.stringify(ENERGY))
  const decodeOnePass = compileProtoDecoder(TYPE)
  const decodeChecked = compileCheckedDecoder(type)
  const options: protobuf.IConversionOptions = {
    longs: Number,
    enums: String,
    defaults: false,
    arrays: false,
    objects: false,
    oneofs: false,
  }

  describe(`decode one canonical energy message (protobuf ${pb.length} B, JSON ${json.length} B)`, () => {
    bench('JSON.parse (the JSON stream)', () => {
      JSON.parse(json.toString('utf8'))
    })
    bench('protobufjs reflection: decode + toObject', () => {
      type.toObject(type.decode(pb), options)
    })
    bench("Veil's one-pass decoder, generated from the reflected type (what the pipeline runs)", () => {
      decodeOnePass(pb)
    })
    bench("protobufjs reflection with Veil's wire check (before)", () => {
      decodeChecked(pb)
    })
    bench('wire check alone', () => {
      checkWire(type, pb)
    })
    bench('static code (pbjs static-module style, hand-fused with toObject)', () => {
      staticDecodeEnergy(pb)
    })
  })

  const filtered = { ts: 1772366400, total_kwh: 1234.567, power_w: 61.5 }
  const filteredType = protoType('veil.v1.Filtered')
  describe('encode one filtered document', () => {
    bench('JSON {"policy","data"}', () => {
      Buffer.from(`{"policy":"0123456789abcdef","data":${JSON.stringify(filtered)}}`)
    })
    bench("protobuf veil.v1.Filtered, Veil's writer (what the pipeline runs)", () => {
      encodeFiltered('0123456789abcdef', filtered, false)
    })
    bench('protobuf veil.v1.Filtered, protobufjs from a google.protobuf.Value tree (before)', () => {
      filteredType
        .encode({
          policy: '0123456789abcdef',
          data: {
            structValue: {
              fields: {
                ts: { numberValue: filtered.ts },
                total_kwh: { numberValue: filtered.total_kwh },
                power_w: { numberValue: filtered.power_w },
              },
            },
          },
        })
        .finish()
    })
  })

  // The whole pipeline, same content in and out; svc's policy keeps ts, total_kwh, power_w (test/policies/sparkplug).
  const jsonOut = testPipeline()
  const pbOut = testPipeline({ encodings: { svc: 'protobuf', ana: 'protobuf' } })
  describe('pipeline: classify, decode, validate, filter, encode, route', () => {
    bench('JSON in, JSON out (devices/smart_plug/<id>/energy)', async () => {
      await jsonOut.pipeline.process('devices/smart_plug/d1/energy', json, 1772366400000)
    })
    bench('protobuf in, JSON out (.../energy/pb)', async () => {
      await jsonOut.pipeline.process('devices/smart_plug/d1/energy/pb', pb, 1772366400000)
    })
    bench('protobuf in, protobuf out (veil.v1.Filtered)', async () => {
      await pbOut.pipeline.process('devices/smart_plug/d1/energy/pb', pb, 1772366400000)
    })
  })
}
