import type { CategoryLabel, Domain, DropReason, StageName } from '../sdk/model.ts'
import type { CompiledStream } from '../streams/classifier.ts'
import type { SubjectView } from '../consent/book.ts'

/** One recipient domain's copy of a message, filled in by filter, encode and route. */
export interface Output {
  readonly domain: Domain
  doc: unknown
  payload: Buffer
  topic: string
  /** MQTT 5 content type of the payload (set by encode), for bridges that speak MQTT 5. */
  contentType: string
  /** 0: forward at once; else hold and release at the next aligned multiple of this many ms (the policy's `release`). */
  readonly releaseMs: number
  /** Whose data it is: checked again when a held or queued copy leaves, so a withdrawal reaches what waits. */
  readonly subject: SubjectView
  /** The purpose the copy's policy variant needs (0: the default, which needs none). */
  readonly purposeBit: number
}

/** A message on its way through the pipeline. Stages fill it in; nothing in it is ever logged. */
export interface Envelope {
  readonly topic: string
  readonly payload: Buffer
  /** Epoch ms: the wall clock for live traffic, the input's `ts` under `veil replay`. */
  readonly nowMs: number
  category: CategoryLabel
  stream: CompiledStream | undefined
  deviceId: string | undefined
  /** Set by filter: the subject the device belongs to, as the consent in force at that moment saw it. */
  subject: SubjectView | undefined
  doc: unknown
  outputs: Output[]
}

/** A recipient domain's copy that a fan-out stage dropped while other domains went on. */
export interface DomainDrop {
  readonly stage: StageName
  readonly domain: Domain
  readonly reason: DropReason
}

export interface PipelineResult {
  readonly outputs: readonly Output[]
  /** Set when the whole message was dropped. */
  readonly dropped: { readonly stage: StageName; readonly reason: DropReason } | undefined
  readonly domainDrops: readonly DomainDrop[]
  readonly category: CategoryLabel
  readonly stream: string | undefined
}

export function newEnvelope(topic: string, payload: Buffer, nowMs: number): Envelope {
  return {
    topic,
    payload,
    nowMs,
    category: 'unclassified',
    stream: undefined,
    deviceId: undefined,
    subject: undefined,
    doc: undefined,
    outputs: [],
  }
}
