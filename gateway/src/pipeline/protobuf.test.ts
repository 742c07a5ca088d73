import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { counterValue } from '../../../filters/profiles/sparkplug/testing.ts'
import { pipelinesClosedAfterEach } from '../../../test/helpers/test-pipelines.ts'
import { protoType } from '../streams/proto.ts'
import type { Output } from './envelope.ts'
import { FILTERED_CONTENT_TYPE, JSON_CONTENT_TYPE } from './encode.ts'
import { fromValue } from '../../../test/helpers/protobuf-value.ts'

const ALLOWLIST = join(import.meta.dirname, '../../../test/policies/allowlist')
const SPARKPLUG = join(import.meta.dirname, '../../../test/policies/sparkplug')

/** One message per canonical stream, in its JSON form. */
const CASES = [
  {
    category: 'smart_plug',
    stream: 'energy',
    type: 'veil.canonical.v1.SmartPlugEnergy',
    doc: { ts: 1772366400, total_kwh: 12.345, power_w: 61.5, relay: 'on' },
  },
  {
    category: 'camera',
    stream: 'event',
    type: 'veil.canonical.v1.CameraEvent',
    doc: { ts: 1772366400, type: 'start', label: 'person', score: 0.82, zones: ['drive', 'porch'], sub_label: 'Bob' },
  },
  {
    category: 'robot_vacuum',
    stream: 'status',
    type: 'veil.canonical.v1.RobotVacuumStatus',
    doc: { ts: 1772366400, battery_pct: 80, state: 'cleaning' },
  },
  {
    category: 'body_scale',
    stream: 'measurement',
    type: 'veil.canonical.v1.BodyScaleMeasurement',
    doc: { ts: 1772366400, weight_kg: 72.4, impedance_ohm: 512, battery_pct: 60 },
  },
  {
    category: 'gps_tracker',
    stream: 'location',
    type: 'veil.canonical.v1.GpsTrackerLocation',
    doc: { ts: 1772366400, lat: 52.52, lon: 13.405, acc_m: 12, battery_pct: 77 },
  },
] as const

const encode = (type: string, doc: Record<string, unknown>): Buffer => Buffer.from(protoType(type).encode(doc).finish())
const T = 1772366400000

const pipeline = pipelinesClosedAfterEach()

describe('canonical streams in protobuf', () => {
  it("decode to the JSON stream's content: same validation, same policy, same topic, same output", async () => {
    const { pipeline: p } = pipeline({ policies: ALLOWLIST })
    for (const c of CASES) {
      const fromJson = await p.process(`devices/${c.category}/dev-1/${c.stream}`, Buffer.from(JSON.stringify(c.doc)), T)
      const fromProto = await p.process(`devices/${c.category}/dev-1/${c.stream}/pb`, encode(c.type, c.doc), T)
      expect(fromJson.outputs.length, c.category).toBeGreaterThan(0)
      expect(fromProto.outputs.map((o) => [o.topic, o.payload.toString()])).toEqual(
        fromJson.outputs.map((o) => [o.topic, o.payload.toString()]),
      )
      expect(fromProto.stream).toBe(c.stream)
    }
  })

  it('a field absent on the wire is absent in the document: no default zeros reach a policy', async () => {
    const { pipeline: p } = pipeline({ policies: SPARKPLUG })
    const r = await p.process(
      'devices/smart_plug/dev-1/energy/pb',
      encode('veil.canonical.v1.SmartPlugEnergy', { ts: 0, total_kwh: 0 }),
      T,
    )
    expect(JSON.parse((r.outputs[0] as Output).payload.toString()).data).toEqual({ ts: 0, total_kwh: 0 })
  })

  it('validates against the JSON Schema: out-of-range values and missing required fields are invalid', async () => {
    const { pipeline: p, metrics } = pipeline({ policies: ALLOWLIST })
    expect(
      (
        await p.process(
          'devices/gps_tracker/d/location/pb',
          encode('veil.canonical.v1.GpsTrackerLocation', { ts: 1, lat: 100, lon: 0 }),
          T,
        )
      ).dropped,
    ).toEqual({ stage: 'validate', reason: 'invalid' })
    expect(
      (
        await p.process(
          'devices/camera/d/event/pb',
          encode('veil.canonical.v1.CameraEvent', { ts: 1, type: 'start' }),
          T,
        )
      ).dropped,
    ).toEqual({ stage: 'validate', reason: 'invalid' })
    expect(
      (
        await p.process(
          'devices/smart_plug/d/energy/pb',
          encode('veil.canonical.v1.SmartPlugEnergy', { ts: 1, relay: 'maybe' }),
          T,
        )
      ).dropped,
    ).toEqual({ stage: 'validate', reason: 'invalid' })
    expect(await counterValue(metrics, 'veil_messages_dropped_total', { stage: 'validate', reason: 'invalid' })).toBe(3)
  })

  it('a protobuf domain receives veil.v1.Filtered with the same data, a JSON domain JSON; content types say which', async () => {
    const { pipeline: p } = pipeline({ policies: SPARKPLUG, encodings: { svc: 'protobuf' } })
    const r = await p.process(
      'devices/smart_plug/dev-1/energy/pb',
      encode('veil.canonical.v1.SmartPlugEnergy', CASES[0].doc),
      T,
    )
    const out = r.outputs[0] as Output
    expect(out.contentType).toBe(FILTERED_CONTENT_TYPE)
    const type = protoType('veil.v1.Filtered')
    const decoded = type.toObject(type.decode(out.payload), { defaults: false }) as {
      policy: string
      data: Record<string, unknown>
    }
    expect(decoded.policy).toBe(p.policyVersion)
    expect(fromValue(decoded.data)).toEqual({ ts: 1772366400, total_kwh: 12.345, power_w: 61.5 })

    const { pipeline: q } = pipeline({ policies: SPARKPLUG })
    const j = (
      await q.process(
        'devices/smart_plug/dev-1/energy/pb',
        encode('veil.canonical.v1.SmartPlugEnergy', CASES[0].doc),
        T,
      )
    ).outputs[0] as Output
    expect(j.contentType).toBe(JSON_CONTENT_TYPE)
    expect(JSON.parse(j.payload.toString()).data).toEqual(fromValue(decoded.data))
  })
})

describe('malformed protobuf', () => {
  const valid = encode('veil.canonical.v1.CameraEvent', {
    ts: 1772366400,
    type: 'start',
    label: 'person',
    score: 0.8,
    zones: ['a'],
  })
  const topic = 'devices/camera/d/event/pb'

  it('is dropped with a reason, counted, never forwarded: truncation, wrong wire types, unknown fields, huge lengths', async () => {
    const { pipeline: p, metrics } = pipeline({ policies: ALLOWLIST })
    const drop = async (bytes: Buffer): Promise<string | undefined> => {
      const r = await p.process(topic, bytes, T)
      expect(r.outputs).toEqual([])
      return r.dropped?.reason
    }
    for (let cut = 1; cut < valid.length; cut++) {
      const r = await p.process(topic, valid.subarray(0, cut), T)
      // Cut inside a field: undecodable. Cut between fields: a shorter message, which lacks `label` or is whole.
      if (r.dropped !== undefined) expect(['undecodable', 'invalid']).toContain(r.dropped.reason)
    }
    // ts (uint64, field 1) sent length-delimited; label (string, field 3) sent as a varint; score (double) as fixed32.
    expect(await drop(Buffer.from([0x0a, 0x01, 0x00]))).toBe('undecodable')
    expect(await drop(Buffer.from([0x18, 0x05]))).toBe('undecodable')
    expect(await drop(Buffer.from([0x25, 0, 0, 0, 0]))).toBe('undecodable')
    // Field 15, which CameraEvent does not declare: canonical messages are as strict as their JSON Schemas.
    expect(await drop(Buffer.concat([valid, Buffer.from([0x78, 0x01])]))).toBe('invalid')
    // label with a length of 2^32 - 1; a length that runs 1 byte past the end; invalid UTF-8; a group; field 0.
    expect(await drop(Buffer.from([0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x61]))).toBe('undecodable')
    expect(await drop(Buffer.from([0x1a, 0x03, 0x61, 0x62]))).toBe('undecodable')
    expect(await drop(Buffer.from([0x1a, 0x02, 0xc3, 0x28]))).toBe('undecodable')
    expect(await drop(Buffer.from([0x1b, 0x1c]))).toBe('undecodable')
    expect(await drop(Buffer.from([0x02, 0x00]))).toBe('undecodable')
    expect(
      await counterValue(metrics, 'veil_messages_dropped_total', { stage: 'decode', reason: 'undecodable' }),
    ).toBeGreaterThanOrEqual(8)
    expect(
      await counterValue(metrics, 'veil_messages_dropped_total', { stage: 'decode', reason: 'invalid' }),
    ).toBeGreaterThanOrEqual(1)
  })

  it('fuzz: random and mutated bytes never crash and never forward anything but allowlisted fields', async () => {
    const { pipeline: p } = pipeline({ policies: ALLOWLIST, encodings: { ana: 'protobuf' } })
    const mutated = fc
      .tuple(
        fc.integer({ min: 0, max: valid.length - 1 }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: valid.length }),
      )
      .map(([i, b, cut]) => {
        const copy = Buffer.from(valid)
        copy[i] = b
        return copy.subarray(0, Math.max(cut, i + 1))
      })
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 96 }).map((a) => Buffer.from(a)),
          mutated,
        ),
        async (bytes) => {
          const r = await p.process(topic, bytes, T)
          if (r.dropped !== undefined) expect(['undecodable', 'invalid']).toContain(r.dropped.reason)
          for (const out of r.outputs.filter((o) => o.domain === 'svc')) {
            const data = JSON.parse(out.payload.toString()).data as Record<string, unknown>
            for (const key of Object.keys(data)) expect(['type', 'label']).toContain(key)
          }
        },
      ),
      { numRuns: 500 },
    )
  })
})
