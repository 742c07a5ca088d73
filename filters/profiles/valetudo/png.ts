/**
 * Valetudo's map-data-hass: a PNG whose `zTXt` chunk with keyword `ValetudoMap` holds zlib-deflated UTF-8 JSON. The
 * chunks are walked with bounds checks, that chunk's CRC is verified, the JSON inflated as for `zlib-json` (capped,
 * on the thread pool); the image itself is ignored.
 */
import { crc32 } from 'node:zlib'
import { defineCodec } from '#veil/sdk'

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
/** More chunks than any Valetudo map-data-hass PNG has (IHDR, a few ancillary, IDAT(s), zTXt, IEND). */
export const PNG_MAX_CHUNKS = 1024

const VALETUDO_KEYWORD = Buffer.from('ValetudoMap\0', 'latin1')

/**
 * The zlib datastream of the PNG's `zTXt` chunk whose keyword is `ValetudoMap` (Valetudo `map-data-hass`), or
 * undefined when the PNG is malformed: no signature, IHDR not first, a length past the end, more than
 * PNG_MAX_CHUNKS chunks, no IEND, a bad CRC on the ValetudoMap chunk, a compression method other than 0, no such
 * chunk or more than one. CRCs of the other chunks (the image itself) are not checked: their bytes are never used.
 */
export function pngValetudoZtxt(png: Buffer): Buffer | undefined {
  if (png.length < PNG_SIGNATURE.length || !png.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE))
    return undefined
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

export const pngZtxtCodec = defineCodec<undefined>({
  name: 'png-ztxt',
  decode(msg, helpers) {
    const deflated = pngValetudoZtxt(msg.payload)
    if (deflated === undefined) return 'undecodable'
    return helpers.inflateJson(deflated, msg)
  },
})
