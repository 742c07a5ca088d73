import type { AuditSink } from '../audit/audit.ts'
import { ConsentBook, consentBlocks, type ConsentHolder } from '../consent/book.ts'
import type { Keyring } from '../keys/keyring.ts'
import { MAX_NESTING } from '../sdk/nesting.ts'
import {
  CATEGORY_LABELS as LABELS,
  type CategoryLabel,
  type Domain,
  type DropReason,
  type StageName,
} from '../sdk/model.ts'
import type { Classifier } from '../streams/classifier.ts'
import type { StreamCodec } from '../sdk/codec.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { classifyStage } from './classify.ts'
import { decodeStage } from './decode.ts'
import { encodeStage, type OutputEncoding } from './encode.ts'
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
  /** Longest topic accepted, in UTF-8 bytes; checked before the topic is split or matched. */
  readonly topicBytes: number
  /** Most `/`-separated topic levels accepted; aedes itself refuses more than 100 by closing the connection. */
  readonly topicLevels: number
  /** Deepest nesting of arrays and objects in a JSON payload; checked before it is parsed. */
  readonly jsonDepth: number
}

/**
 * Far above what any profile's devices send (the deepest builtin topic has 4 levels); the JSON depth is the one
 * nesting limit every walker shares (sdk/nesting.ts).
 */
export const DEFAULT_LIMITS: Limits = {
  payloadBytes: 1024 * 1024,
  decompressedBytes: 16 * 1024 * 1024,
  topicBytes: 1024,
  topicLevels: 16,
  jsonDepth: MAX_NESTING,
}

export interface PipelineOptions {
  readonly classifier: Classifier
  readonly policies: PolicyHolder
  readonly keyring: Keyring
  readonly metrics: Metrics
  readonly audit: AuditSink
  /** Whose devices are whose and what each person consents to. Default: everything is the household's, all off. */
  readonly consent?: ConsentHolder
  readonly limits?: Limits
  /** Recipient domains that receive protobuf instead of JSON (configuration key `encoding`). */
  readonly encodings?: ReadonlyMap<Domain, OutputEncoding>
  /**
   * Profiles' settings by configuration key (`sparkplug`: the bounds of the Sparkplug B edge node state), handed
   * to the state of a codec that names the key (`settingsKey`).
   */
  readonly profileSettings?: Readonly<Record<string, unknown>>
  /**
   * For the benchmark's breakdown: each stage's time, in ns, is added to its entry. The stages are wrapped when the
   * pipeline is built, so a pipeline without it pays nothing.
   */
  readonly stageTimes?: Partial<Record<StageName, number>>
}

type Handle = { inc(value?: number): void }
const FAN_OUT: ReadonlySet<StageName> = new Set(['filter', 'encode', 'route'])

/**
 * classify -> decode -> validate -> filter -> encode -> route. The runner is the only place that counts and audits:
 * stages are small functions that pass the envelope on or name a drop reason, and an exception in any of them is a
 * drop (`internal_error`), never a forward. Forwarding (local broker, upstream bridges) is the caller's step.
 */
export class Pipeline {
  /** Each codec's state for this pipeline (Sparkplug B's births, for its aliases), shared by its streams. */
  readonly #codecStates: ReadonlyMap<StreamCodec, unknown>
  readonly #stages: readonly Stage[]
  readonly #fanOut: readonly boolean[]
  /** Where scheduled records enter: they were filtered when their messages were absorbed. */
  readonly #encodeAt: number
  readonly #in: readonly (readonly Handle[])[]
  readonly #out: readonly (readonly Handle[])[]
  readonly #metrics: Metrics
  readonly #audit: AuditSink
  readonly #policies: PolicyHolder
  readonly #consent: ConsentHolder
  readonly #duration: readonly { observe(value: number): void }[]

  constructor(options: PipelineOptions) {
    const limits = options.limits ?? DEFAULT_LIMITS
    this.#metrics = options.metrics
    this.#audit = options.audit
    this.#policies = options.policies
    this.#consent = options.consent ?? { current: ConsentBook.household() }
    this.#codecStates = codecStates(options)
    const stages = [
      classifyStage(options.classifier, limits),
      decodeStage(limits, this.#codecStates),
      validateStage(),
      filterStage(options.policies, options.keyring, this.#consent),
      encodeStage(options.policies, options.encodings, this.#codecStates),
      routeStage(options.keyring),
    ]
    const times = options.stageTimes
    this.#stages = times === undefined ? stages : stages.map((s) => timed(s, times))
    this.#fanOut = this.#stages.map((s) => FAN_OUT.has(s.name))
    this.#encodeAt = this.#stages.findIndex((s) => s.name === 'encode')
    // Label handles bound once: the hot path indexes arrays instead of building label strings.
    this.#in = this.#stages.map((s) => LABELS.map((c) => options.metrics.stageHandle('in', s.name, c)))
    this.#out = this.#stages.map((s) => LABELS.map((c) => options.metrics.stageHandle('out', s.name, c)))
    this.#duration = LABELS.map((c) => options.metrics.durationHandle(c))
  }

  /** A codec's state in this pipeline (undefined for a codec without one or that no stream uses): for tests. */
  codecState<State>(codec: StreamCodec<State, never>): State | undefined {
    return this.#codecStates.get(codec as StreamCodec) as State | undefined
  }

  /** The consent in force (the gateway swaps its book on a change). */
  get consent(): ConsentHolder {
    return this.#consent
  }

  get policyVersion(): string {
    return this.#policies.current.version
  }

  async process(topic: string, payload: Buffer, nowMs: number = Date.now()): Promise<PipelineResult> {
    return this.#run(newEnvelope(topic, payload, nowMs), 0)
  }

  /**
   * Records that scheduled operators (energy windows, aggregates) release at `nowMs`, each encoded and routed like
   * any copy (pseudonym, rotation gap) and stamped with the emission time. Live, the gateway calls this about once
   * a second; `veil replay` before each input, with the input's clock, and with `drain` once the input has ended.
   */
  async tick(nowMs: number = Date.now(), drain = false): Promise<PipelineResult[]> {
    const results: PipelineResult[] = []
    for (const { stream, policy } of this.#policies.current.scheduled) {
      const scheduled = policy.scheduled
      if (scheduled === undefined) continue
      let emissions: ReturnType<typeof scheduled.tick>
      try {
        emissions = scheduled.tick(nowMs, drain)
      } catch {
        this.recordDrop('filter', stream.category, 'operator_error', policy.domain, nowMs)
        continue
      }
      for (const emission of emissions) {
        // What a window absorbed under a purpose leaves only if the purpose is still granted when the window closes.
        const subject = this.#consent.current.of(stream.profile, emission.deviceId)
        const blocked = consentBlocks(subject, policy.domain, stream.category, policy.purposeBit)
        if (blocked !== undefined) {
          this.recordDrop('filter', stream.category, blocked, policy.domain, nowMs)
          continue
        }
        const env = newEnvelope('', EMPTY, nowMs)
        env.category = stream.category
        env.stream = stream
        env.deviceId = emission.deviceId
        // Already on the gateway's clock: released as it is emitted, never held again.
        env.subject = subject
        env.outputs.push({
          domain: policy.domain,
          doc: emission.doc,
          payload: EMPTY,
          topic: '',
          contentType: '',
          releaseMs: 0,
          subject,
          purposeBit: policy.purposeBit,
        })
        results.push(await this.#run(env, this.#encodeAt))
      }
    }
    return results
  }

  async #run(env: Envelope, from: number): Promise<PipelineResult> {
    const started = performance.now()
    const nowMs = env.nowMs
    // One small object per message and no closure: the drop list is allocated only when a copy is dropped.
    const ctx = new MessageContext(this)
    let dropped: PipelineResult['dropped']
    // Only classify changes the category: look its label index up again only then.
    let category = env.category
    let c = LABELS.indexOf(category)
    for (let i = from; i < this.#stages.length; i++) {
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
    return {
      outputs: env.outputs,
      dropped,
      domainDrops: ctx.drops ?? NO_DROPS,
      category: env.category,
      stream: env.stream?.name,
    }
  }

  /** Counts and audits a drop; also used by the forward step for queue and upstream drops. */
  recordDrop(
    stage: StageName,
    category: CategoryLabel,
    reason: DropReason,
    domain: Domain | undefined,
    nowMs: number,
    count = 1,
  ): void {
    this.#metrics.droppedHandle(stage, category, reason).inc(count)
    this.#audit.record(
      count === 1 ? { stage, category, reason, domain } : { stage, category, reason, domain, count },
      this.#policies.current.version,
      nowMs,
    )
  }
}

/** One state per distinct codec of the classifier's streams, its events counter bound once. */
function codecStates(options: PipelineOptions): ReadonlyMap<StreamCodec, unknown> {
  const states = new Map<StreamCodec, unknown>()
  for (const { decoding } of options.classifier.streams) {
    if (typeof decoding === 'string' || states.has(decoding)) continue
    const events = decoding.events
    const handles =
      events === undefined
        ? []
        : events.names.map((e) => options.metrics.codecEventHandle(decoding.name, events.help, e))
    const names = events?.names ?? []
    const count = (event: string): void => handles[names.indexOf(event)]?.inc()
    const settings = decoding.settingsKey === undefined ? undefined : options.profileSettings?.[decoding.settingsKey]
    states.set(decoding, decoding.createState?.({ count, settings }))
  }
  return states
}

const NO_DROPS: readonly DomainDrop[] = Object.freeze([])
const EMPTY = Buffer.alloc(0)

function timed(stage: Stage, times: Partial<Record<StageName, number>>): Stage {
  const add = (started: number): void => {
    times[stage.name] = (times[stage.name] ?? 0) + (performance.now() - started) * 1e6
  }
  return {
    name: stage.name,
    run(env, ctx) {
      const started = performance.now()
      let r: ReturnType<Stage['run']>
      try {
        r = stage.run(env, ctx)
      } catch (err) {
        add(started)
        throw err
      }
      if (r instanceof Promise) return r.finally(() => add(started))
      add(started)
      return r
    },
  }
}

class MessageContext implements StageContext {
  drops: DomainDrop[] | undefined
  readonly #pipeline: Pipeline
  constructor(pipeline: Pipeline) {
    this.#pipeline = pipeline
  }
  dropDomain(stage: StageName, env: Envelope, domain: Domain, reason: DropReason): void {
    ;(this.drops ??= []).push({ stage, domain, reason })
    this.#pipeline.recordDrop(stage, env.category, reason, domain, env.nowMs)
  }
}

export type { Envelope }
