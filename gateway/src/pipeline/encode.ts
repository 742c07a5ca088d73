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

function refuseBytes(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array || (typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data))) {
    throw new Error('bytes in a filtered document')
  }
  return value
}
