import { describe, expect, it } from 'vitest'
import { runConsent } from '../../bench/consent.ts'
import { benchPolicies, e2eMessages } from '../../bench/e2e.ts'
import { MARKER, type LoadResult } from '../../bench/loadgen.ts'
import { runInProcess } from '../../bench/inprocess.ts'
import { runMap } from '../../bench/map.ts'
import { measureOffload } from '../../bench/offload.ts'
import { typicalMessages } from '../../bench/messages.ts'
import { runProtobuf } from '../../bench/protobuf.ts'
import { cpuTicks, runChild, startMosquitto } from '../../bench/processes.ts'
import { machine, toMarkdown } from '../../bench/report.ts'
import { parseArgs } from '../../bench/run.ts'
import { benchPipeline } from '../../bench/pipeline.ts'
import { findMosquitto } from '../helpers/mosquitto.ts'
import { tempDir } from '../helpers/gateway.ts'

// The benchmark suite (npm run bench) with tiny counts, to catch breakage. No timing is asserted: CI machines
// are shared and slow; the figures belong in BENCHMARKS.md, measured on a quiet machine.
describe('benchmark suite', () => {
  it("(a) runs every category's typical message through the pipeline and its floor", async () => {
    const rows = await runInProcess({ rounds: 2, batch: 5, warmup: 5, stepMs: 10_000 })
    expect(rows.map((r) => r.stream)).toEqual(typicalMessages().map((m) => m.stream))
    for (const row of rows) {
      expect(row.floorNs).toBeGreaterThan(0)
      expect(row.pipelineNs).toBeGreaterThan(0)
      expect(Number.isFinite(row.ratio)).toBe(true)
      // Every message is classified and decoded; the breakdown names each stage.
      expect(row.stagesNs.classify).toBeGreaterThan(0)
      expect(row.stagesNs.decode).toBeGreaterThan(0)
      expect(Object.keys(row.stagesNs).sort()).toEqual([
        'classify',
        'decode',
        'encode',
        'filter',
        'route',
        'runner',
        'validate',
      ])
    }
    // The default policies: one copy of a camera event (svc; ana's hourly aggregate absorbs it), none of Valetudo's
    // room names.
    expect(rows.find((r) => r.stream === 'frigate/events')?.outputsPerMessage).toBe(1)
    expect(rows.find((r) => r.stream === 'valetudo/segments')?.outputsPerMessage).toBe(0)
    const md = toMarkdown({
      date: 'now',
      mode: 'quick',
      machine: { ...machine(), loadEnd: 0 },
      inprocess: rows,
      errors: [],
    })
    expect(md).toContain('| camera | frigate/events |')
    expect(md).toContain('| stream | classify | decode | validate | filter | encode | route | runner |')
  }, 60_000)

  it('(e) runs the same content as JSON, protobuf and Sparkplug B through decode, encode and the pipeline', async () => {
    const rows = await runProtobuf({ rounds: 2, batch: 5, warmup: 5, stepMs: 10_000 })
    const label = (r: (typeof rows)[number]): string =>
      `${r.content} ${r.step} ${r.input}${r.output === undefined ? '' : ` → ${r.output}`}`
    expect(rows.map(label)).toEqual([
      'smart_plug/energy decode JSON',
      'smart_plug/energy decode protobuf',
      'smart_plug/energy pipeline JSON → JSON',
      'smart_plug/energy pipeline protobuf → JSON',
      'smart_plug/energy pipeline protobuf → protobuf',
      'camera/event decode JSON',
      'camera/event decode protobuf',
      'camera/event pipeline JSON → JSON',
      'camera/event pipeline protobuf → JSON',
      'camera/event pipeline protobuf → protobuf',
      'sparkplug/NDATA decode JSON',
      'sparkplug/NDATA decode Sparkplug B',
      'sparkplug/NDATA encode JSON',
      'sparkplug/NDATA encode Sparkplug B',
      'sparkplug/NDATA pipeline Sparkplug B → JSON',
      'sparkplug/NDATA pipeline Sparkplug B → Sparkplug B',
    ])
    for (const row of rows) {
      expect(row.ns).toBeGreaterThan(0)
      expect(Number.isFinite(row.ratio)).toBe(true)
      if (row.step !== 'pipeline') expect(row.outputsPerMessage).toBeUndefined()
      if (row.step === 'encode') expect(row.bytesIn).toBeUndefined()
    }
    // Every reference row is its own denominator; protobuf is the smaller wire form of the same content.
    expect(rows.filter((r) => r.step === 'pipeline' && r.input === 'JSON').map((r) => r.ratio)).toEqual([1, 1])
    for (const content of ['smart_plug/energy', 'camera/event']) {
      const of = rows.filter((r) => r.content === content)
      expect(of.find((r) => r.input === 'protobuf')?.bytesIn).toBeLessThan(
        of.find((r) => r.input === 'JSON')?.bytesIn ?? 0,
      )
      // JSON in or protobuf in: the same copies leave, byte for byte as long (runProtobuf compares them exactly).
      const jsonOut = of.filter((r) => r.output === 'JSON').map((r) => r.bytesOut)
      expect(jsonOut[0]).toBe(jsonOut[1])
    }
    // Sparkplug B: the smaller form of the same content going in, and of svc's copy going out.
    const sp = rows.filter((r) => r.content === 'sparkplug/NDATA')
    expect(sp.find((r) => r.step === 'decode' && r.input === 'Sparkplug B')?.bytesIn).toBeLessThan(
      sp.find((r) => r.step === 'decode' && r.input === 'JSON')?.bytesIn ?? 0,
    )
    expect(sp.find((r) => r.step === 'encode' && r.input === 'Sparkplug B')?.bytesOut).toBeLessThan(
      sp.find((r) => r.step === 'encode' && r.input === 'JSON')?.bytesOut ?? 0,
    )
    // The test policy passes canonical energy to svc only, camera events too (ana aggregates them), Sparkplug metrics
    // to svc and ana.
    expect(rows.filter((r) => r.step === 'pipeline').map((r) => r.outputsPerMessage)).toEqual([1, 1, 1, 1, 1, 1, 2, 2])
    const md = toMarkdown({
      date: 'now',
      mode: 'quick',
      machine: { ...machine(), loadEnd: 0 },
      protobuf: rows,
      errors: [],
    })
    expect(md).toContain('## (e) Protobuf against JSON')
    expect(md).toContain('| sparkplug/NDATA | pipeline | Sparkplug B → Sparkplug B |')
    expect(md).toContain('| sparkplug/NDATA | encode | Sparkplug B |  |')
  }, 60_000)

  it('(f) times the consent lookup and the pipeline with a household-only book against 1 000 subjects', async () => {
    const result = await runConsent({
      rounds: 2,
      batch: 5,
      warmup: 5,
      stepMs: 10_000,
      subjects: 1_000,
      lookupBatch: 50,
    })
    expect(result.lookups.map((r) => r.book)).toEqual([
      'loop only',
      'household only',
      '1,000 subjects, hit',
      '1,000 subjects, miss',
    ])
    for (const row of result.lookups) expect(row.ns).toBeGreaterThan(0)
    expect(result.pipeline.map((r) => r.stream)).toEqual(['tasmota/sensor', 'owntracks/location'])
    for (const row of result.pipeline) {
      for (const ns of [row.householdNs, row.householdAgainNs, row.subjectsNs]) expect(ns).toBeGreaterThan(0)
      // The subject holds the household's defaults: the same variants, so the same copies leave.
      expect(row.outputsSubjects).toBe(row.outputsHousehold)
    }
    const md = toMarkdown({
      date: 'now',
      mode: 'quick',
      machine: { ...machine(), loadEnd: 0 },
      consent: result,
      errors: [],
    })
    expect(md).toContain('## (f) Consent per message')
    expect(md).toContain('| 1,000 subjects, hit |')
    expect(md).toContain('| gps_tracker | owntracks/location |')
  }, 60_000)

  it('offload: measures the pipeline on the main thread and in a worker thread', async () => {
    const [row] = await measureOffload(['valetudo/status'], 200, 8)
    expect(row?.stream).toBe('valetudo/status')
    for (const v of [row?.inlineUsPerMessage, row?.offloadedMainUsPerMessage, row?.offloadedWorkerUsPerMessage])
      expect(v).toBeGreaterThan(0)
  }, 60_000)

  it('(c) runs the largest map through the pipeline and measures the loop', async () => {
    const row = await runMap({ runs: 1 })
    expect(row.fixture).toBe('dreame_l10su_3031_giant.json')
    // Inflated and validated, then forwarded to no domain: the shipped policy sends no map (issue 13 part 8).
    expect(row.outputs).toBe(0)
    expect(row.maxBlockMs).toBeGreaterThan(0)
  }, 60_000)

  it('(b) the sequence marker survives the benchmark policy, and only it is added', async () => {
    const dir = tempDir()
    const data = tempDir()
    try {
      const bench = benchPipeline(data.path, benchPolicies(dir.path))
      const [message] = e2eMessages(1)
      const result = await bench.pipeline.process(message?.topic ?? '', Buffer.from(message?.payload ?? ''))
      await bench.close()
      const svc = result.outputs.find((o) => o.domain === 'svc')
      expect(svc?.payload.toString()).toContain(`"id":"${MARKER}aaaaaaaa"`)
      const data_ = (JSON.parse(svc?.payload.toString() ?? '{}') as { data: { after: Record<string, unknown> } }).data
      const allowed = ['active', 'end_time', 'false_positive', 'has_clip', 'id', 'label', 'start_time', 'top_score']
      expect(Object.keys(data_.after)).toContain('id')
      for (const key of Object.keys(data_.after)) expect(allowed).toContain(key)
      expect(data_.after).not.toHaveProperty('camera')
      // ana's aggregate absorbs the message: no copy at all, so no marker.
      expect(result.outputs.find((o) => o.domain === 'ana')).toBeUndefined()
    } finally {
      dir.remove()
      data.remove()
    }
  })

  it.skipIf(findMosquitto() === undefined)(
    '(b) the load generator counts and times messages through a private mosquitto',
    async () => {
      const mosquitto = await startMosquitto()
      try {
        const ticksBefore = cpuTicks(mosquitto.pid)
        const result = await runChild<LoadResult>(
          'bench/loadgen.ts',
          {
            devices: { host: '127.0.0.1', port: mosquitto.port },
            consumer: { host: '127.0.0.1', port: mosquitto.port },
            subscribe: 'frigate/events',
            qos: 1,
            messages: e2eMessages(2),
            rate: 400,
            warmupMs: 100,
            durationMs: 500,
            window: 8,
            settleMs: 3000,
            seqBase: 0,
          },
          15_000,
        )
        expect(result.sent).toBeGreaterThan(0)
        expect(result.received).toBe(result.sent)
        expect(result.duplicates).toBe(0)
        expect(Number.isFinite(result.p99Ms)).toBe(true)
        // The broker's CPU time, for the per-message figures of section (b).
        expect(Number.isInteger(ticksBefore) && ticksBefore >= 0).toBe(true)
        expect(cpuTicks(mosquitto.pid)).toBeGreaterThanOrEqual(ticksBefore)
      } finally {
        await mosquitto.stop()
      }
    },
    60_000,
  )

  it('parses the command line', () => {
    expect(parseArgs(['--quick', '--only=a,c'])).toMatchObject({
      quick: true,
      only: ['inprocess', 'map'],
      json: undefined,
    })
    expect(parseArgs(['--only=e']).only).toEqual(['protobuf'])
    expect(parseArgs(['--only=f']).only).toEqual(['consent'])
    expect(parseArgs(['--json=/tmp/x.json']).json).toBe('/tmp/x.json')
    expect(() => parseArgs(['--only=z'])).toThrow(/unknown section z/)
  })
})
