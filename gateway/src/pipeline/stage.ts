import type { Domain, DropReason, StageName } from '../sdk/model.ts'
import type { Envelope } from './envelope.ts'

/** Lets a fan-out stage drop one domain's copy while the others go on. */
export interface StageContext {
  dropDomain(stage: StageName, env: Envelope, domain: Domain, reason: DropReason): void
}

/**
 * One step of the pipeline: passes the envelope on (returns undefined) or names why the message is dropped.
 * A stage that throws is a drop too (`internal_error`): the runner never lets an exception forward anything.
 */
export interface Stage {
  readonly name: StageName
  run(env: Envelope, ctx: StageContext): DropReason | undefined | Promise<DropReason | undefined>
}
