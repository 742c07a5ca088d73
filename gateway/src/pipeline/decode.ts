import { isUtf8 } from 'node:buffer'
import { inflate, inflateRaw } from 'node:zlib'
import type { DropReason } from '../sdk/model.ts'
import { ProtoDrop } from '../streams/proto.ts'
import type { CodecHelpers, StreamCodec } from '../sdk/codec.ts'
import type { Stage } from './stage.ts'

/**
 * A payload's UTF-8 text, as a fatal TextDecoder reads it: invalid UTF-8 throws (malformed text is dropped rather
 * than rewritten) and a leading byte order mark is left out. Buffer's decoder is twice as fast on a 1.9 kB Frigate
 * event (320 against 650 ns) but writes U+FFFD for bytes it cannot read, so only a text that holds one is checked
 * again, strictly: one that does not came from valid UTF-8.
 */
export function utf8Text(bytes: Buffer): string {
  const text = bytes.toString('utf8')
  if (text.includes('\uFFFD') && !isUtf8(bytes)) throw new TypeError('invalid UTF-8')
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}
const NUMBER = /^-?\d+(\.\d+)?$/

/** What zlib says when the first two bytes are no zlib header (raw deflate starts with a block header instead). */
const ZLIB_HEADER_ERROR = /incorrect header check|unknown compression method|invalid window size/

const OPEN_BRACKET = 0x5b
const OPEN_BRACE = 0x7b
const CLOSE_BRACKET = 0x5d
const CLOSE_BRACE = 0x7d
const QUOTE = 0x22
const BACKSLASH = 0x5c

/**
 * Whether JSON text nests arrays and objects deeper than `max`, found by one pass over the text before it is
 * parsed. JSON.parse itself copes with any depth, but everything after it that walks the value recursively
 * (ajv, operators, JSON.stringify in encode) overflows the stack near 10 000 levels, and a 1 MiB payload can nest
 * 500 000 deep. Brackets inside strings do not count; malformed text is left for JSON.parse to refuse.
 */
export function jsonTooDeep(text: string, max: number): boolean {
  // Deeper than max needs more than max opening brackets.
  if (text.length <= max) return false
  // Counted first with indexOf, which scans natively: a fifteenth of the cost of the loop below for a 1.9 kB Frigate
  // event (the loop cost as much as JSON.parse). Brackets inside strings count too, which can only send a text to
  // the exact walk, never let a deep one through.
  let brackets = 0
  for (let i = text.indexOf('{'); i !== -1 && brackets <= max; i = text.indexOf('{', i + 1)) brackets++
  for (let i = text.indexOf('['); i !== -1 && brackets <= max; i = text.indexOf('[', i + 1)) brackets++
  if (brackets <= max) return false
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === BACKSLASH) i++
      else if (c === QUOTE) inString = false
    } else if (c === QUOTE) {
      inString = true
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > max) return true
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      depth--
    }
  }
  return false
}

/** The core's helpers for codecs, bound to the pipeline's limits (see sdk/codec.ts). */
export function codecHelpers(limits: { decompressedBytes: number; jsonDepth: number }): CodecHelpers {
  const capped = (fn: typeof inflate, payload: Buffer): Promise<Buffer | DropReason | 'header'> =>
    new Promise((resolve) => {
      fn(payload, { maxOutputLength: limits.decompressedBytes }, (err, out) => {
        if (err === null) resolve(out)
        else if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError)
          resolve('decompressed_too_large')
        else if (fn === inflate && ZLIB_HEADER_ERROR.test(err.message)) resolve('header')
        else resolve('undecodable')
      })
    })
  /** zlib first (what Valetudo sends); a stream without a valid zlib header is tried as raw deflate, same cap. */
  const inflateCapped = async (payload: Buffer): Promise<Buffer | DropReason> => {
    const out = await capped(inflate, payload)
    return out === 'header' ? ((await capped(inflateRaw, payload)) as Buffer | DropReason) : out
  }
  const parseJson = (text: string, env: { doc?: unknown }): DropReason | undefined => {
    if (jsonTooDeep(text, limits.jsonDepth)) return 'nesting_too_deep'
    env.doc = JSON.parse(text)
    return undefined
  }
  const inflateJson = (payload: Buffer, env: { doc?: unknown }): Promise<DropReason | undefined> =>
    inflateCapped(payload).then((out) => {
      if (typeof out === 'string') return out
      try {
        return parseJson(utf8Text(out), env)
      } catch {
        return 'undecodable'
      }
    })
  return { utf8Text, parseJson, inflate: inflateCapped, inflateJson }
}

/** No codec state: what a codec without createState is given. */
const NO_STATES: ReadonlyMap<StreamCodec, unknown> = new Map()

/**
 * Bytes to a value, per the stream's decoding. zlib payloads are inflated on libuv's thread pool with an output
 * cap, so a map of several MB does not block the event loop and a zlib bomb stops at the cap. A stream with a
 * codec (a format its profile brings) is decoded by it, with `states`, each codec's state for this pipeline.
 */
export function decodeStage(
  limits: { decompressedBytes: number; jsonDepth: number },
  states: ReadonlyMap<StreamCodec, unknown> = NO_STATES,
): Stage {
  const helpers = codecHelpers(limits)
  const { parseJson, inflateJson } = helpers

  return {
    name: 'decode',
    run(env) {
      const stream = env.stream
      if (stream === undefined) return 'internal_error'
      const decoding = stream.decoding
      try {
        if (typeof decoding !== 'string') return decoding.decode(env, helpers, states.get(decoding))
        switch (decoding) {
          case 'json':
            return parseJson(utf8Text(env.payload), env)
          case 'text':
            env.doc = utf8Text(env.payload).trim()
            return undefined
          case 'number': {
            const text = utf8Text(env.payload).trim()
            if (!NUMBER.test(text)) return 'undecodable'
            env.doc = Number(text)
            return undefined
          }
          case 'binary':
            env.doc = env.payload
            return undefined
          case 'zlib-json':
            return inflateJson(env.payload, env)
          case 'protobuf': {
            const doc = stream.decodeProtobuf?.(env.payload)
            if (doc === undefined) return 'internal_error'
            if (doc instanceof ProtoDrop) return doc.reason
            env.doc = doc
            return undefined
          }
        }
      } catch {
        return 'undecodable'
      }
    },
  }
}
