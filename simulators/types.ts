/**
 * Shared contract of the device simulators. Each profile folder (`tasmota/`, `frigate/`, ...) implements
 * {@link SimulatorProfile}; `runSimulators` in `index.ts` drives the devices against a real broker, and tests call
 * `start()`/`tick()` directly with synthetic clocks.
 */

/** Device category, as the gateway classifies it (same literals as `gateway/src/sdk/model.ts`). */
export type Category = 'smart_plug' | 'camera' | 'robot_vacuum' | 'body_scale' | 'gps_tracker'

/** One MQTT PUBLISH exactly as the real firmware would send it. */
export interface SimMessage {
  topic: string
  /** Raw bytes: UTF-8 text/JSON, or binary (JPEG, zlib) for cameras and vacuums. */
  payload: Buffer
  /** The QoS the real firmware uses (Tasmota and Frigate publish QoS 0, OwnTracks QoS 1, ...). */
  qos: 0 | 1
  retain: boolean
}

/**
 * One simulated device. Devices are stateful: `tick()` advances their state (energy counter, event lifecycle,
 * cleaning run, walk), so the same sequence of calls on a device created from the same seed yields the same bytes.
 */
export interface SimDevice {
  /** The raw device id as it appears in topics (e.g. `tasmota_CA11A7`). */
  readonly id: string
  /**
   * Identifying strings this device publishes (MAC suffix, user and room names, SSID, BSSID, plate, IP...).
   * Each one occurs in the device's topics or payloads (inside the inflated map for Valetudo), is unique across
   * all simulated devices of all profiles, and must never appear in what the gateway forwards.
   */
  readonly canaries: readonly string[]
  /** Messages sent once on connect (LWT, retained attributes). */
  start(nowMs: number): SimMessage[]
  /** Messages for one publish period at time `nowMs` (epoch ms; call with non-decreasing times). */
  tick(nowMs: number): SimMessage[]
}

/** A kind of device: one firmware or integration with its real topic layout and payload format. */
export interface SimulatorProfile {
  /** The profile's name, as in `filters/profiles/` and `veil simulate --profile`. */
  readonly name: string
  /** `all`: the canonical profile, whose devices cover every category. */
  readonly category: Category | 'all'
  readonly description: string
  /**
   * How many devices it takes for every kind this simulator makes to appear (Shelly gen1: a Plug S, a 2.5 and an
   * EM by index); 1 when all devices are of one kind. The privacy tests create at least this many.
   */
  readonly variants: number
  /** Deterministic for a given seed; device `i` is the same whatever `count` is. */
  createDevices(count: number, seed: number): SimDevice[]
}

/**
 * How a device's MQTT client presents itself to the broker, derived from the device the way the real firmware
 * does it (Tasmota `DVES_<MAC suffix>`, Valetudo `valetudo_<identifier>`, ...), with its last-will message.
 */
export interface ClientIdentity {
  /** May be empty: the miscale bridge connects with an empty client id and lets the broker assign one. */
  clientId: string
  will?: SimMessage
  /** MQTT clean session flag (Valetudo connects with `clean: false`). */
  clean: boolean
}
