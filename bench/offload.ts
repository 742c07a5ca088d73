/**
 * Would a worker thread pay for the pipeline (issue 8: "use worker threads where they pay")? Runs the same messages
 * through the pipeline on the main thread, then through the same pipeline in a worker, handed over in batches with
 * postMessage, and reports what each costs the main thread, which also has to run the broker, the queue and the
 * bridge. Main-thread time comes from its event-loop utilisation, the worker's from its own.
 *
 * Usage: node --import tsx bench/offload.ts [messages=40000] [batch=32] [streams=frigate/events,owntracks/location,valetudo/status]
 */
import { pathToFileURL } from 'node:url'
import { isMainThread, parentPort, Worker } from 'node:worker_threads'
import { typicalMessages } from './messages.ts'
import { benchPipeline } from './pipeline.ts'
import { tempDir } from '../test/helpers/gateway.ts'

interface Job {
  readonly topic: string
  readonly payload: Uint8Array
}

/** What the main thread needs back to publish and queue each copy. */
interface Copy {
  readonly domain: string
  readonly topic: string
  readonly payload: Uint8Array
  readonly contentType: string
}

const STEP_MS = 10_000
const START_MS = Date.UTC(2026, 1, 2, 3, 0)

if (!isMainThread) {
  const dir = tempDir('veil-offload-')
  const { pipeline } = benchPipeline(dir.path)
  let now = START_MS
  parentPort?.on('message', async (jobs: Job[]) => {
    // An empty batch asks the worker to clean up before it is terminated.
    if (jobs.length === 0) {
      dir.remove()
      parentPort?.postMessage('closed')
      return
    }
    const results: Copy[][] = []
    for (const job of jobs) {
      const r = await pipeline.process(
        job.topic,
        Buffer.from(job.payload.buffer, job.payload.byteOffset, job.payload.byteLength),
        (now += STEP_MS),
      )
      results.push(
        r.outputs.map((o) => ({ domain: o.domain, topic: o.topic, payload: o.payload, contentType: o.contentType })),
      )
    }
    parentPort?.postMessage(results)
  })
}

export interface OffloadRow {
  readonly stream: string
  readonly bytes: number
  /** The pipeline on the main thread: µs of main thread per message. */
  readonly inlineUsPerMessage: number
  /** The pipeline in a worker: what handing over and taking back costs the main thread, µs per message. */
  readonly offloadedMainUsPerMessage: number
  /** ... and the worker's own busy time, µs per message. */
  readonly offloadedWorkerUsPerMessage: number
  readonly batch: number
}

/** Each stream's typical message inline, then offloaded, `total` messages each (after a warm-up of as many). */
export async function measureOffload(streams: readonly string[], total: number, batch: number): Promise<OffloadRow[]> {
  const rows: OffloadRow[] = []
  for (const message of typicalMessages().filter((m) => streams.includes(m.stream))) {
    const inline = await runInline(message.topic, message.payload, total)
    const offloaded = await runOffloaded(message.topic, message.payload, total, batch)
    rows.push({
      stream: message.stream,
      bytes: message.payload.length,
      inlineUsPerMessage: round(inline),
      offloadedMainUsPerMessage: round(offloaded.mainUs),
      offloadedWorkerUsPerMessage: round(offloaded.workerUs),
      batch,
    })
  }
  return rows
}

if (isMainThread && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const total = Number(process.argv[2] ?? 40_000)
  const batch = Number(process.argv[3] ?? 32)
  const streams = (process.argv[4] ?? 'frigate/events,owntracks/location,valetudo/status').split(',')
  for (const row of await measureOffload(streams, total, batch)) console.log(JSON.stringify(row))
}

/** The pipeline on this thread: µs of this thread per message (it is busy the whole time). */
async function runInline(topic: string, payload: Buffer, total: number): Promise<number> {
  const dir = tempDir('veil-offload-')
  const { pipeline, close } = benchPipeline(dir.path)
  let now = START_MS
  for (let i = 0; i < total; i++) await pipeline.process(topic, payload, (now += STEP_MS))
  const started = performance.now()
  let copies = 0
  for (let i = 0; i < total; i++) copies += (await pipeline.process(topic, payload, (now += STEP_MS))).outputs.length
  const us = ((performance.now() - started) * 1000) / total
  await close()
  dir.remove()
  if (copies < 0) throw new Error('unreachable')
  return us
}

/**
 * The pipeline in a worker: the main thread copies each payload into a batch, posts it, and receives the copies.
 * Two batches in flight, so the worker never waits for the main thread. Returns each thread's busy µs per message.
 */
async function runOffloaded(
  topic: string,
  payload: Buffer,
  total: number,
  batch: number,
): Promise<{ mainUs: number; workerUs: number }> {
  // Node 20 does not pass --import loaders to workers: the worker registers tsx itself, then loads this file.
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}) })`
  const worker = new Worker(boot, { eval: true })
  const post = (): void => {
    const jobs: Job[] = []
    // A device's payload arrives in a buffer aedes owns: the batch carries a copy.
    for (let i = 0; i < batch; i++) jobs.push({ topic, payload: new Uint8Array(payload) })
    worker.postMessage(jobs)
  }
  const run = (n: number): Promise<void> =>
    new Promise((resolve) => {
      let sent = 0
      let done = 0
      let sink = 0
      worker.on('message', function onResults(results: Copy[][]) {
        for (const copies of results) for (const copy of copies) sink += copy.payload.byteLength
        done += results.length
        if (done >= n) {
          worker.off('message', onResults)
          if (sink < 0) throw new Error('unreachable')
          resolve()
        } else if (sent < n) {
          post()
          sent += batch
        }
      })
      for (let k = 0; k < 2 && sent < n; k++) {
        post()
        sent += batch
      }
    })
  await run(total)
  const mainBefore = performance.eventLoopUtilization()
  const workerBefore = worker.performance.eventLoopUtilization()
  await run(total)
  const main = performance.eventLoopUtilization(mainBefore)
  const inWorker = worker.performance.eventLoopUtilization(workerBefore)
  await new Promise<void>((resolve) => {
    worker.once('message', () => resolve())
    worker.postMessage([])
  })
  await worker.terminate()
  return { mainUs: (main.active * 1000) / total, workerUs: (inWorker.active * 1000) / total }
}

function round(v: number): number {
  return Math.round(v * 100) / 100
}
