import { builtinOperators } from '../filters/operators/index.ts'
import { builtinProfiles } from '../filters/profiles/index.ts'
import type { ConsentHolder } from '../gateway/src/consent/book.ts'
import { FileAuditLog } from '../gateway/src/audit/audit.ts'
import { DEFAULT_POLICIES } from '../gateway/src/config/config.ts'
import type { Domain, StageName } from '../gateway/src/sdk/model.ts'
import type { OutputEncoding } from '../gateway/src/pipeline/encode.ts'
import type { Pipeline } from '../gateway/src/pipeline/pipeline.ts'
import { createPipeline } from '../gateway/src/pipeline/create.ts'

export interface BenchPipeline {
  readonly pipeline: Pipeline
  close(): Promise<void>
}

/**
 * The pipeline exactly as `veil start` composes it (gateway.ts): the shipped profiles and default policies, a
 * keyring with the default key epochs (none), live metrics and the file audit log (every suppressed copy is audited on
 * disk, as in production), and each domain's output encoding (configuration key `encoding`; JSON unless given).
 * Only the broker and the bridges are left out. `consent`: subjects and their consents (the household alone unless given).
 */
export function benchPipeline(
  dataDir: string,
  policies: string = DEFAULT_POLICIES,
  encodings: ReadonlyMap<Domain, OutputEncoding> = new Map(),
  stageTimes?: Partial<Record<StageName, number>>,
  consent?: ConsentHolder,
): BenchPipeline {
  const audit = new FileAuditLog(dataDir)
  const { pipeline } = createPipeline({
    streams: builtinProfiles,
    operators: builtinOperators,
    policies,
    master: Buffer.alloc(32, 7),
    dataDir,
    audit,
    encodings,
    stageTimes,
    consent,
  })
  return { pipeline, close: () => audit.close() }
}
