import { spawnSync } from 'node:child_process'
import { cpus, loadavg, totalmem } from 'node:os'
import { findMosquitto } from '../test/helpers/mosquitto.ts'
import type { ConsentResult } from './consent.ts'
import type { E2eRow } from './e2e.ts'
import type { IdleRow } from './idle.ts'
import { IDLE_TARGET_MB } from './idle.ts'
import type { InProcessRow } from './inprocess.ts'
import type { MapRow } from './map.ts'
import type { ProtobufRow } from './protobuf.ts'

export interface Machine {
  readonly cpus: number
  readonly model: string
  readonly memoryGb: number
  readonly node: string
  readonly mosquitto: string
  /** 1-minute load average when the suite started and ended: above the core count, figures are noisy. */
  readonly loadStart: number
  loadEnd: number
}

export interface Results {
  readonly date: string
  readonly mode: 'quick' | 'full'
  readonly machine: Machine
  inprocess?: InProcessRow[]
  e2e?: E2eRow[]
  map?: MapRow
  idle?: IdleRow[]
  protobuf?: ProtobufRow[]
  consent?: ConsentResult
  readonly errors: { section: string; error: string }[]
}

export function machine(): Machine {
  const mosquitto = findMosquitto()
  const version =
    mosquitto === undefined
      ? 'not installed'
      : (/version ([\d.]+)/.exec(spawnSync(mosquitto, ['-h'], { encoding: 'utf8' }).stdout)?.[1] ?? 'unknown')
  return {
    cpus: cpus().length,
    model: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    mosquitto: version,
    loadStart: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    loadEnd: Number.NaN,
  }
}

const n = (v: number, digits = 0): string =>
  Number.isFinite(v)
    ? v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : 'n/a'
const mark = (ok: boolean): string => (ok ? 'yes' : '**no**')

function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n')
}

/** The figures as Markdown: printed to stdout and written to bench/results/latest.md. */
export function toMarkdown(r: Results): string {
  const m = r.machine
  const loaded = Math.max(m.loadStart, m.loadEnd) > m.cpus
  const out: string[] = [
    `# Veil benchmark results (${r.mode})`,
    '',
    `${r.date}; ${m.cpus} × ${m.model}, ${m.memoryGb} GB; Node ${m.node}; mosquitto ${m.mosquitto}; load average ${n(m.loadStart, 2)} at start, ${n(m.loadEnd, 2)} at end.`,
  ]
  if (loaded)
    out.push(
      '',
      `**Measured under load** (load average above the ${m.cpus} cores): the figures are noisy; rerun on a quiet machine.`,
    )
  if (r.inprocess !== undefined) {
    out.push(
      '',
      '## (a) In-process pipeline against the JSON floor',
      '',
      'Median ns per message over interleaved batches; floor = bytes → JSON.parse → JSON.stringify → bytes of the same payload. Target: ratio ≤ 1.1.',
      '',
    )
    out.push(
      table(
        ['category', 'stream', 'bytes', 'floor ns', 'pipeline ns', 'ratio', 'copies out per message', 'target met'],
        r.inprocess.map((x) => [
          x.category,
          x.stream,
          String(x.bytes),
          n(x.floorNs),
          n(x.pipelineNs),
          n(x.ratio, 2),
          n(x.outputsPerMessage, 3),
          mark(x.ratio <= x.target),
        ]),
      ),
    )
    out.push(
      '',
      'Where the time goes: ns per message in each stage, from a separate pass with every stage timed (the clock reads add a little). Runner: the rest (stage counters, duration histogram, the promise per message). A withheld copy is counted and audited in the stage that withheld it.',
      '',
      table(
        ['stream', 'classify', 'decode', 'validate', 'filter', 'encode', 'route', 'runner'],
        r.inprocess.map((x) => [
          x.stream,
          n(x.stagesNs.classify),
          n(x.stagesNs.decode),
          n(x.stagesNs.validate),
          n(x.stagesNs.filter),
          n(x.stagesNs.encode),
          n(x.stagesNs.route),
          n(x.stagesNs.runner),
        ]),
      ),
    )
  }
  if (r.e2e !== undefined) {
    out.push(
      '',
      '## (b) End to end over loopback',
      '',
      "Devices → broker under test → consumer. mosquitto: devices publish to mosquitto, the consumer subscribes there. aedes bridge and Veil: devices → aedes (plain bridge, no filtering) or Veil → upstream mosquitto → consumer. Frigate event updates (1.9 kB). Ratio = received msg/s over mosquitto's; added p99 = p99 − mosquitto's p99. Targets: Veil QoS 1 flat out ≥ 1.0 × mosquitto; added p99 ≤ 2 ms at the fixed rate.",
      '',
    )
    out.push(
      table(
        [
          'target',
          'QoS',
          'mode',
          'sent msg/s',
          'received msg/s',
          'ratio',
          'p50 ms',
          'p99 ms',
          'added p99 ms',
          'lost',
          'behind',
        ],
        r.e2e.map((x) => [
          x.target,
          String(x.qos),
          x.mode === 'flat out' ? 'flat out' : `${n(x.rate)}/s`,
          n(x.result.sentPerSec),
          n(x.result.receivedPerSec),
          n(x.throughputRatio, 2),
          n(x.result.p50Ms, 2),
          n(x.result.p99Ms, 2),
          n(x.addedP99Ms, 2),
          n(x.result.lost),
          n(x.result.behind),
        ]),
      ),
    )
    out.push(
      '',
      'CPU time per message sent (user + system, from /proc, over the whole run, warm-up included), µs: the broker under test; the upstream mosquitto that Veil and the aedes bridge forward to; the load generator with its consumer. All of them share the same cores, so a broker that costs more per message leaves less for the rest.',
      '',
      table(
        ['target', 'QoS', 'mode', 'broker µs/msg', 'upstream µs/msg', 'generator µs/msg'],
        r.e2e.map((x) => [
          x.target,
          String(x.qos),
          x.mode === 'flat out' ? 'flat out' : `${n(x.rate)}/s`,
          n(x.cpuUsPerMessage.target, 1),
          x.cpuUsPerMessage.upstream === undefined ? '–' : n(x.cpuUsPerMessage.upstream, 1),
          n(x.cpuUsPerMessage.generator, 1),
        ]),
      ),
    )
  }
  if (r.map !== undefined) {
    const x = r.map
    out.push(
      '',
      '## (c) Largest Valetudo map through map_minimize',
      '',
      `Target: no event-loop block over ${x.target} ms.`,
      '',
    )
    out.push(
      table(
        [
          'fixture',
          'JSON bytes',
          'zlib bytes',
          'median ms',
          'longest block ms',
          'median block ms',
          'histogram max ms',
          'target met',
        ],
        [
          [
            x.fixture,
            n(x.jsonBytes),
            n(x.zlibBytes),
            n(x.medianMs, 1),
            n(x.maxBlockMs, 1),
            n(x.medianBlockMs, 1),
            n(x.histogramMaxMs, 1),
            mark(x.maxBlockMs <= x.target),
          ],
        ],
      ),
    )
  }
  if (r.idle !== undefined) {
    out.push(
      '',
      '## (d) Memory with idle device connections',
      '',
      `RSS from /proc/<pid>/status. Target: Veil ≤ ${IDLE_TARGET_MB} MB at 10k connections.`,
      '',
    )
    out.push(
      table(
        [
          'target',
          'connections',
          'failed',
          'connect ms',
          'RSS before MB',
          'RSS after MB',
          'MB per 1k',
          'RSS at 10k MB',
          'target met',
        ],
        r.idle.map((x) => [
          x.target,
          n(x.connections),
          n(x.failed),
          n(x.connectMs),
          n(x.rssBeforeMb, 1),
          n(x.rssAfterMb, 1),
          n(x.mbPer1k, 2),
          n(x.rssAt10kMb, 1),
          x.target === 'veil' ? mark(x.rssAt10kMb <= IDLE_TARGET_MB) : '',
        ]),
      ),
    )
  }
  if (r.protobuf !== undefined) {
    out.push(
      '',
      '## (e) Protobuf against JSON for the same content',
      '',
      "Median ns per message over interleaved batches, all rows in one process. Decode: bytes → JSON.parse, or Veil's one-pass protobuf or Sparkplug B decoder (wire check and plain object in one pass). Encode: one filtered copy written as JSON or Sparkplug B, as the encode stage does. Pipeline: classify, decode, validate, filter, encode, route, with both domains' output encoding JSON or protobuf (veil.v1.Filtered; Sparkplug B streams leave as Sparkplug B). Ratio against the JSON in, JSON out pipeline of the same content; Sparkplug B rows against the smart plug's.",
      '',
    )
    out.push(
      table(
        ['content', 'step', 'in → out', 'bytes in', 'bytes out', 'ns per message', 'ratio', 'copies out per message'],
        r.protobuf.map((x) => [
          x.content,
          x.step,
          x.output === undefined ? x.input : `${x.input} → ${x.output}`,
          x.bytesIn === undefined ? '' : String(x.bytesIn),
          x.bytesOut === undefined ? '' : String(x.bytesOut),
          n(x.ns),
          n(x.ratio, 2),
          x.outputsPerMessage === undefined ? '' : n(x.outputsPerMessage, 3),
        ]),
      ),
    )
  }
  if (r.consent !== undefined) {
    const c = r.consent
    const subjects = n(c.subjects)
    out.push(
      '',
      '## (f) Consent per message',
      '',
      `\`ConsentBook.of(profile, deviceId)\`, the filter stage's one lookup per message: median ns per lookup over interleaved batches cycling through 1 024 devices; the household-only book, and a book of ${subjects} subjects each claiming two devices (hit: a claimed device; miss: an unclaimed one of a claimed profile). Loop only: the same loop reading a key without a lookup.`,
      '',
    )
    out.push(
      table(
        ['book', 'ns per lookup'],
        c.lookups.map((x) => [x.book, n(x.ns, 1)]),
      ),
    )
    out.push(
      '',
      `The pipeline (as in (a)) with the household-only book, the same again (the difference between the two is the noise), and the ${subjects}-subject book where the device belongs to a subject holding the household's defaults (the same variants, the same copies out): median ns per message, interleaved. Budget: consent adds at most ${n(c.budgetNs)} ns (0.1 µs) per message.`,
      '',
    )
    out.push(
      table(
        [
          'category',
          'stream',
          'household ns',
          'household again ns',
          `${subjects} subjects ns`,
          'difference ns',
          'noise ns',
          'copies out (household, subjects)',
          'within budget',
        ],
        c.pipeline.map((x) => [
          x.category,
          x.stream,
          n(x.householdNs),
          n(x.householdAgainNs),
          n(x.subjectsNs),
          n(x.deltaNs),
          n(x.noiseNs),
          `${n(x.outputsHousehold, 3)}, ${n(x.outputsSubjects, 3)}`,
          mark(x.deltaNs <= c.budgetNs),
        ]),
      ),
    )
  }
  for (const e of r.errors) out.push('', `**${e.section} failed:** ${e.error}`)
  return `${out.join('\n')}\n`
}
