import { describe, expect, it } from 'vitest'
import { shippedPipeline } from '../../filters/profiles/testing.ts'
import { profiles } from '../../simulators/index.ts'

const T0 = Date.UTC(2026, 2, 1, 6)

/**
 * Every simulator speaks a format a profile knows: each message it publishes is classified, decoded and valid.
 * What a profile deliberately leaves unknown is listed with the reason, so a gap between a simulator and its
 * profile cannot hide behind the privacy tests (a message dropped at classify never leaks, and never gets tested).
 */
const KNOWN_UNKNOWN: readonly [RegExp, string][] = [
  // OpenMQTTGateway's own availability: the gateway, not a scale.
  [/^home\/[^/]+\/LWT$/, 'classify'],
  // The miscale bridge's Home Assistant discovery: it names the user, and it is configuration, not a reading.
  [/^homeassistant\/sensor\/miscale\/[^/]+\/config$/, 'classify'],
  // Homie's human-readable device name: no profile stream, so it stays home.
  [/^valetudo\/[^/]+\/\$name$/, 'classify'],
]

describe('every simulated message passes classify, decode and validate', () => {
  for (const [name, profile] of Object.entries(profiles)) {
    it(name, async () => {
      const p = shippedPipeline()
      try {
        const problems = new Set<string>()
        let t = T0
        const devices = profile.createDevices(6, 11)
        const send = async (topic: string, payload: Buffer): Promise<void> => {
          const result = await p.send(t, topic, payload)
          const stage = result.dropped?.stage
          if (stage !== 'classify' && stage !== 'decode' && stage !== 'validate') return
          if (KNOWN_UNKNOWN.some(([pattern, s]) => s === stage && pattern.test(topic))) return
          problems.add(`${topic}: ${stage} ${result.dropped?.reason ?? ''}`)
        }
        for (const d of devices) for (const m of d.start(t)) await send(m.topic, m.payload)
        for (let tick = 0; tick < 60; tick++) {
          t += 60_000
          for (const d of devices) for (const m of d.tick(t)) await send(m.topic, m.payload)
        }
        expect([...problems]).toEqual([])
      } finally {
        p.close()
      }
    })
  }
})
