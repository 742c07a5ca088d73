import type { Keyring } from '../keys/keyring.ts'
import { FILTERED_ROOT } from '../model.ts'
import type { Stage } from './stage.ts'

/**
 * Names each copy's filtered topic, `veil/<domain>/<category>/<pseudonym>/<stream>`. The raw device id only ever
 * enters the keyed pseudonym, so identifiers hidden in raw topics (`tasmota_0329F7`, user names) never reach an
 * output topic.
 */
export function routeStage(keyring: Keyring): Stage {
  return {
    name: 'route',
    run(env) {
      const stream = env.stream
      const deviceId = env.deviceId
      if (stream === undefined || deviceId === undefined) return 'internal_error'
      for (const out of env.outputs) {
        const pseudonym = keyring.pseudonym(out.domain, stream.category, deviceId, env.nowMs)
        out.topic = `${FILTERED_ROOT}/${out.domain}/${stream.category}/${pseudonym}/${stream.name}`
      }
      return undefined
    },
  }
}
