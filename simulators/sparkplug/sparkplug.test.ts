import { describe, expect, it } from 'vitest'
import { decodePayload, toNumber } from '../../filters/profiles/sparkplug/codec.ts'
import type { WirePayload } from '../../filters/profiles/sparkplug/codec.ts'
import { counterValue, testPipeline } from '../../filters/profiles/sparkplug/testing.ts'
import { findCanaries } from '../../test/helpers/canary.ts'
import type { SimMessage } from '../types.ts'
import { sparkplugIdentity, sparkplugProfile } from './index.ts'

const T0 = Date.UTC(2026, 2, 1, 6)
const HOUR = 3_600_000

function decoded(m: SimMessage): WirePayload {
  const payload = decodePayload(m.payload)
  if (typeof payload === 'string') throw new Error(`${m.topic}: ${payload}`)
  return payload
}

function run(ticks: number, stepMs: number, count = 2, seed = 3): { messages: SimMessage[]; times: number[] } {
  const devices = sparkplugProfile.createDevices(count, seed)
  const messages: SimMessage[] = []
  const times: number[] = []
  const push = (t: number, batch: SimMessage[]): void => {
    for (const m of batch) {
      messages.push(m)
      times.push(t)
    }
  }
  for (const d of devices) push(T0, d.start(T0))
  for (let i = 1; i <= ticks; i++) for (const d of devices) push(T0 + i * stepMs, d.tick(T0 + i * stepMs))
  return { messages, times }
}

describe('sparkplug simulator', () => {
  it('names groups after sites and edge nodes after serials; one or two devices by kind', () => {
    const [meter, plc] = sparkplugProfile.createDevices(2, 1)
    expect(meter!.id).toBe('CanaryMillbrook/edge-CA5B0000')
    expect(plc!.id).toBe('CanaryHarbourside/edge-CA5B0001')
    expect(meter!.start(T0).map((m) => m.topic)).toEqual([
      'spBv1.0/CanaryMillbrook/NBIRTH/edge-CA5B0000',
      'spBv1.0/CanaryMillbrook/DBIRTH/edge-CA5B0000/Meter1',
    ])
    expect(plc!.start(T0).map((m) => m.topic)).toEqual([
      'spBv1.0/CanaryHarbourside/NBIRTH/edge-CA5B0001',
      'spBv1.0/CanaryHarbourside/DBIRTH/edge-CA5B0001/Pump1',
      'spBv1.0/CanaryHarbourside/DBIRTH/edge-CA5B0001/Compressor1',
    ])
  })

  it('declares names, aliases and types in births and sends data by alias only', () => {
    const { messages } = run(20, 60_000, 1)
    const nbirth = decoded(messages[0]!)
    expect(toNumber(nbirth.seq)).toBe(0)
    const bdSeq = nbirth.metrics!.find((m) => m.name === 'bdSeq')!
    expect(bdSeq.datatype).toBe(8)
    const aliased = nbirth.metrics!.filter((m) => m.name !== 'bdSeq')
    for (const m of aliased)
      expect(m).toMatchObject({ name: expect.any(String), alias: expect.anything(), datatype: expect.any(Number) })
    expect(new Set(aliased.map((m) => toNumber(m.alias))).size).toBe(aliased.length)
    expect(aliased.find((m) => m.name === 'Properties/MAC Address')?.string_value).toBe('CA:11:A7:0B:00:01')
    for (const m of messages.filter((m) => /\/(NDATA|DDATA)\//.test(m.topic))) {
      const metrics = decoded(m).metrics!
      expect(metrics.length).toBeGreaterThan(0)
      for (const metric of metrics) {
        expect(metric.name).toBeUndefined()
        expect(metric.datatype).toBeUndefined()
        expect(toNumber(metric.alias)).toBeGreaterThan(0)
      }
    }
  })

  it('counts seq 0..255 per edge node, wrapping, and re-births with the next bdSeq after NDEATH', () => {
    const { messages } = run(48 * 12, 5 * 60_000, 1)
    let seq: number | undefined
    let bdSeq: number | undefined
    let wraps = 0
    let deaths = 0
    for (const m of messages) {
      const type = m.topic.split('/')[2]
      const payload = decoded(m)
      const metricBdSeq = toNumber(payload.metrics!.find((x) => x.name === 'bdSeq')?.long_value)
      if (type === 'NDEATH') {
        expect(payload.seq).toBeUndefined()
        expect(metricBdSeq).toBe(bdSeq)
        expect(m.qos).toBe(1)
        deaths++
        continue
      }
      const next = toNumber(payload.seq)!
      if (type === 'NBIRTH') {
        expect(next).toBe(0)
        if (bdSeq !== undefined) expect(metricBdSeq).toBe((bdSeq + 1) % 256)
        bdSeq = metricBdSeq
      } else {
        expect(next).toBe((seq! + 1) % 256)
        if (next === 0) wraps++
      }
      seq = next
    }
    expect(deaths).toBeGreaterThanOrEqual(2)
    expect(wraps).toBeGreaterThan(0)
  })

  it('registers the NDEATH of the coming birth as its Will', () => {
    const [node] = sparkplugProfile.createDevices(1, 9)
    const identity = sparkplugIdentity(node!, T0)
    expect(identity.clientId).toBe('edge-CA5B0000')
    expect(identity.will?.topic).toBe('spBv1.0/CanaryMillbrook/NDEATH/edge-CA5B0000')
    const willBdSeq = toNumber(decoded(identity.will!).metrics![0]!.long_value)
    const birth = decoded(node!.start(T0)[0]!)
    expect(toNumber(birth.metrics!.find((m) => m.name === 'bdSeq')!.long_value)).toBe(willBdSeq)
  })

  it('is read by the gateway as a host would: no gap, no unknown alias, no stale death; named metrics leave without identifiers', async () => {
    const p = testPipeline()
    try {
      const devices = sparkplugProfile.createDevices(2, 5)
      const { messages, times } = run(48 * 4, HOUR / 4, 2, 5)
      const forwarded: string[] = []
      for (const [i, m] of messages.entries()) {
        const result = await p.pipeline.process(m.topic, m.payload, times[i]!)
        expect(result.dropped?.stage, m.topic).not.toBe('decode')
        for (const out of result.outputs) forwarded.push(`${out.topic}\n${out.payload.toString('utf8')}`)
      }
      for (const event of ['seq_gap', 'unknown_alias', 'stale_death', 'data_before_birth']) {
        expect(await counterValue(p.metrics, 'veil_sparkplug_events_total', { event }), event).toBe(0)
      }
      expect(await counterValue(p.metrics, 'veil_sparkplug_events_total', { event: 'death' })).toBeGreaterThan(0)
      const text = forwarded.join('\n')
      expect(text).toContain('"name":"Energy/Total"')
      expect(
        findCanaries(
          text,
          devices.flatMap((d) => [...d.canaries, d.id]),
        ),
      ).toEqual([])
    } finally {
      p.close()
    }
  })
})
