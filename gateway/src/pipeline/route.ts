import type { Keyring } from '../keys/keyring.ts'
import { FILTERED_ROOT } from '../sdk/model.ts'
import type { Stage } from './stage.ts'

/**
 * Names each copy's filtered topic, `veil/<domain>/<category>/<pseudonym>/<stream>`. The raw device id only ever
 * enters the keyed pseudonym, so identifiers hidden in raw topics (`tasmota_0329F7`, user names) never reach an
 * output topic. Inside the silent gap around the device's rotation moment the keyring gives no pseudonym and the
 * domain's copy is dropped (`rotation_gap`); that holds for scheduled emissions too, which carry their emission
 * time as nowMs.
 */
export function routeStage(keyring: Keyring): Stage {
  return {
    name: 'route',
    run(env, ctx) {
      const stream = env.stream
      const deviceId = env.deviceId
      if (stream === undefined || deviceId === undefined) return 'internal_error'
      let kept = 0
      for (const out of env.outputs) {
        const pseudonym = keyring.pseudonym(
          { domain: out.domain, category: stream.category, deviceId, nowMs: env.nowMs },
          stream.category,
          deviceId,
        )
        if (pseudonym === undefined) {
          ctx.dropDomain('route', env, out.domain, 'rotation_gap')
          continue
        }
        out.topic = `${FILTERED_ROOT}/${out.domain}/${stream.category}/${pseudonym}/${stream.name}`
        env.outputs[kept++] = out
      }
      env.outputs.length = kept
      return undefined
    },
  }
}
