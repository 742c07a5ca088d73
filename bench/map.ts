import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { deflateSync } from 'node:zlib'
import { tempDir } from '../test/helpers/gateway.ts'
import { benchPipeline } from './pipeline.ts'
import { median, round } from './stats.ts'

export const MAP_FIXTURES = join(import.meta.dirname, '../test/fixtures/valetudo')
/** No event-loop block over 20 ms (issue 8 (c)). */
export const MAP_BLOCK_TARGET_MS = 20

export interface MapOptions {
  readonly runs: number
}

export const MAP_FULL: MapOptions = { runs: 20 }
export const MAP_QUICK: MapOptions = { runs: 5 }

export interface MapRow {
  readonly fixture: string
  readonly jsonBytes: number
  readonly zlibBytes: number
  /** Median time of one map through the pipeline, ms. */
  readonly medianMs: number
  /** Longest event-loop block over all runs (1 ms probe), and the median run's longest block, ms. */
  readonly maxBlockMs: number
  readonly medianBlockMs: number
  /** monitorEventLoopDelay's maximum over all runs, ms (a second opinion on the probe). */
  readonly histogramMaxMs: number
  readonly outputs: number
  readonly target: number
}

/** The largest Valetudo map fixture, by size of its JSON. */
export function largestMap(dir: string = MAP_FIXTURES): string {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'))
  const largest = files.map((f) => ({ f, size: statSync(join(dir, f)).size })).sort((a, b) => b.size - a.size)[0]
  if (largest === undefined) throw new Error(`${dir}: no map fixtures`)
  return join(dir, largest.f)
}

/** The longest gap between 1 ms timer ticks while `work` runs: how long the event loop was blocked. */
export async function longestBlockMs(work: () => Promise<void>): Promise<number> {
  let last = performance.now()
  let longest = 0
  const timer = setInterval(() => {
    const now = performance.now()
    longest = Math.max(longest, now - last)
    last = now
  }, 1)
  await new Promise((r) => setTimeout(r, 10))
  last = performance.now()
  longest = 0
  await work()
  await new Promise((r) => setTimeout(r, 5))
  clearInterval(timer)
  return longest
}

/**
 * Section (c): the largest map (zlib, as Valetudo publishes it) through the full pipeline: inflated and validated,
 * then dropped, since the shipped policy forwards no map (map_minimize is measured by its own bench).
 */
export async function runMap(options: MapOptions, file: string = largestMap()): Promise<MapRow> {
  const dir = tempDir('veil-bench-')
  const bench = benchPipeline(dir.path)
  try {
    const json = readFileSync(file)
    const map = deflateSync(json)
    const topic = 'valetudo/benchrobot/MapData/map-data'
    let outputs = (await bench.pipeline.process(topic, map)).outputs.length // warm-up: compile, JIT
    const times: number[] = []
    const blocks: number[] = []
    const histogram = monitorEventLoopDelay({ resolution: 1 })
    histogram.enable()
    for (let i = 0; i < options.runs; i++) {
      blocks.push(
        await longestBlockMs(async () => {
          const started = performance.now()
          outputs = (await bench.pipeline.process(topic, map)).outputs.length
          times.push(performance.now() - started)
        }),
      )
    }
    histogram.disable()
    return {
      fixture: file.split('/').at(-1) as string,
      jsonBytes: json.length,
      zlibBytes: map.length,
      medianMs: round(median(times), 1),
      maxBlockMs: round(Math.max(...blocks), 1),
      medianBlockMs: round(median(blocks), 1),
      histogramMaxMs: round(histogram.max / 1e6, 1),
      outputs,
      target: MAP_BLOCK_TARGET_MS,
    }
  } finally {
    await bench.close()
    dir.remove()
  }
}
