import { defineOperator } from '#veil/sdk'
import { compileJsonGate } from '../json-gate.ts'
import { hasImageMagic, MAGIC_BYTES } from './magic.ts'

/** base64 of MAGIC_BYTES bytes. The smallest valid GIF is 60 base64 characters, so shorter text is no image. */
const B64_HEAD = 24
const HEX_HEAD = MAGIC_BYTES * 2
/** Past this length a string is searched for an image that starts inside it (`image=/9j/…`, an HTML `<img>`). */
const LONG = 64

// Base64 openings of JPEG, PNG, RIFF (WebP, AVI, WAV), GIF and ISO-BMFF (`....ftyp`: MP4, MOV, HEIC, AVIF; the
// two characters after AAAA encode the box size).
const B64_PREFIX = /^(?:\/9j\/|iVBORw0KGgo|UklGR|R0lGOD|AAAA[A-Za-z0-9+/_-]{2}Z0eX)/
// The same, plus TIFF, Matroska/WebM and FLV, found after any character that cannot be part of the base64 text.
const B64_INSIDE =
  /(?:^|[^A-Za-z0-9+/_-])(?:\/9j\/|iVBORw0KGgo|UklGR|R0lGOD|AAAA[A-Za-z0-9+/_-]{2}Z0eX|SUkqA|TU0AK|GkXfo|RkxWAQ)/
const MEDIA_URI = /data:\s*(?:image|video)\//i
const BASE64_MARK = /;\s*base64\s*,/i

function isBase64Char(c: number): boolean {
  return (
    (c >= 65 && c <= 90) ||
    (c >= 97 && c <= 122) ||
    (c >= 48 && c <= 57) ||
    c === 43 ||
    c === 47 ||
    c === 45 ||
    c === 95
  )
}

function isHexChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70)
}

/** First bytes of the formats `hasImageMagic` knows: only strings starting with one are read as raw bytes. */
const MAGIC_FIRST: ReadonlySet<number> = new Set([0xff, 0x89, 0x47, 0x52, 0x49, 0x4d, 0x1a, 0x46, 0x00])
const scratch = new Uint8Array(MAGIC_BYTES)

function latin1HeadIsMedia(text: string): boolean {
  const n = Math.min(text.length, MAGIC_BYTES)
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c > 0xff) return false
    scratch[i] = c
  }
  return hasImageMagic(n === MAGIC_BYTES ? scratch : scratch.subarray(0, n))
}

/** Decodes the head of base64 (or base64url: Node accepts both alphabets) text and checks its magic bytes. */
function base64HeadIsMedia(text: string, from: number): boolean {
  const end = from + B64_HEAD
  if (text.length < end) return false
  for (let i = from; i < end; i++) if (!isBase64Char(text.charCodeAt(i))) return false
  return hasImageMagic(Buffer.from(text.slice(from, end), 'base64'))
}

/** True when the text is (or embeds) an image or video: base64, base64url, hex, a data: URI or raw bytes. */
export function isMediaString(value: string): boolean {
  let text = value
  if (text.length < 4) return false
  const first = text.charCodeAt(0)
  if (first <= 32) {
    text = text.trimStart()
    if (text.length < 4) return false
  }
  if (B64_PREFIX.test(text)) return true
  // Bytes smuggled as a latin1 string (a JPEG starts with U+00FF, a TIFF with `II*\0`).
  if (MAGIC_FIRST.has(text.charCodeAt(0)) && latin1HeadIsMedia(text)) return true
  if (text.length >= B64_HEAD && base64HeadIsMedia(text, 0)) return true
  if (text.length >= HEX_HEAD) {
    let hex = true
    for (let i = 0; i < HEX_HEAD && hex; i++) hex = isHexChar(text.charCodeAt(i))
    if (hex && hasImageMagic(Buffer.from(text.slice(0, HEX_HEAD), 'hex'))) return true
  }
  if (text.indexOf(':') !== -1 && MEDIA_URI.test(text)) return true
  if (text.length >= LONG) {
    // A data: URI of another type (application/octet-stream) can still carry a JPEG.
    const mark = BASE64_MARK.exec(text)
    if (mark !== null && base64HeadIsMedia(text, mark.index + mark[0].length)) return true
    if (B64_INSIDE.test(text)) return true
  }
  return false
}

/** An array of byte values (`Buffer.toJSON()` gives `{type:'Buffer',data:[255,216,255,…]}`) that opens like media. */
function isMediaByteArray(items: readonly unknown[]): boolean {
  if (items.length < 4 || typeof items[0] !== 'number') return false
  const head = new Uint8Array(Math.min(items.length, MAGIC_BYTES))
  for (let i = 0; i < head.length; i++) {
    const n = items[i]
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 255) return false
    head[i] = n
  }
  return hasImageMagic(head)
}

/**
 * Blocks image and video content (privacy.md §1 `image_gate`, §2.3): snapshots, thumbnails, face crops and
 * obstacle photos show people and homes, and blurring them does not protect (MCP16, ZHAI25). Binary payloads are
 * never forwarded, whatever their type (fail closed). In JSON, every string is checked for base64, hex or data:
 * URI images; the field (drop_field) or the whole message (drop_message) goes.
 */
export default defineOperator({
  name: 'image_gate',
  description:
    'Withholds binary payloads and removes (or withholds the message for) images and videos embedded in JSON',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { action: { enum: ['drop_message', 'drop_field'], default: 'drop_message' } },
  },
  compile(config) {
    // Checked against configSchema by the loader, its default filled in.
    const { action } = config as { readonly action: 'drop_message' | 'drop_field' }
    if (action !== 'drop_message' && action !== 'drop_field')
      throw new Error(`action must be drop_message or drop_field, not ${String(action)}`)

    return compileJsonGate(
      'image_gate',
      {
        // Raw bytes are never forwarded, known type or not.
        leaf: (value) => (typeof value === 'string' ? isMediaString(value) : value instanceof Uint8Array),
        array: isMediaByteArray,
      },
      action,
    )
  },
})
