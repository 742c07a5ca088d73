import type { Category } from './model.ts'
import type { StreamCodec } from './codec.ts'
import type { TimeUnit } from './time.ts'

/**
 * How a stream's bytes become a value, in the generic forms the core owns:
 * - `json`: UTF-8 JSON (invalid UTF-8 is rejected, not replaced);
 * - `text`: a UTF-8 string such as `Online` or `ON`;
 * - `number`: a decimal number sent as text (`85`, `21.5`);
 * - `zlib-json`: zlib-deflated UTF-8 JSON (Valetudo map-data), inflated with a size cap; a stream without a zlib
 *   header is inflated as raw deflate (same cap);
 * - `binary`: opaque bytes (JPEG snapshots): no allowlist can pass them, only an operator that transforms them;
 * - `protobuf`: a message of `messageType` (schemas/proto/), wire-checked, decoded to a plain object with the
 *   .proto field names and validated by the stream's JSON Schema like the JSON form of the same stream.
 * A format only one profile speaks (Valetudo's PNG zTXt, Traccar's OsmAnd, Sparkplug B) is a StreamCodec of that
 * profile instead (sdk/codec.ts).
 */
export type Decoding = 'json' | 'text' | 'number' | 'zlib-json' | 'binary' | 'protobuf'

/** A JSON Schema object; kept as plain data so profiles can ship it as a .json file beside their code. */
export type JsonSchema = Readonly<Record<string, unknown>>

export interface StreamDefinition {
  /**
   * Topic patterns, `/`-separated: a literal level, `+` (any one level), `{id}` (a level of the device id) or a
   * literal start followed by `{id}` (`switch:{id}`: the rest of the level, `1` of `switch:1`, is a level of the
   * device id). Routes of one stream are tried in the order listed, so a literal `switch:0` can come first. The
   * first level is a literal, or `{id}` for firmwares whose prefix is the device id (Shelly gen2); such a pattern
   * must fix another level and may not overlap another id-first pattern (see Classifier).
   */
  readonly topics: readonly string[]
  /** A generic form, or the codec of a format the profile brings. */
  readonly decoding: Decoding | StreamCodec
  /**
   * Shape of the decoded value; checked before any policy runs. Binary streams have none. Each time property
   * carries `"x-veil-time": "epoch_s" | "epoch_ms" | "iso"`, its one unit (see streams/time-fields.ts).
   */
  readonly schema?: JsonSchema
  /**
   * Time fields of a stream whose decoded value has no JSON Schema (Sparkplug B), in allowlist syntax, with their
   * unit; the same declaration as `x-veil-time` in a schema.
   */
  readonly timeFields?: Readonly<Record<string, TimeUnit>>
  /**
   * Where the device id is when the topic does not carry it (Frigate's `frigate/events` names the camera in
   * `after.camera`): a dotted path into the validated value.
   */
  readonly deviceIdPath?: string
  /**
   * The device id of an instance-level stream whose topic and payload name no device (Frigate's `frigate/stats`
   * and `frigate/available`: the NVR itself, not a camera). Like any device id it leaves only as a pseudonym.
   * Every broker client publishing such a topic shares this one id. Not allowed with `{id}` or `deviceIdPath`.
   */
  readonly fixedDeviceId?: string
  /** The protobuf message type of a `protobuf` stream, e.g. `veil.canonical.v1.SmartPlugEnergy`. */
  readonly messageType?: string
  /**
   * The stream name policies use for this one when several streams share a policy (Sparkplug's NBIRTH, NDATA and
   * NDEATH are all `sparkplug/node`); its own name still names its output topic. Default: its own name.
   */
  readonly policyStream?: string
  /**
   * Rewrites the device id (already trimmed and lower-cased) into one canonical form, so that one device written
   * several ways gets one pseudonym (BLE MACs as `aa:bb:..`, `AA-BB-..` or `aabb..`). Must be pure and cheap.
   */
  readonly normalizeDeviceId?: (id: string) => string
  /**
   * Device ids are kept in their case (only trimmed), for formats whose names are case-sensitive by specification
   * (Sparkplug B group, edge node and device ids): two names that differ in case are two devices, with two
   * pseudonyms and, for Sparkplug, two `seq` counters. Default: lower-cased, because firmwares write one MAC-derived
   * id in either case.
   */
  readonly caseSensitiveId?: boolean
}

export interface ProfileDefinition {
  /** Stable name used in policies (`<profile>/<stream>`) and in `veil simulate --profile`. */
  readonly name: string
  readonly category: Category
  readonly description: string
  readonly streams: Readonly<Record<string, StreamDefinition>>
  /** How a device account of this profile is bound to topics on the broker; see gateway/src/auth/README.md. */
  readonly access?: ProfileAccess
}

export interface ProfileAccess {
  /**
   * `device` (the default): the client is the device, and every `{id}` in the topics it publishes must be its own
   * account's device id. `hub`: one client publishes for many devices (an NVR for its cameras, a Zigbee or BLE
   * bridge for its devices), so the `{id}` levels may be any device.
   */
  readonly scope?: 'device' | 'hub'
  /**
   * Topic filters on which the firmware receives commands, `{id}` standing for the account's device id (`+` for a
   * hub). A device may subscribe to these only, and receives on them only what a local or admin client publishes.
   */
  readonly commands?: readonly string[]
}

export function defineProfile(definition: ProfileDefinition): ProfileDefinition {
  return definition
}
