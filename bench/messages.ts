import { registry } from '../simulators/registry.ts'
import type { SimMessage } from '../simulators/types.ts'

/** One category's typical message: what its devices send most often, as the simulator's firmware sends it. */
export interface TypicalMessage {
  readonly category: string
  readonly stream: string
  readonly topic: string
  readonly payload: Buffer
}

const T0 = Date.UTC(2026, 1, 2, 2, 40)

/** The latest message on a topic matching `topic` from device 0 of a simulator profile, after four minutes of ticks. */
function sample(profile: string, topic: RegExp): SimMessage {
  const entry = registry[profile]
  if (entry === undefined) throw new Error(`no simulator profile ${profile}`)
  const [device] = entry.profile.createDevices(1, 7)
  if (device === undefined) throw new Error(`${profile}: no device`)
  const messages = [...device.start(T0)]
  for (let t = 1; t <= 4; t++) messages.push(...device.tick(T0 + t * 60_000))
  // The steady state, not the first publish after connect: the latest message on the topic.
  const found = messages.filter((m) => topic.test(m.topic)).at(-1)
  if (found === undefined) throw new Error(`${profile}: no message on ${topic.source}`)
  return found
}

/** The typical message of every category (issue 8 (a)); the stream is the `<profile>/<stream>` its policy names. */
export function typicalMessages(): TypicalMessage[] {
  const pick = (category: string, stream: string, profile: string, topic: RegExp): TypicalMessage => {
    const m = sample(profile, topic)
    return { category, stream, topic: m.topic, payload: m.payload }
  }
  return [
    pick('smart_plug', 'tasmota/sensor', 'tasmota', /^tele\/[^/]+\/SENSOR$/),
    pick('smart_plug', 'tasmota/state', 'tasmota', /^tele\/[^/]+\/STATE$/),
    pick('camera', 'frigate/events', 'frigate', /^frigate\/events$/),
    pick('robot_vacuum', 'valetudo/status', 'valetudo', /\/StatusStateAttribute\/status$/),
    pick('robot_vacuum', 'valetudo/battery_level', 'valetudo', /\/BatteryStateAttribute\/level$/),
    pick('robot_vacuum', 'valetudo/segments', 'valetudo', /\/MapData\/segments$/),
    pick('body_scale', 'miscale/weight', 'miscale', /^miscale\/[^/]+\/weight$/),
    pick('gps_tracker', 'owntracks/location', 'owntracks', /^owntracks\/[^/]+\/[^/]+$/),
  ]
}
