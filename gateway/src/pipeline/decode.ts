import { isUtf8 } from 'node:buffer'
import { crc32, inflate, inflateRaw } from 'node:zlib'
import type { DropReason } from '../sdk/model.ts'
import { ProtoDrop } from '../streams/proto.ts'
import { decodePayload, MESSAGE_TYPES, type MessageType } from '../../../filters/profiles/sparkplug/codec.ts'
import { parseSparkplugTopic } from '../../../filters/profiles/sparkplug/index.ts'
import { SparkplugState } from '../../../filters/profiles/sparkplug/state.ts'
import { parseOsmandQuery } from './osmand.ts'
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

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
/** More chunks than any Valetudo map-data-hass PNG has (IHDR, a few ancillary, IDAT(s), zTXt, IEND). */
export const PNG_MAX_CHUNKS = 1024
/** What zlib says when the first two bytes are no zlib header (raw deflate starts with a block header instead). */
const ZLIB_HEADER_ERROR = /incorrect header check|unknown compression method|invalid window size/
const VALETUDO_KEYWORD = Buffer.from('ValetudoMap\0', 'latin1')

/**
 * The zlib datastream of the PNG's `zTXt` chunk whose keyword is `ValetudoMap` (Valetudo `map-data-hass`), or
 * undefined when the PNG is malformed: no signature, IHDR not first, a length past the end, more than
 * PNG_MAX_CHUNKS chunks, no IEND, a bad CRC on the ValetudoMap chunk, a compression method other than 0, no such
 * chunk or more than one. CRCs of the other chunks (the image itself) are not checked: their bytes are never used.
 */
export function pngValetudoZtxt(png: Buffer): Buffer | undefined {
  if (png.length < PNG_SIGNATURE.length || !png.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE)) return undefined
  let offset = PNG_SIGNATURE.length
  let found: Buffer | undefined
  for (let count = 0; count < PNG_MAX_CHUNKS; count++) {
    // length (4) + type (4) + data (length) + CRC (4), each bounds-checked against the buffer.
    if (offset + 8 > png.length) return undefined
    const length = png.readUInt32BE(offset)
    if (length > 0x7fffffff || length > png.length - offset - 12) return undefined
    const type = png.toString('latin1', offset + 4, offset + 8)
    const data = png.subarray(offset + 8, offset + 8 + length)
    if (count === 0 && type !== 'IHDR') return undefined
    if (type === 'IEND') return found
    if (type === 'zTXt' && data.subarray(0, VALETUDO_KEYWORD.length).equals(VALETUDO_KEYWORD)) {
      if (found !== undefined) return undefined
      const crc = png.readUInt32BE(offset + 8 + length)
      if (crc32(png.subarray(offset + 4, offset + 8 + length)) !== crc) return undefined
      // Compression method 0 (zlib) is the only one PNG defines.
      if (data[VALETUDO_KEYWORD.length] !== 0) return undefined
      found = data.subarray(VALETUDO_KEYWORD.length + 1)
    }
    offset += 12 + length
  }
  return undefined
}

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

/**
 * Bytes to a value, per the stream's decoding. zlib payloads are inflated on libuv's thread pool with an output
 * cap, so a map of several MB does not block the event loop and a zlib bomb stops at the cap. Sparkplug B
 * payloads are read against `sparkplug`, the births of every edge node and device (one state per pipeline).
 */
export function decodeStage(limits: { decompressedBytes: number; jsonDepth: number }, sparkplug: SparkplugState = new SparkplugState()): Stage {
  const capped = (fn: typeof inflate, payload: Buffer): Promise<Buffer | DropReason | 'header'> =>
    new Promise((resolve) => {
      fn(payload, { maxOutputLength: limits.decompressedBytes }, (err, out) => {
        if (err === null) resolve(out)
        else if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) resolve('decompressed_too_large')
        else if (fn === inflate && ZLIB_HEADER_ERROR.test(err.message)) resolve('header')
        else resolve('undecodable')
      })
    })
  /** zlib first (what Valetudo sends); a stream without a valid zlib header is tried as raw deflate, same cap. */
  const inflateCapped = async (payload: Buffer): Promise<Buffer | DropReason> => {
    const out = await capped(inflate, payload)
    return out === 'header' ? ((await capped(inflateRaw, payload)) as Buffer | DropReason) : out
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
  const parseJson = (text: string, env: { doc?: unknown }): DropReason | undefined => {
    if (jsonTooDeep(text, limits.jsonDepth)) return 'nesting_too_deep'
    env.doc = JSON.parse(text)
    return undefined
  }

  return {
    name: 'decode',
    run(env) {
      const stream = env.stream
      if (stream === undefined) return 'internal_error'
      try {
        switch (stream.decoding) {
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
          case 'osmand': {
            const text = utf8Text(env.payload).trim()
            if (text.startsWith('{')) return parseJson(text, env)
            const parsed = parseOsmandQuery(text, env.nowMs)
            if ('problem' in parsed) return 'undecodable'
            env.doc = parsed.value
            return undefined
          }
          case 'zlib-json':
            return inflateJson(env.payload, env)
          case 'png-ztxt': {
            const deflated = pngValetudoZtxt(env.payload)
            if (deflated === undefined) return 'undecodable'
            return inflateJson(deflated, env)
          }
          case 'protobuf': {
            const doc = stream.decodeProtobuf?.(env.payload)
            if (doc === undefined) return 'internal_error'
            if (doc instanceof ProtoDrop) return doc.reason
            env.doc = doc
            return undefined
          }
          case 'sparkplug': {
            const address = parseSparkplugTopic(env.topic)
            if (address === undefined || !(MESSAGE_TYPES as readonly string[]).includes(address.type)) return 'internal_error'
            const payload = decodePayload(env.payload)
            if (typeof payload === 'string') return payload
            const outcome = sparkplug.apply({ ...address, type: address.type as MessageType }, payload)
            if (typeof outcome === 'string') return outcome
            env.doc = outcome
            // The group and edge node (and device) name the device wherever the classifier found its id.
            env.deviceId = address.device === undefined ? `${address.group}/${address.node}` : `${address.group}/${address.node}/${address.device}`
            return undefined
          }
        }
      } catch {
        return 'undecodable'
      }
    },
  }
}
