import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import {
  CATEGORY_LABELS,
  DOMAINS,
  DROP_REASONS,
  STAGES,
  type CategoryLabel,
  type Domain,
  type DropReason,
  type StageName,
} from '../sdk/model.ts'

type CounterHandle = { inc(value?: number): void }

/**
 * A counter handle for the per-message path: `inc` adds to a plain number, and the sum reaches prom-client only
 * when the metrics are read (the counter's `collect`). prom-client's own label handles hash the label values into a
 * string key on every call; with two counters per stage that was a third of the pipeline's time on small messages.
 */
class DeferredCounter implements CounterHandle {
  pending = 0
  constructor(readonly labels: Record<string, string>) {}
  inc(value = 1): void {
    this.pending += value
  }
}

/** prom-client 15's per-label-set histogram state (not in its typings); checked before use, see flushHistogram. */
interface HistogramEntry {
  labels: Record<string, string>
  sum: number
  count: number
  bucketValues: Record<string, number>
}

/** The pipeline's duration histogram handle: observations are binned into plain numbers until the metrics are read. */
class DeferredHistogram {
  count = 0
  sum = 0
  readonly buckets: Float64Array
  constructor(
    readonly labels: Record<string, string>,
    readonly bounds: readonly number[],
  ) {
    this.buckets = new Float64Array(bounds.length)
  }
  observe(value: number): void {
    this.count++
    this.sum += value
    const bounds = this.bounds
    for (let i = 0; i < bounds.length; i++) {
      if (value <= (bounds[i] as number)) {
        this.buckets[i] = (this.buckets[i] as number) + 1
        return
      }
    }
  }
}

function entryOf(histogram: Histogram<string>, labels: Record<string, string>): HistogramEntry | undefined {
  const map = (histogram as unknown as { hashMap?: Record<string, HistogramEntry> }).hashMap
  if (map === undefined || typeof map !== 'object') return undefined
  const matches = (e: HistogramEntry): boolean => Object.entries(labels).every(([k, v]) => e.labels?.[k] === v)
  let entry = Object.values(map).find(matches)
  if (entry === undefined) {
    histogram.zero(labels)
    entry = Object.values(map).find(matches)
  }
  return entry !== undefined && typeof entry.bucketValues === 'object' && typeof entry.sum === 'number'
    ? entry
    : undefined
}

/**
 * Adds the binned observations to prom-client's state for the label set. Should a prom-client upgrade change that
 * state's shape, each observation is replayed at its bucket's upper bound instead (counts and buckets stay exact,
 * the sum becomes an upper bound); metrics.test.ts compares the output with a plain histogram's.
 */
function flushHistogram(histogram: Histogram<string>, cells: readonly DeferredHistogram[]): void {
  for (const cell of cells) {
    if (cell.count === 0) continue
    const entry = entryOf(histogram, cell.labels)
    let inBuckets = 0
    for (let i = 0; i < cell.bounds.length; i++) {
      const n = cell.buckets[i] as number
      inBuckets += n
      const bound = cell.bounds[i] as number
      if (entry !== undefined) entry.bucketValues[bound] = (entry.bucketValues[bound] ?? 0) + n
      else for (let k = 0; k < n; k++) histogram.observe(cell.labels, bound)
    }
    if (entry !== undefined) {
      entry.sum += cell.sum
      entry.count += cell.count
    } else {
      // Above the last bound: only +Inf counts them.
      for (let k = 0; k < cell.count - inBuckets; k++) histogram.observe(cell.labels, Number.MAX_VALUE)
    }
    cell.count = 0
    cell.sum = 0
    cell.buckets.fill(0)
  }
}

function flush(counter: Counter<string>, cells: readonly DeferredCounter[]): void {
  for (const cell of cells) {
    if (cell.pending === 0) continue
    counter.inc(cell.labels, cell.pending)
    cell.pending = 0
  }
}

const DURATION_BUCKETS = [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25]

/**
 * Veil's metric families. Label handles are bound once per label combination and cached by position: the label
 * sets are closed vocabularies (see model.ts), so the caches are bounded and the hot path only calls `inc()`.
 */
export class Metrics {
  readonly registry: Registry
  readonly stageIn: Counter<'stage' | 'category'>
  readonly stageOut: Counter<'stage' | 'category'>
  readonly dropped: Counter<'stage' | 'category' | 'reason'>
  readonly forwarded: Counter<'category' | 'domain' | 'target'>
  readonly pipelineSeconds: Histogram<'category'>
  readonly upstreamConnected: Gauge<'domain'>
  readonly upstreamPending: Gauge<'domain'>
  readonly upstreamPendingBytes: Gauge<'domain'>
  readonly upstreamOldestSeconds: Gauge<'domain'>
  readonly upstreamInflight: Gauge<'domain'>
  readonly upstreamReconnects: Counter<'domain'>
  readonly clientsConnected: Gauge
  readonly policyInfo: Gauge<'version'>
  readonly policyReloads: Counter<'result'>
  readonly auditWriteErrors: Counter
  readonly authRefusals: Counter<'stage' | 'reason'>

  readonly #collectors: (() => void)[] = []
  /** A codec's `veil_<codec>_events_total`, registered when the first pipeline that uses the codec is built. */
  readonly #codecEvents = new Map<string, Counter<'event'>>()
  readonly #dropped: CounterHandle[] = []
  readonly #forwarded: CounterHandle[] = []
  readonly #forwardedCells: DeferredCounter[] = []
  readonly #stageCells: DeferredCounter[][] = [[], []]
  readonly #durationCells: DeferredHistogram[] = []

  constructor(options: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry()
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry })
    const registers = [this.registry]
    const stageCells = this.#stageCells
    const durationCells = this.#durationCells
    const forwardedCells = this.#forwardedCells
    this.stageIn = new Counter({
      name: 'veil_stage_in_total',
      help: 'Messages that entered a pipeline stage',
      labelNames: ['stage', 'category'],
      registers,
      collect() {
        flush(this, stageCells[0] as DeferredCounter[])
      },
    })
    this.stageOut = new Counter({
      name: 'veil_stage_out_total',
      help: 'Messages that a pipeline stage passed on',
      labelNames: ['stage', 'category'],
      registers,
      collect() {
        flush(this, stageCells[1] as DeferredCounter[])
      },
    })
    this.dropped = new Counter({
      name: 'veil_messages_dropped_total',
      help: "Messages (or one recipient domain's copy) dropped, by stage and reason; never forwarded raw",
      labelNames: ['stage', 'category', 'reason'],
      registers,
    })
    this.forwarded = new Counter({
      name: 'veil_messages_forwarded_total',
      help: "Filtered messages delivered: published on the local filtered namespace (only while a local client subscribes there), or acknowledged (PUBACK) by the domain's upstream",
      labelNames: ['category', 'domain', 'target'],
      registers,
      collect() {
        flush(this, forwardedCells)
      },
    })
    this.pipelineSeconds = new Histogram({
      name: 'veil_pipeline_duration_seconds',
      help: 'Time from ingest to the end of routing for one message',
      labelNames: ['category'],
      buckets: DURATION_BUCKETS,
      registers,
      collect() {
        flushHistogram(this, durationCells)
      },
    })
    this.upstreamConnected = new Gauge({
      name: 'veil_upstream_connected',
      help: "1 when the domain's upstream bridge is connected",
      labelNames: ['domain'],
      registers,
    })
    // Queue gauges are read from the queues at scrape time (onCollect), never updated per message.
    const collect = (): void => {
      for (const c of this.#collectors) c()
    }
    this.upstreamPending = new Gauge({
      name: 'veil_upstream_queue_depth',
      help: "Filtered messages in the domain's durable queue, waiting for the upstream's PUBACK",
      labelNames: ['domain'],
      registers,
      collect,
    })
    this.upstreamPendingBytes = new Gauge({
      name: 'veil_upstream_queue_bytes',
      help: "Bytes of the domain's durable queue on disk (and being written)",
      labelNames: ['domain'],
      registers,
      collect,
    })
    this.upstreamOldestSeconds = new Gauge({
      name: 'veil_upstream_queue_oldest_seconds',
      help: "Age of the oldest message in the domain's queue not yet acknowledged by the upstream (0 when empty)",
      labelNames: ['domain'],
      registers,
      collect,
    })
    this.upstreamInflight = new Gauge({
      name: 'veil_upstream_inflight',
      help: 'Messages sent to the upstream and awaiting its PUBACK (bounded by maxPending)',
      labelNames: ['domain'],
      registers,
      collect,
    })
    this.upstreamReconnects = new Counter({
      name: 'veil_upstream_reconnects_total',
      help: "Connection attempts to the domain's upstream after a failure or a lost connection",
      labelNames: ['domain'],
      registers,
    })
    this.clientsConnected = new Gauge({
      name: 'veil_clients_connected',
      help: 'MQTT clients connected to the device listener',
      registers,
    })
    this.policyInfo = new Gauge({
      name: 'veil_policy_info',
      help: 'The policy set in force (the version is a hash of the policy files)',
      labelNames: ['version'],
      registers,
    })
    this.policyReloads = new Counter({
      name: 'veil_policy_reloads_total',
      help: 'Policy reload attempts by result',
      labelNames: ['result'],
      registers,
    })
    this.auditWriteErrors = new Counter({
      name: 'veil_audit_write_errors_total',
      help: 'Audit log writes that failed',
      registers,
    })
    // stage: connection (socket closed before MQTT), login (CONNACK refused), subscribe (SUBACK 0x80), publish
    // (acknowledged and dropped). reason: a closed vocabulary (a refusal reason or a role), never a name or address.
    this.authRefusals = new Counter({
      name: 'veil_auth_refusals_total',
      help: 'Connections, logins, subscriptions and publishes refused by the access rules',
      labelNames: ['stage', 'reason'],
      registers,
    })
  }

  /** Bound on first use, then found by position in the closed label lists: no key string per call. */
  droppedHandle(stage: StageName, category: CategoryLabel, reason: DropReason): CounterHandle {
    const i =
      (STAGES.indexOf(stage) * CATEGORY_LABELS.length + CATEGORY_LABELS.indexOf(category)) * DROP_REASONS.length +
      DROP_REASONS.indexOf(reason)
    return (this.#dropped[i] ??= this.dropped.labels(stage, category, reason))
  }

  /** A stage counter handle for the pipeline (bound once at construction): counts reach prom-client when read. */
  stageHandle(direction: 'in' | 'out', stage: StageName, category: CategoryLabel): CounterHandle {
    const cell = new DeferredCounter({ stage, category })
    this.#stageCells[direction === 'in' ? 0 : 1]?.push(cell)
    return cell
  }

  /** The pipeline's duration handle for a category, bound once: binned locally, handed over when read. */
  durationHandle(category: CategoryLabel): { observe(seconds: number): void } {
    const cell = new DeferredHistogram({ category }, DURATION_BUCKETS)
    this.#durationCells.push(cell)
    return cell
  }

  /** Counted per copy (local) and per upstream PUBACK: plain numbers, handed to prom-client when read. */
  forwardedHandle(category: CategoryLabel, domain: Domain, target: 'local' | 'upstream'): CounterHandle {
    const i =
      (CATEGORY_LABELS.indexOf(category) * DOMAINS.length + DOMAINS.indexOf(domain)) * 2 + (target === 'local' ? 0 : 1)
    let handle = this.#forwarded[i]
    if (handle === undefined) {
      const cell = new DeferredCounter({ category, domain, target })
      this.#forwardedCells.push(cell)
      this.#forwarded[i] = handle = cell
    }
    return handle
  }

  /** A handle on a codec's events counter (`veil_<codec>_events_total{event}`), bound once per pipeline. */
  codecEventHandle(codec: string, help: string, event: string): CounterHandle {
    let counter = this.#codecEvents.get(codec)
    if (counter === undefined) {
      counter = new Counter({
        name: `veil_${codec}_events_total`,
        help,
        labelNames: ['event'],
        registers: [this.registry],
      })
      this.#codecEvents.set(codec, counter)
    }
    return counter.labels(event)
  }

  /** Runs `collector` before each scrape of the queue gauges, so they show the queues' state at that moment. */
  onCollect(collector: () => void): void {
    this.#collectors.push(collector)
  }

  setPolicyVersion(version: string): void {
    this.policyInfo.reset()
    this.policyInfo.labels(version).set(1)
  }
}
