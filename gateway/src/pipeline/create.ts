import { MemoryAuditLog, type AuditSink } from '../audit/audit.ts'
import { ConsentBook, type ConsentHolder } from '../consent/book.ts'
import { keyPoliciesOf, type GatewayConfig } from '../config/config.ts'
import { Keyring, type DomainKeyPolicy } from '../keys/keyring.ts'
import { loadPolicySet, type LoadPolicyOptions } from '../policy/load.ts'
import type { Domain, StageName } from '../sdk/model.ts'
import type { OperatorDefinition } from '../sdk/operator.ts'
import type { ProfileDefinition } from '../sdk/profile.ts'
import { Classifier } from '../streams/classifier.ts'
import { Metrics } from '../telemetry/metrics.ts'
import type { OutputEncoding } from './encode.ts'
import type { PolicyHolder } from './filter.ts'
import { Pipeline, type Limits } from './pipeline.ts'

/** What a pipeline is built from: the parts every caller names, and the ones with a default. */
export interface PipelineSpec {
  /** The device profiles, or a classifier already built from them (the gateway builds its own first, for access rules). */
  readonly streams: readonly ProfileDefinition[] | Classifier
  readonly operators: readonly OperatorDefinition[]
  /** The policy directory. */
  readonly policies: string
  /** The 32-byte master key every pseudonym and vault key derives from. */
  readonly master: Buffer
  readonly keyPolicies?: ReadonlyMap<Domain, DomainKeyPolicy>
  /** Where operators keep durable state (the tokenize vault). */
  readonly dataDir: string
  /** The household's consent switches (the configuration's `optIn`), when no `consent` holder is given. */
  readonly optIn?: ReadonlySet<string>
  /** Subjects and their consents, swapped by the gateway as they change. */
  readonly consent?: ConsentHolder
  readonly variables?: Readonly<Record<string, unknown>>
  /** Noise operators' generator: cryptographically strong unless a test seeds it. */
  readonly random?: () => number
  /** Default: a registry without Node's process metrics, so that pipelines built side by side do not collide. */
  readonly metrics?: Metrics
  /** Default: kept in memory. */
  readonly audit?: AuditSink
  readonly limits?: Limits
  readonly encodings?: ReadonlyMap<Domain, OutputEncoding>
  readonly profileSettings?: Readonly<Record<string, unknown>>
  readonly stageTimes?: Partial<Record<StageName, number>>
}

/** A pipeline and the parts it was built with, which the gateway (reloads, metrics) and tests look into. */
export interface AssembledPipeline {
  readonly pipeline: Pipeline
  readonly classifier: Classifier
  readonly keyring: Keyring
  readonly policies: PolicyHolder
  /** What loaded the policies: a reload loads the directory again with the same. */
  readonly policyOptions: LoadPolicyOptions
  readonly metrics: Metrics
  readonly audit: AuditSink
  readonly consent: ConsentHolder
}

/**
 * The one place a pipeline is assembled (the gateway, `veil filter`/`replay`, tests, benchmarks): classifier,
 * keyring and policies are compiled here, once, and a policy problem throws before anything runs.
 */
export function createPipeline(spec: PipelineSpec): AssembledPipeline {
  const classifier = spec.streams instanceof Classifier ? spec.streams : new Classifier(spec.streams)
  const keyring = new Keyring(spec.master, spec.keyPolicies ?? new Map())
  const policyOptions: LoadPolicyOptions = {
    classifier,
    operators: spec.operators,
    keyring,
    dataDir: spec.dataDir,
    variables: spec.variables,
    random: spec.random,
  }
  const policies: PolicyHolder = { current: loadPolicySet(spec.policies, policyOptions) }
  const consent: ConsentHolder = spec.consent ?? { current: ConsentBook.household(spec.optIn) }
  const metrics = spec.metrics ?? new Metrics({ defaultMetrics: false })
  const audit = spec.audit ?? new MemoryAuditLog()
  const pipeline = new Pipeline({
    classifier,
    policies,
    keyring,
    metrics,
    audit,
    consent,
    limits: spec.limits,
    encodings: spec.encodings,
    profileSettings: spec.profileSettings,
    stageTimes: spec.stageTimes,
  })
  return { pipeline, classifier, keyring, policies, policyOptions, metrics, audit, consent }
}

/** The parts of a spec a configuration gives; the caller adds the streams and the master key. */
export function specOfConfig(
  config: GatewayConfig,
  operators: readonly OperatorDefinition[],
): Omit<PipelineSpec, 'streams' | 'master'> {
  return {
    operators,
    policies: config.policies,
    keyPolicies: keyPoliciesOf(config),
    dataDir: config.dataDir,
    optIn: config.optIn,
    variables: config.variables,
    limits: config.limits,
    encodings: config.encoding,
    profileSettings: config.profileSettings,
  }
}
