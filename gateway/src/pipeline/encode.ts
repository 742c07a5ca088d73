import type { Domain } from '../sdk/model.ts'
import { encodePayload, type SparkplugDocument } from '../../../filters/profiles/sparkplug/codec.ts'
import type { PolicyHolder } from './filter.ts'
import { encodeFiltered } from './filtered.ts'
import type { Stage } from './stage.ts'

/** How a recipient domain receives its copies (configuration key `encoding`); JSON unless configured. */
export type OutputEncoding = 'json' | 'protobuf'

export const JSON_CONTENT_TYPE = 'application/json'
export const FILTERED_CONTENT_TYPE = 'application/x-protobuf; messageType=veil.v1.Filtered'
export const SPARKPLUG_CONTENT_TYPE = 'application/x-protobuf; messageType=org.eclipse.tahu.protobuf.Payload'

/** Edge nodes per domain whose output `seq` is remembered; past it the least recently used restarts at 0. */
export const MAX_SEQ_NODES = 10_000

/**
 * Serialises each domain's document with the policy version stamped on it, in the domain's encoding:
 * - JSON: `{"policy":"<version>","data":<filtered document>}`. The stamp travels in the payload because the local
 *   broker (aedes 1.x) speaks MQTT 3.1.1, which has no user properties.
 * - protobuf: `veil.v1.Filtered { policy, data: google.protobuf.Value }` (schemas/proto/filtered.proto), except
 *   Sparkplug B streams, which leave as Sparkplug B payloads (policy version in `uuid`).
 * Sparkplug messages get Veil's own `seq` per domain and edge node in both encodings, 0 on NBIRTH and wrapping
 * after 255, counted over the copies that domain actually receives, so a recipient sees no gap that the policy
 * made and can still tell a gap in what it did receive. NDEATH carries none, as in the specification.
 */
export function encodeStage(policies: PolicyHolder, encodings: ReadonlyMap<Domain, OutputEncoding> = new Map()): Stage {
  // The stamp changes only with the policy set: build it once per version, not per message.
  let version = ''
  let prefix = ''
  const seqs = new Map<string, number>()
  const nextSeq = (domain: Domain, node: string, birth: boolean): number => {
    const key = `${domain}\u0000${node}`
    const last = seqs.get(key)
    seqs.delete(key)
    const seq = birth || last === undefined ? 0 : (last + 1) % 256
    seqs.set(key, seq)
    if (seqs.size > MAX_SEQ_NODES) seqs.delete(seqs.keys().next().value as string)
    return seq
  }
  return {
    name: 'encode',
    run(env, ctx) {
      if (policies.current.version !== version) {
        version = policies.current.version
        prefix = `{"policy":"${version}","data":`
      }
      const binary = env.stream?.decoding === 'binary'
      const sparkplug = env.stream?.decoding === 'sparkplug'
      let kept = 0
      for (const out of env.outputs) {
        const protobuf = encodings.get(out.domain) === 'protobuf'
        let payload: Buffer | undefined
        // The JSON text written, where the copy is JSON: looked at for `null` before it becomes bytes.
        let text: string | undefined
        try {
          if (out.doc instanceof Uint8Array) {
            // Raw bytes never leave, in any encoding ({"type":"Buffer","data":[...]} would be the raw payload).
            payload = undefined
          } else if (sparkplug) {
            const doc = out.doc as SparkplugDocument
            const seq = doc.type === 'NDEATH' ? undefined : nextSeq(out.domain, edgeNode(env.deviceId ?? ''), doc.type === 'NBIRTH')
            if (protobuf) {
              payload = encodePayload(doc, seq, version)
              out.contentType = SPARKPLUG_CONTENT_TYPE
            } else {
              const data = seq === undefined ? doc : { type: doc.type, timestamp: doc.timestamp, seq, metrics: doc.metrics }
              text = `${prefix}${JSON.stringify(data)}}`
              payload = Buffer.from(text)
              out.contentType = JSON_CONTENT_TYPE
            }
          } else if (protobuf) {
            payload = encodeFiltered(version, out.doc, binary)
            out.contentType = FILTERED_CONTENT_TYPE
          } else {
            // A replacer disables V8's fast stringify (2 µs instead of 1): only binary streams can carry bytes.
            const json = binary ? JSON.stringify(out.doc, refuseBytes) : JSON.stringify(out.doc)
            text = json === undefined ? undefined : `${prefix}${json}}`
            payload = text === undefined ? undefined : Buffer.from(text)
            out.contentType = JSON_CONTENT_TYPE
          }
        } catch {
          payload = undefined
        }
        // JSON.stringify writes NaN and ±Infinity as null without a word, and Sparkplug B would carry them: a number
        // an operator overflowed must not leave at all (the veil.v1.Filtered writer refuses them itself).
        if (payload !== undefined && nonFiniteMayHide(text, sparkplug) && (sparkplug ? sparkplugNonFinite(out.doc as SparkplugDocument) : hasNonFinite(out.doc))) payload = undefined
        if (payload === undefined) {
          ctx.dropDomain('encode', env, out.domain, 'encode_error')
          continue
        }
        out.payload = payload
        env.outputs[kept++] = out
      }
      env.outputs.length = kept
      return undefined
    },
  }
}

/** `<group>/<edge node>` of a Sparkplug device id (`<group>/<edge node>[/<device>]`): the scope of `seq`. */
function edgeNode(deviceId: string): string {
  const first = deviceId.indexOf('/')
  const second = deviceId.indexOf('/', first + 1)
  return second === -1 ? deviceId : deviceId.slice(0, second)
}

/**
 * Where a non-finite number could leave unnoticed: JSON text only where it wrote null (looked for in the string:
 * Buffer#includes converts its argument to bytes on every call); Sparkplug B carries NaN and ±Infinity as they are;
 * veil.v1.Filtered never (its writer throws on them).
 */
function nonFiniteMayHide(text: string | undefined, sparkplug: boolean): boolean {
  return text === undefined ? sparkplug : text.includes('null')
}

/** Whether a document holds NaN or ±Infinity; iterative, so a deep operator output cannot overflow the stack. */
export function hasNonFinite(doc: unknown): boolean {
  const stack: unknown[] = [doc]
  while (stack.length > 0) {
    const value = stack.pop()
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) return true
    } else if (Array.isArray(value)) {
      for (const item of value) stack.push(item)
    } else if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array)) {
      for (const item of Object.values(value)) stack.push(item)
    }
  }
  return false
}

/**
 * hasNonFinite for a Sparkplug document, without the generic walk (an array and Object.values per metric, 5 % of
 * a Sparkplug B message's pipeline): its numbers are the message timestamp and each metric's value and timestamp
 * (the metrics step builds every metric afresh with just name, dataType, value, timestamp and the two flags).
 */
export function sparkplugNonFinite(doc: SparkplugDocument): boolean {
  if (typeof doc.timestamp === 'number' && !Number.isFinite(doc.timestamp)) return true
  for (const m of doc.metrics) {
    if (typeof m.value === 'number' && !Number.isFinite(m.value)) return true
    if (typeof m.timestamp === 'number' && !Number.isFinite(m.timestamp)) return true
  }
  return false
}

function refuseBytes(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array || (typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data))) {
    throw new Error('bytes in a filtered document')
  }
  return value
}
