import { join } from 'node:path'
import type { StageName } from '../gateway/src/sdk/model.ts'
import { tempDir } from '../test/helpers/gateway.ts'
import { typicalMessages, type TypicalMessage } from './messages.ts'
import { benchPipeline } from './pipeline.ts'
import { round } from './stats.ts'
import { interleave, nsPerOp, warmUp } from './timing.ts'

export interface InProcessOptions {
  /** Alternating rounds: each times one batch of the floor, then one of the pipeline (and the reverse next round). */
  readonly rounds: number
  readonly batch: number
  readonly warmup: number
  /** Simulated time between two messages of the device, ms: windows, rate limits and noise caches see this clock. */
  readonly stepMs: number
}

export const INPROCESS_FULL: InProcessOptions = { rounds: 150, batch: 400, warmup: 20_000, stepMs: 10_000 }
export const INPROCESS_QUICK: InProcessOptions = { rounds: 20, batch: 200, warmup: 2_000, stepMs: 10_000 }

export interface InProcessRow {
  readonly category: string
  readonly stream: string
  readonly bytes: number
  /** Median over rounds, ns per message. */
  readonly floorNs: number
  readonly pipelineNs: number
  readonly ratio: number
  /** Filtered copies per input message (0.01 = one in a hundred leaves, the rest is suppressed by windows). */
  readonly outputsPerMessage: number
  readonly target: number
  /**
   * Where the pipeline's time goes, ns per message, from a separate pass with each stage timed (so the clock reads
   * do not touch the figures above): the six stages, and `runner`, the rest (counters, the duration histogram, the
   * stage loop, the promise per message).
   */
  readonly stagesNs: Readonly<Record<StageName | 'runner', number>>
}

/** The pipeline's budget: at most 1.1 times the floor (issue 8). */
export const INPROCESS_TARGET = 1.1

/**
 * The floor for a payload: bytes to text, JSON.parse, JSON.stringify, text to bytes, the least any gateway that
 * rewrites JSON does. A payload that is not JSON (Valetudo's `docked`) is carried as a JSON string, the smallest
 * rewrite Veil could make of it.
 */
export function floorOf(payload: Buffer): () => number {
  let isJson = true
  try {
    JSON.parse(payload.toString('utf8'))
  } catch {
    isJson = false
  }
  return isJson
    ? () => Buffer.from(JSON.stringify(JSON.parse(payload.toString('utf8')))).length
    : () => Buffer.from(JSON.stringify(payload.toString('utf8'))).length
}

async function measure(message: TypicalMessage, options: InProcessOptions, dataDir: string): Promise<InProcessRow> {
  const bench = benchPipeline(dataDir)
  try {
    const { pipeline } = bench
    const floor = floorOf(message.payload)
    let now = Date.UTC(2026, 1, 2, 3, 0)
    let sink = 0
    let outputs = 0
    let processed = 0
    const runPipeline = async (n: number): Promise<number> => {
      const started = process.hrtime.bigint()
      for (let i = 0; i < n; i++) {
        now += options.stepMs
        const result = await pipeline.process(message.topic, message.payload, now)
        outputs += result.outputs.length
      }
      processed += n
      return nsPerOp(started, n)
    }
    const runFloor = (n: number): number => {
      const started = process.hrtime.bigint()
      for (let i = 0; i < n; i++) sink += floor()
      return nsPerOp(started, n)
    }
    await warmUp([runFloor, runPipeline], options.warmup)
    outputs = 0
    processed = 0
    const [floorNs, pipelineNs] = (await interleave([runFloor, runPipeline], options)) as [number, number]
    if (sink === 0) throw new Error('the floor produced nothing')
    const stagesNs = await breakdown(message, options, dataDir, now)
    return {
      category: message.category,
      stream: message.stream,
      bytes: message.payload.length,
      floorNs: round(floorNs, 0),
      pipelineNs: round(pipelineNs, 0),
      ratio: round(pipelineNs / floorNs, 2),
      outputsPerMessage: round(outputs / processed, 3),
      target: INPROCESS_TARGET,
      stagesNs,
    }
  } finally {
    await bench.close()
  }
}

const STAGES: readonly StageName[] = ['classify', 'decode', 'validate', 'filter', 'encode', 'route']

/** A second pipeline with every stage timed: ns per message per stage, and the runner's share (total minus stages). */
async function breakdown(
  message: TypicalMessage,
  options: InProcessOptions,
  dataDir: string,
  startMs: number,
): Promise<InProcessRow['stagesNs']> {
  const times: Partial<Record<StageName, number>> = {}
  const bench = benchPipeline(join(dataDir, 'timed'), undefined, undefined, times)
  try {
    let now = startMs
    const n = Math.max(2_000, Math.round((options.rounds * options.batch) / 4))
    for (let i = 0; i < options.warmup; i++)
      await bench.pipeline.process(message.topic, message.payload, (now += options.stepMs))
    for (const stage of STAGES) times[stage] = 0
    const started = process.hrtime.bigint()
    for (let i = 0; i < n; i++) await bench.pipeline.process(message.topic, message.payload, (now += options.stepMs))
    const total = nsPerOp(started, n)
    const per = (stage: StageName): number => round((times[stage] ?? 0) / n, 0)
    const stages = Object.fromEntries(STAGES.map((s) => [s, per(s)])) as Record<StageName, number>
    return { ...stages, runner: round(Math.max(0, total - STAGES.reduce((sum, s) => sum + stages[s], 0)), 0) }
  } finally {
    await bench.close()
  }
}

/** Section (a): every category's typical message through the full pipeline against its JSON floor, interleaved. */
export async function runInProcess(
  options: InProcessOptions,
  messages: readonly TypicalMessage[] = typicalMessages(),
): Promise<InProcessRow[]> {
  const rows: InProcessRow[] = []
  for (const message of messages) {
    const dir = tempDir('veil-bench-')
    try {
      rows.push(await measure(message, options, dir.path))
    } finally {
      dir.remove()
    }
  }
  return rows
}
