import type { Stage } from './stage.ts'

/** Checks the decoded value against the stream's schema (compiled at load) and finds a device id in the payload. */
export function validateStage(): Stage {
  return {
    name: 'validate',
    run(env) {
      const stream = env.stream
      if (stream === undefined) return 'internal_error'
      if (stream.validate !== undefined && !stream.validate(env.doc)) return 'invalid'
      if (stream.deviceIdFrom !== undefined) {
        const id = stream.deviceIdFrom(env.doc)
        if (typeof id !== 'string' || id === '') return 'invalid'
        env.deviceId = id
      }
      if (env.deviceId === undefined) return 'invalid'
      // One device, one pseudonym: firmwares differ in the case of MAC-derived ids (Shelly gen1 upper, gen2 lower);
      // formats whose names are case-sensitive (Sparkplug B) keep them.
      env.deviceId = stream.caseSensitiveId ? env.deviceId.trim() : env.deviceId.trim().toLowerCase()
      if (stream.normalizeDeviceId !== undefined) env.deviceId = stream.normalizeDeviceId(env.deviceId)
      return undefined
    },
  }
}
