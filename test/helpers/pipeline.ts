import { tmpdir } from 'node:os'
import { builtinOperators } from '../../filters/operators/index.ts'
import { builtinProfiles } from '../../filters/profiles/index.ts'
import { DEFAULT_POLICIES } from '../../gateway/src/config/config.ts'
import { createPipeline, type AssembledPipeline, type PipelineSpec } from '../../gateway/src/pipeline/create.ts'

/**
 * createPipeline with what a test leaves out taken from the shipped gateway: the builtin profiles and operators,
 * the policies in filters/policies/, a fixed master key, a memory audit log.
 */
export function builtinPipeline(spec: Partial<PipelineSpec> = {}): AssembledPipeline {
  return createPipeline({
    streams: builtinProfiles,
    operators: builtinOperators,
    policies: DEFAULT_POLICIES,
    master: Buffer.alloc(32, 7),
    dataDir: tmpdir(),
    ...spec,
  })
}
