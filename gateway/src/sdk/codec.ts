/**
 * The codec hook: how a profile brings a payload format the core does not know (Valetudo's PNG zTXt, Traccar's
 * OsmAnd query string, Sparkplug B) without the core naming it. A stream's `decoding` is either one of the generic
 * forms (`Decoding` in profile.ts) or a StreamCodec.
 *
 * The hot path allocates nothing for the hook: the codec writes the value (and the device id, where it has one)
 * into the message it is given, helpers and per-pipeline state are built once per Pipeline.
 */
import type { Domain, DropReason } from './model.ts'
import type { PolicyExtension } from './policy.ts'

/** The content type of every JSON copy, the core's or a codec's. */
export const JSON_CONTENT_TYPE = 'application/json'

/** The message as a codec sees it: read its bytes and topic, write the decoded value and, if it knows it, the device id. */
export interface CodecMessage {
  readonly topic: string
  readonly payload: Buffer
  /** Epoch ms: the gateway's clock (the input's `ts` under `veil replay`). */
  readonly nowMs: number
  /** The decoded value; set by decode. */
  doc: unknown
  /** The device id, where the payload or topic names it in a form the classifier cannot read; else left alone. */
  deviceId: string | undefined
}

/** What the core lends every codec, built once per pipeline with the pipeline's limits. */
export interface CodecHelpers {
  /** A payload's UTF-8 text; throws on invalid UTF-8 (a throw in decode is an `undecodable` drop). */
  utf8Text(bytes: Buffer): string
  /** Parses JSON text into `msg.doc` after the nesting-depth check (`nesting_too_deep`); throws on bad JSON. */
  parseJson(text: string, msg: CodecMessage): DropReason | undefined
  /** zlib (or raw deflate) on libuv's thread pool, capped at the decompressed-bytes limit (`decompressed_too_large`). */
  inflate(bytes: Buffer): Promise<Buffer | DropReason>
  /** inflate, then UTF-8 and parseJson into `msg.doc`, as the `zlib-json` decoding does. */
  inflateJson(bytes: Buffer, msg: CodecMessage): Promise<DropReason | undefined>
}

/** What a codec's per-pipeline state is created with. */
export interface CodecStateContext<Settings> {
  /** Counts one of the codec's `events` (veil_<codec>_events_total{event}); unknown names count nothing. */
  readonly count: (event: string) => void
  /** The profile's settings (its `settingsKey` section of the configuration), or its defaults. */
  readonly settings: Settings | undefined
}

/** One recipient domain's copy as a codec's encoder sees it. */
export interface CodecCopy {
  readonly domain: Domain
  readonly doc: unknown
  /** MQTT 5 content type of the payload; the encoder sets it. */
  contentType: string
}

/** How the encode stage asks a codec for a copy's bytes. */
export interface CodecEncodeRequest {
  /** The recipient domain's configured encoding. */
  readonly protobuf: boolean
  readonly policyVersion: string
  /** `{"policy":"<version>","data":` : the JSON stamp, built once per policy version. */
  readonly jsonPrefix: string
  /** The message's device id (pseudonym input), as decode or classify found it. */
  readonly deviceId: string | undefined
}

export interface StreamCodec<State = unknown, Settings = unknown> {
  /** Short name for descriptions and metrics (`png-ztxt`, `osmand`, `sparkplug`). */
  readonly name: string
  /**
   * What the codec's state counts, as the `veil_<name>_events_total{event}` counter: its help text and its event
   * names (a closed list, so the label stays bounded); the core binds one handle per name at pipeline start.
   */
  readonly events?: { readonly help: string; readonly names: readonly string[] }
  /** The configuration key of the settings createState is given (`sparkplug`). */
  readonly settingsKey?: string
  /** Called once per Pipeline for each distinct codec its streams use; the result is passed to decode and encode. */
  createState?(context: CodecStateContext<Settings>): State
  /**
   * Bytes to a value in `msg.doc` (and `msg.deviceId` where the codec knows it), or the reason to drop. A throw is
   * `undecodable`.
   */
  decode(
    msg: CodecMessage,
    helpers: CodecHelpers,
    state: State,
  ): DropReason | undefined | Promise<DropReason | undefined>
  /**
   * The codec's own output encoding, for a format that leaves in its own shape (Sparkplug B payloads, Veil's `seq`):
   * a copy's bytes, with `copy.contentType` set, or undefined to drop that copy (`encode_error`), e.g. for a
   * non-finite number. Without it, copies are encoded as any JSON stream.
   */
  encode?(copy: CodecCopy, request: CodecEncodeRequest, state: State): Buffer | undefined
  /** The section this format adds to its streams' policies (Sparkplug B's `metrics:`), if any. */
  // The section's type is the extension's own; the loader hands it over unread.
  readonly policy?: PolicyExtension<never>
}

/** Identity, for typing a codec where it is declared. */
export function defineCodec<State, Settings = unknown>(
  codec: StreamCodec<State, Settings>,
): StreamCodec<State, Settings> {
  return codec
}

/** A stream's decoding by name: the generic form, or its codec's name (for checks and descriptions). */
export function decodingName(decoding: string | StreamCodec): string {
  return typeof decoding === 'string' ? decoding : decoding.name
}
