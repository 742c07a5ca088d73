/**
 * Sparkplug B as a stream codec (sdk/codec.ts): decode reads a payload against the births of its edge node and
 * device (one SparkplugState per pipeline), encode writes each recipient domain's copy with Veil's own `seq`, as a
 * Sparkplug B payload (policy version in `uuid`) for a domain configured for protobuf, else as JSON.
 */
import { defineCodec, JSON_CONTENT_TYPE, type Domain } from '#veil/sdk'
import { decodePayload, encodePayload, MESSAGE_TYPES, type MessageType, type SparkplugDocument } from './codec.ts'
import { sparkplugPolicy } from './policy.ts'
import {
  DEFAULT_SPARKPLUG_LIMITS,
  SPARKPLUG_EVENTS,
  SparkplugState,
  type SparkplugEvent,
  type SparkplugLimits,
} from './state.ts'

export const SPARKPLUG_CONTENT_TYPE = 'application/x-protobuf; messageType=org.eclipse.tahu.protobuf.Payload'

/** Edge nodes per domain whose output `seq` is remembered; past it the least recently used restarts at 0. */
export const MAX_SEQ_NODES = 10_000

/** One pipeline's Sparkplug B state: the births aliases resolve against, and the `seq` each domain last received. */
export class SparkplugPipelineState {
  readonly births: SparkplugState
  readonly #seqs = new Map<string, number>()

  constructor(limits: SparkplugLimits, count: (event: SparkplugEvent) => void) {
    this.births = new SparkplugState(limits, count)
  }

  /**
   * Veil's own `seq` per domain and edge node, 0 on NBIRTH and wrapping after 255, counted over the copies that
   * domain is given, so a recipient sees no gap that the policy made and can still tell a gap in what it did receive.
   */
  nextSeq(domain: Domain, node: string, birth: boolean): number {
    const key = `${domain}\u0000${node}`
    const last = this.#seqs.get(key)
    this.#seqs.delete(key)
    const seq = birth || last === undefined ? 0 : (last + 1) % 256
    this.#seqs.set(key, seq)
    if (this.#seqs.size > MAX_SEQ_NODES) this.#seqs.delete(this.#seqs.keys().next().value as string)
    return seq
  }
}

export const sparkplugCodec = defineCodec<SparkplugPipelineState, Partial<SparkplugLimits>>({
  name: 'sparkplug',
  settingsKey: 'sparkplug',
  events: {
    help: 'Sparkplug B state events: births, deaths, data before a birth, stale deaths, unknown aliases, seq gaps, evictions',
    names: SPARKPLUG_EVENTS,
  },
  policy: sparkplugPolicy,
  createState({ count, settings }) {
    return new SparkplugPipelineState({ ...DEFAULT_SPARKPLUG_LIMITS, ...settings }, count)
  },
  decode(msg, _helpers, state) {
    const address = parseSparkplugTopic(msg.topic)
    if (address === undefined || !(MESSAGE_TYPES as readonly string[]).includes(address.type)) return 'internal_error'
    const payload = decodePayload(msg.payload)
    if (typeof payload === 'string') return payload
    const outcome = state.births.apply({ ...address, type: address.type as MessageType }, payload)
    if (typeof outcome === 'string') return outcome
    msg.doc = outcome
    // The group and edge node (and device) name the device wherever the classifier found its id.
    msg.deviceId =
      address.device === undefined
        ? `${address.group}/${address.node}`
        : `${address.group}/${address.node}/${address.device}`
    return undefined
  },
  /** NDEATH carries no `seq`, as in the specification. */
  encode(copy, request, state) {
    const doc = copy.doc as SparkplugDocument
    const seq =
      doc.type === 'NDEATH'
        ? undefined
        : state.nextSeq(copy.domain, edgeNode(request.deviceId ?? ''), doc.type === 'NBIRTH')
    if (request.protobuf) {
      copy.contentType = SPARKPLUG_CONTENT_TYPE
      // Sparkplug B carries NaN and ±Infinity as they are: a number an operator overflowed must not leave.
      const payload = encodePayload(doc, seq, request.policyVersion)
      return sparkplugNonFinite(doc) ? undefined : payload
    }
    const data = seq === undefined ? doc : { type: doc.type, timestamp: doc.timestamp, seq, metrics: doc.metrics }
    const text = `${request.jsonPrefix}${JSON.stringify(data)}}`
    copy.contentType = JSON_CONTENT_TYPE
    // JSON.stringify writes NaN and ±Infinity as null without a word: looked for in the text only where it wrote one.
    if (text.includes('null') && sparkplugNonFinite(doc)) return undefined
    return Buffer.from(text)
  },
})

/** `spBv1.0/<group>/<type>/<node>[/<device>]` read back from a topic the classifier already matched. */
export function parseSparkplugTopic(
  topic: string,
): { group: string; type: string; node: string; device: string | undefined } | undefined {
  const levels = topic.split('/')
  if (levels.length !== 4 && levels.length !== 5) return undefined
  const [, group, type, node, device] = levels as [string, string, string, string, string | undefined]
  return { group, type, node, device }
}

/** `<group>/<edge node>` of a Sparkplug device id (`<group>/<edge node>[/<device>]`): the scope of `seq`. */
function edgeNode(deviceId: string): string {
  const first = deviceId.indexOf('/')
  const second = deviceId.indexOf('/', first + 1)
  return second === -1 ? deviceId : deviceId.slice(0, second)
}

/**
 * Whether a Sparkplug document holds NaN or ±Infinity, without the generic walk (an array and Object.values per
 * metric, 5 % of a Sparkplug B message's pipeline): its numbers are the message timestamp and each metric's value
 * and timestamp (the metrics step builds every metric afresh with just name, dataType, value, timestamp and the two
 * flags).
 */
export function sparkplugNonFinite(doc: SparkplugDocument): boolean {
  if (typeof doc.timestamp === 'number' && !Number.isFinite(doc.timestamp)) return true
  for (const m of doc.metrics) {
    if (typeof m.value === 'number' && !Number.isFinite(m.value)) return true
    if (typeof m.timestamp === 'number' && !Number.isFinite(m.timestamp)) return true
  }
  return false
}
