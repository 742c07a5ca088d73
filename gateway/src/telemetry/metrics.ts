import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { CATEGORY_LABELS, DOMAINS, DROP_REASONS, STAGES, type CategoryLabel, type Domain, type DropReason, type StageName } from '../model.ts'

type CounterHandle = { inc(value?: number): void }

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
  readonly clientsConnected: Gauge
  readonly policyInfo: Gauge<'version'>
  readonly policyReloads: Counter<'result'>
  readonly auditWriteErrors: Counter
  readonly authRefusals: Counter<'stage' | 'reason'>

  readonly #dropped: CounterHandle[] = []
  readonly #forwarded: CounterHandle[] = []

  constructor(options: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry()
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry })
    const registers = [this.registry]
    this.stageIn = new Counter({
      name: 'veil_stage_in_total',
      help: 'Messages that entered a pipeline stage',
      labelNames: ['stage', 'category'],
      registers,
    })
    this.stageOut = new Counter({
      name: 'veil_stage_out_total',
      help: 'Messages that a pipeline stage passed on',
      labelNames: ['stage', 'category'],
      registers,
    })
    this.dropped = new Counter({
      name: 'veil_messages_dropped_total',
      help: 'Messages (or one recipient domain\'s copy) dropped, by stage and reason; never forwarded raw',
      labelNames: ['stage', 'category', 'reason'],
      registers,
    })
    this.forwarded = new Counter({
      name: 'veil_messages_forwarded_total',
      help: 'Filtered messages delivered: published on the local filtered namespace, or acknowledged (PUBACK) by the domain\'s upstream',
      labelNames: ['category', 'domain', 'target'],
      registers,
    })
    this.pipelineSeconds = new Histogram({
      name: 'veil_pipeline_duration_seconds',
      help: 'Time from ingest to the end of routing for one message',
      labelNames: ['category'],
      buckets: [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25],
      registers,
    })
    this.upstreamConnected = new Gauge({
      name: 'veil_upstream_connected',
      help: '1 when the domain\'s upstream bridge is connected',
      labelNames: ['domain'],
      registers,
    })
    this.upstreamPending = new Gauge({
      name: 'veil_upstream_queue_depth',
      help: 'Filtered messages waiting for the upstream\'s PUBACK',
      labelNames: ['domain'],
      registers,
    })
    this.upstreamPendingBytes = new Gauge({
      name: 'veil_upstream_queue_bytes',
      help: 'Payload bytes waiting for the upstream\'s PUBACK',
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
    const i = (STAGES.indexOf(stage) * CATEGORY_LABELS.length + CATEGORY_LABELS.indexOf(category)) * DROP_REASONS.length + DROP_REASONS.indexOf(reason)
    return (this.#dropped[i] ??= this.dropped.labels(stage, category, reason))
  }

  forwardedHandle(category: CategoryLabel, domain: Domain, target: 'local' | 'upstream'): CounterHandle {
    const i = (CATEGORY_LABELS.indexOf(category) * DOMAINS.length + DOMAINS.indexOf(domain)) * 2 + (target === 'local' ? 0 : 1)
    return (this.#forwarded[i] ??= this.forwarded.labels(category, domain, target))
  }

  setPolicyVersion(version: string): void {
    this.policyInfo.reset()
    this.policyInfo.labels(version).set(1)
  }
}
