/**
 * The in-process timing method (BENCHMARKS.md, section (a)), shared by the sections that use it: batches of
 * messages timed with `process.hrtime.bigint()`, run in alternating order after a warm-up, each figure the median
 * of its per-batch ns per message.
 */
import { median } from './stats.ts'

export interface InterleaveOptions {
  /** Rounds: each times one batch of every contender, forwards on even rounds and backwards on odd ones. */
  readonly rounds: number
  readonly batch: number
}

/** Runs `n` messages of one contender and returns its ns per message. */
export type Batch = (n: number) => number | Promise<number>

export function nsPerOp(started: bigint, count: number): number {
  return Number(process.hrtime.bigint() - started) / count
}

/** Runs `n` messages of every contender, in order, untimed: the JIT settles and caches fill before the rounds. */
export async function warmUp(batches: readonly Batch[], n: number): Promise<void> {
  for (const batch of batches) await batch(n)
}

/**
 * Times the contenders in interleaved batches and returns each one's median ns per message, in their order. The
 * order flips every round so that drift (GC, a neighbour's load, CPU frequency) falls on every contender alike.
 */
export async function interleave(batches: readonly Batch[], options: InterleaveOptions): Promise<number[]> {
  const times: number[][] = batches.map(() => [])
  const forwards = batches.map((_, i) => i)
  const backwards = [...forwards].reverse()
  for (let r = 0; r < options.rounds; r++) {
    for (const i of r % 2 === 0 ? forwards : backwards)
      (times[i] as number[]).push(await (batches[i] as Batch)(options.batch))
  }
  return times.map(median)
}
