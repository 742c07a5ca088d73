import type { PolicyHolder } from './filter.ts'
import type { Stage } from './stage.ts'

/**
 * Serialises each domain's document inside a small envelope that stamps the policy version:
 * `{"policy":"<version>","data":<filtered document>}`. The stamp travels in the payload because the local broker
 * (aedes 1.x) speaks MQTT 3.1.1, which has no user properties.
 */
export function encodeStage(policies: PolicyHolder): Stage {
  return {
    name: 'encode',
    run(env, ctx) {
      const prefix = `{"policy":"${policies.current.version}","data":`
      let kept = 0
      for (const out of env.outputs) {
        let json: string | undefined
        try {
          json = JSON.stringify(out.doc)
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
