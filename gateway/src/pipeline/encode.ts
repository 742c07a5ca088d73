import type { PolicyHolder } from './filter.ts'
import type { Stage } from './stage.ts'

/**
 * Serialises each domain's document inside a small envelope that stamps the policy version:
 * `{"policy":"<version>","data":<filtered document>}`. The stamp travels in the payload because the local broker
 * (aedes 1.x) speaks MQTT 3.1.1, which has no user properties.
 */
export function encodeStage(policies: PolicyHolder): Stage {
  // The stamp changes only with the policy set: build it once per version, not per message.
  let version = ''
  let prefix = ''
  return {
    name: 'encode',
    run(env, ctx) {
      if (policies.current.version !== version) {
        version = policies.current.version
        prefix = `{"policy":"${version}","data":`
      }
      const binary = env.stream?.decoding === 'binary'
      let kept = 0
      for (const out of env.outputs) {
        let json: string | undefined
        try {
          // Raw bytes never leave as JSON either ({"type":"Buffer","data":[...]} would be the raw payload).
          // A replacer disables V8's fast stringify (2 µs instead of 1): only binary streams can carry bytes.
          json = out.doc instanceof Uint8Array ? undefined : binary ? JSON.stringify(out.doc, refuseBytes) : JSON.stringify(out.doc)
        } catch {
          json = undefined
        }
        // JSON.stringify writes NaN and ±Infinity as null without a word: a number an operator overflowed must not
        // leave as a silent null. Only a text with a null in it needs the walk.
        if (json !== undefined && json.includes('null') && hasNonFinite(out.doc)) json = undefined
        if (json === undefined) {
          ctx.dropDomain('encode', env, out.domain, 'encode_error')
          continue
        }
        out.payload = Buffer.from(`${prefix}${json}}`)
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
  if (value instanceof Uint8Array || (typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data))) {
    throw new Error('bytes in a filtered document')
  }
  return value
}
