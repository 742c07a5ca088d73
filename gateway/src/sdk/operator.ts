import type { JsonSchema } from './profile.ts'
import type { Category, Domain } from './model.ts'
import type { Keyring } from './keyring.ts'

/** Returned by an operator to withhold the message from this domain (a counted, audited drop). */
export const SUPPRESS: unique symbol = Symbol('veil.suppress')
export type Suppress = typeof SUPPRESS

/** What an operator may know about the message it transforms; never part of the output. */
export interface OperatorContext {
  readonly domain: Domain
  readonly category: Category
  /** The raw device id (trimmed, lower case): for keyed state and pseudonyms only, never to be output. */
  readonly deviceId: string
  /** Epoch ms: the wall clock live, the input's `ts` under `veil replay`. */
  readonly nowMs: number
  readonly keyring: Keyring
}

/** A compiled operator: transforms the document (in place or by returning a new one) or returns SUPPRESS. */
export type OperatorFn = (doc: unknown, ctx: OperatorContext) => unknown

export interface CompileEnv {
  readonly category: Category
  readonly domain: Domain
  /** `<profile>/<stream>` the operator is compiled for. */
  readonly streamKey: string
  readonly keyring: Keyring
  /** Uniform in [0, 1): cryptographically strong in production, seeded in tests. Noise must never be predictable. */
  readonly random: () => number
  /** Where an operator keeps durable state (the tokenize vault). */
  readonly dataDir: string
}

export interface OperatorDefinition {
  readonly name: string
  readonly description: string
  /** JSON Schema of the operator's settings, checked at load with errors naming the policy path. */
  readonly configSchema: JsonSchema
  /** Runs once per (policy, domain, stream) at load; the closure it returns runs per message. */
  compile(config: unknown, env: CompileEnv): OperatorFn
}

/** A record a scheduled operator releases on the gateway's clock, for one device. */
export interface Emission {
  readonly deviceId: string
  readonly doc: unknown
}

/**
 * An operator that releases on the gateway's clock instead of with the device's messages (energy windows,
 * aggregates): its per-message function only absorbs the message and returns SUPPRESS, and `tick` returns what is
 * due at `nowMs`. Called about once a second live, and before each input under `veil replay`. A scheduled operator
 * is the last of its stream policy (checked at load): what it emits goes straight to encode and route, so the time
 * a record leaves is the window's end (plus a random delay), never a device's report.
 */
export interface ScheduledOperatorFn extends OperatorFn {
  /** `drain`: the input has ended (`veil replay`): close every open window and release everything now. */
  tick(nowMs: number, drain?: boolean): readonly Emission[]
}

export function isScheduled(fn: OperatorFn): fn is ScheduledOperatorFn {
  return typeof (fn as Partial<ScheduledOperatorFn>).tick === 'function'
}

/** Attaches a tick to a per-message function, making it a scheduled operator. */
export function scheduled(
  absorb: OperatorFn,
  tick: (nowMs: number, drain?: boolean) => readonly Emission[],
): ScheduledOperatorFn {
  return Object.assign(absorb, { tick })
}

export function defineOperator(definition: OperatorDefinition): OperatorDefinition {
  return definition
}
