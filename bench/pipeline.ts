import { builtinOperators } from '../filters/operators/index.ts'
import { builtinProfiles } from '../filters/profiles/index.ts'
import { FileAuditLog } from '../gateway/src/audit/audit.ts'
import { DEFAULT_POLICIES } from '../gateway/src/config/config.ts'
import { Keyring } from '../gateway/src/keys/keyring.ts'
import type { Domain, StageName } from '../gateway/src/sdk/model.ts'
import type { OutputEncoding } from '../gateway/src/pipeline/encode.ts'
import { Pipeline } from '../gateway/src/pipeline/pipeline.ts'
import { loadPolicySet } from '../gateway/src/policy/load.ts'
import { Classifier } from '../gateway/src/streams/classifier.ts'
import { Metrics } from '../gateway/src/telemetry/metrics.ts'

export interface BenchPipeline {
  readonly pipeline: Pipeline
  close(): Promise<void>
}

/**
 * The pipeline exactly as `veil start` composes it (gateway.ts): the shipped profiles and default policies, a
 * keyring with the default key epochs (none), live metrics and the file audit log (every suppressed copy is audited on
 * disk, as in production), and each domain's output encoding (configuration key `encoding`; JSON unless given).
 * Only the broker and the bridges are left out.
 */
export function benchPipeline(
  dataDir: string,
  policies: string = DEFAULT_POLICIES,
  encodings: ReadonlyMap<Domain, OutputEncoding> = new Map(),
  stageTimes?: Partial<Record<StageName, number>>,
): BenchPipeline {
  const classifier = new Classifier(builtinProfiles)
  const keyring = new Keyring(Buffer.alloc(32, 7), new Map<Domain, { epochSeconds: number }>())
  const holder = { current: loadPolicySet(policies, { classifier, operators: builtinOperators, keyring, dataDir }) }
  const audit = new FileAuditLog(dataDir)
  const pipeline = new Pipeline({ classifier, policies: holder, keyring, metrics: new Metrics({ defaultMetrics: false }), audit, encodings, stageTimes })
  return { pipeline, close: () => audit.close() }
}
