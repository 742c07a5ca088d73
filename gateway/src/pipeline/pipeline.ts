import type { AuditSink } from '../audit/audit.ts'
import type { Keyring } from '../keys/keyring.ts'
import { CATEGORY_LABELS as LABELS, type CategoryLabel, type Domain, type DropReason, type StageName } from '../model.ts'
import type { Classifier } from '../profiles/classifier.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { classifyStage } from './classify.ts'
import { decodeStage } from './decode.ts'
import { encodeStage } from './encode.ts'
import { newEnvelope, type DomainDrop, type Envelope, type PipelineResult } from './envelope.ts'
import { filterStage, type PolicyHolder } from './filter.ts'
import { routeStage } from './route.ts'
import type { Stage, StageContext } from './stage.ts'
import { validateStage } from './validate.ts'

export interface Limits {
  /** Largest raw payload accepted, in bytes. */
  readonly payloadBytes: number
  /** Largest inflated payload (zlib map data), in bytes. */
  readonly decompressedBytes: number
}

export const DEFAULT_LIMITS: Limits = { payloadBytes: 1024 * 1024, decompressedBytes: 16 * 1024 * 1024 }

export interface PipelineOptions {
  readonly classifier: Classifier
  readonly policies: PolicyHolder
  readonly keyring: Keyring
  readonly metrics: Metrics
  readonly audit: AuditSink
  readonly limits?: Limits
}

type Handle = { inc(value?: number): void }
const FAN_OUT: ReadonlySet<StageName> = new Set(['filter', 'encode', 'route'])

/**
 * classify -> decode -> validate -> filter -> encode -> route. The runner is the only place that counts and audits:
 * stages are small functions that pass the envelope on or name a drop reason, and an exception in any of them is a
 * drop (`internal_error`), never a forward. Forwarding (local broker, upstream bridges) is the caller's step.
 */
export class Pipeline {
  readonly #stages: readonly Stage[]
  readonly #fanOut: readonly boolean[]
  readonly #in: readonly (readonly Handle[])[]
  readonly #out: readonly (readonly Handle[])[]
  readonly #metrics: Metrics
  readonly #audit: AuditSink
  readonly #policies: PolicyHolder
  readonly #duration: readonly { observe(value: number): void }[]

  constructor(options: PipelineOptions) {
    const limits = options.limits ?? DEFAULT_LIMITS
    this.#metrics = options.metrics
    this.#audit = options.audit
    this.#policies = options.policies
    this.#stages = [
      classifyStage(options.classifier, limits),
      decodeStage(limits),
      validateStage(),
      filterStage(options.policies, options.keyring),
      encodeStage(options.policies),
      routeStage(options.keyring),
    ]
    this.#fanOut = this.#stages.map((s) => FAN_OUT.has(s.name))
    // Label handles bound once: the hot path indexes arrays instead of building label strings.
    this.#in = this.#stages.map((s) => LABELS.map((c) => options.metrics.stageIn.labels(s.name, c)))
    this.#out = this.#stages.map((s) => LABELS.map((c) => options.metrics.stageOut.labels(s.name, c)))
    this.#duration = LABELS.map((c) => options.metrics.pipelineSeconds.labels(c))
  }

  get policyVersion(): string {
    return this.#policies.current.version
  }

  async process(topic: string, payload: Buffer, nowMs: number = Date.now()): Promise<PipelineResult> {
    const started = performance.now()
    const env = newEnvelope(topic, payload, nowMs)
    const domainDrops: DomainDrop[] = []
    const ctx: StageContext = {
      dropDomain: (stage, e, domain, reason) => {
        domainDrops.push({ stage, domain, reason })
        this.recordDrop(stage, e.category, reason, domain, e.nowMs)
      },
    }
    let dropped: PipelineResult['dropped']
    // Only classify changes the category: look its label index up again only then.
    let category = env.category
    let c = LABELS.indexOf(category)
    for (let i = 0; i < this.#stages.length; i++) {
      const stage = this.#stages[i] as Stage
      this.#in[i]?.[c]?.inc()
      let reason: DropReason | undefined
      try {
        const r = stage.run(env, ctx)
        reason = r instanceof Promise ? await r : r
      } catch {
        reason = 'internal_error'
      }
      if (env.category !== category) {
        category = env.category
        c = LABELS.indexOf(category)
      }
      if (reason !== undefined) {
        dropped = { stage: stage.name, reason }
        env.outputs.length = 0
        this.recordDrop(stage.name, env.category, reason, undefined, nowMs)
        break
      }
      // Every domain's copy dropped at a fan-out stage: each was counted and audited already.
      if (this.#fanOut[i] === true && env.outputs.length === 0) break
      this.#out[i]?.[c]?.inc()
    }
    this.#duration[c]?.observe((performance.now() - started) / 1000)
    return { outputs: env.outputs, dropped, domainDrops, category: env.category, stream: env.stream?.name }
  }

  /** Counts and audits a drop; also used by the forward step for queue and upstream drops. */
  recordDrop(stage: StageName, category: CategoryLabel, reason: DropReason, domain: Domain | undefined, nowMs: number, count = 1): void {
    this.#metrics.droppedHandle(stage, category, reason).inc(count)
    this.#audit.record(count === 1 ? { stage, category, reason, domain } : { stage, category, reason, domain, count }, this.#policies.current.version, nowMs)
  }
}

export type { Envelope }
