/**
 * The policy extension: how a profile whose format the allowlist cannot express (Sparkplug B's metrics, a list of
 * named values) adds a section to its streams' policies, without the policy loader naming the format. The loader
 * checks and compiles allow and operators as for any stream, and hands the extension's section to the extension.
 */
import type { OperatorDefinition, OperatorFn } from './operator.ts'

/** What a projection returns when nothing of its input is kept. */
export const NOTHING: unique symbol = Symbol('veil.nothing')
export type Nothing = typeof NOTHING
/** A stream policy's first step: the part of the decoded value that may go on to the operators. */
export type Projection = (value: unknown) => unknown

/** What the loader lends an extension's compile step for one domain's variant of one stream policy. */
export interface PolicyExtensionContext {
  /** The JSON pointer of the variant (`/domains/svc/streams/<key>` or its `/opt_in/<name>`), for problems. */
  readonly at: string
  /** Records a problem at a JSON pointer of the file; the policy fails to load with every problem listed. */
  problem(path: string, problem: string): void
  /**
   * One operator item compiled as the loader compiles the policy's own (`$variables`, the operator's settings
   * schema, its compile), with `adapt` filling settings before they are checked; undefined when its problem is
   * recorded or the operator has nothing to do.
   */
  compileOperator(
    name: string,
    rawConfig: unknown,
    path: string,
    adapt?: (config: unknown, definition: OperatorDefinition) => unknown,
  ): OperatorFn | undefined
}

export interface PolicyExtension<Section = unknown> {
  /** The stream-policy key of the section (`metrics`), beside allow and operators, in a variant and its opt_ins. */
  readonly key: string
  /** The problem of a policy giving the section to a stream of another format (reported at `<variant>/<key>`). */
  misplaced(streamKey: string): string
  /** The projection used instead of the allowlist; throws with the problem (reported at `<variant>/allow`). */
  compileAllow(allow: readonly string[]): Projection
  /** Whether the section alone forwards something (a variant with no allow, operators or section is no policy). */
  forwards(section: Section | undefined): boolean
  /** The steps run after the projection and before the policy's operators (named for the stage audit). */
  compileSteps(
    section: Section | undefined,
    allow: readonly string[],
    context: PolicyExtensionContext,
  ): { name: string; run: OperatorFn }[]
  /**
   * For the time check: the allowlist entry that lets a declared time field leave although the allowlist does not
   * name it (Sparkplug's metric timestamps go with the message's `timestamp`), or undefined.
   */
  timeFieldKeptBy?(path: string, allow: readonly string[], section: Section | undefined): string | undefined
  /** The extension checks every string that leaves itself, so the free-string check has nothing to say. */
  readonly scansStrings: boolean
}

/** Identity, for typing an extension where it is declared. */
export function definePolicyExtension<Section>(extension: PolicyExtension<Section>): PolicyExtension<Section> {
  return extension
}
