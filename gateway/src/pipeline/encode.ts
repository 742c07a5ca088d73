import type { Domain } from '../sdk/model.ts'
import { JSON_CONTENT_TYPE, type CodecEncodeRequest, type StreamCodec } from '../sdk/codec.ts'
import type { PolicyHolder } from './filter.ts'
import { encodeFiltered } from './filtered.ts'
import type { Stage } from './stage.ts'

/** How a recipient domain receives its copies (configuration key `encoding`); JSON unless configured. */
export type OutputEncoding = 'json' | 'protobuf'

export { JSON_CONTENT_TYPE }
export const FILTERED_CONTENT_TYPE = 'application/x-protobuf; messageType=veil.v1.Filtered'

/** No codec state: what a codec's encoder gets in a pipeline built without states. */
const NO_STATES: ReadonlyMap<StreamCodec, unknown> = new Map()

/**
 * Serialises each domain's document with the policy version stamped on it, in the domain's encoding:
 * - JSON: `{"policy":"<version>","data":<filtered document>}`. The stamp travels in the payload because the local
 *   broker (aedes 1.x) speaks MQTT 3.1.1, which has no user properties.
 * - protobuf: `veil.v1.Filtered { policy, data: google.protobuf.Value }` (schemas/proto/filtered.proto).
 * A stream whose codec has its own encoder (Sparkplug B) is written by it, in both encodings, with the codec's
 * state for this pipeline from `states`.
 */
export function encodeStage(
  policies: PolicyHolder,
  encodings: ReadonlyMap<Domain, OutputEncoding> = new Map(),
  states: ReadonlyMap<StreamCodec, unknown> = NO_STATES,
): Stage {
  // The stamp changes only with the policy set: build it once per version, not per message.
  let version = ''
  let prefix = ''
  // One request object per stage, refilled per copy: a codec's encoder costs no allocation of its own.
  const request: { -readonly [K in keyof CodecEncodeRequest]: CodecEncodeRequest[K] } = {
    protobuf: false,
    policyVersion: '',
    jsonPrefix: '',
    deviceId: undefined,
  }
  return {
    name: 'encode',
    run(env, ctx) {
      if (policies.current.version !== version) {
        version = policies.current.version
        prefix = `{"policy":"${version}","data":`
      }
      const decoding = env.stream?.decoding
      const binary = decoding === 'binary'
      const codec = typeof decoding === 'object' && decoding.encode !== undefined ? decoding : undefined
      if (codec !== undefined) {
        request.policyVersion = version
        request.jsonPrefix = prefix
        request.deviceId = env.deviceId
      }
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
          } else if (codec !== undefined) {
            request.protobuf = protobuf
            payload = codec.encode?.(out, request, states.get(codec))
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
        // JSON.stringify writes NaN and ±Infinity as null without a word: a number an operator overflowed must not
        // leave at all (the veil.v1.Filtered writer refuses them itself, a codec's encoder checks its own output).
        // Looked for in the string: Buffer#includes converts its argument to bytes on every call.
        if (payload !== undefined && text?.includes('null') === true && hasNonFinite(out.doc)) payload = undefined
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

function refuseBytes(_key: string, value: unknown): unknown {
  if (
    value instanceof Uint8Array ||
    (typeof value === 'object' &&
      value !== null &&
      (value as { type?: unknown }).type === 'Buffer' &&
      Array.isArray((value as { data?: unknown }).data))
  ) {
    throw new Error('bytes in a filtered document')
  }
  return value
}
