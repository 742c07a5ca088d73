/**
 * Magic bytes of image and video containers. Only the first 16 bytes are looked at, so a caller decoding base64
 * or hex needs to decode no more than that.
 */

/** How many leading bytes `hasImageMagic` needs at most. */
export const MAGIC_BYTES = 16

const startsWith = (bytes: Uint8Array, sig: readonly number[], at = 0): boolean => {
  if (bytes.length < at + sig.length) return false
  for (let i = 0; i < sig.length; i++) if (bytes[at + i] !== sig[i]) return false
  return true
}

const ascii = (text: string): number[] => [...text].map((c) => c.charCodeAt(0))
const RIFF = ascii('RIFF')
const WEBP = ascii('WEBP')
const AVI = ascii('AVI ')
const FTYP = ascii('ftyp')
const GIF = ascii('GIF8')
const FLV = ascii('FLV')
const JPEG = [0xff, 0xd8, 0xff]
const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]
const TIFF_LE = [0x49, 0x49, 0x2a, 0x00]
const TIFF_BE = [0x4d, 0x4d, 0x00, 0x2a]
const EBML = [0x1a, 0x45, 0xdf, 0xa3] // Matroska / WebM
const JP2 = [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20]
const JXL = [0xff, 0x0a]
const MPEG_PS = [0x00, 0x00, 0x01, 0xba]

/**
 * True when the bytes start like a JPEG, PNG, GIF, WebP, TIFF (also most camera RAW), JPEG 2000, JPEG XL, or a
 * video container: ISO-BMFF (`ftyp` at offset 4: MP4, MOV, 3GP, HEIC, AVIF), RIFF AVI, Matroska/WebM, FLV, MPEG-PS.
 * RIFF WAVE audio is not matched here (image_gate's base64 prefix rule `UklGR` blocks it anyway).
 */
export function hasImageMagic(bytes: Uint8Array): boolean {
  const b0 = bytes[0]
  if (b0 === undefined) return false
  switch (b0) {
    case 0xff:
      return startsWith(bytes, JPEG) || startsWith(bytes, JXL)
    case 0x89:
      return startsWith(bytes, PNG)
    case 0x47:
      return startsWith(bytes, GIF)
    case 0x52:
      return startsWith(bytes, RIFF) && (startsWith(bytes, WEBP, 8) || startsWith(bytes, AVI, 8))
    case 0x49:
      return startsWith(bytes, TIFF_LE)
    case 0x4d:
      return startsWith(bytes, TIFF_BE)
    case 0x1a:
      return startsWith(bytes, EBML)
    case 0x46:
      return startsWith(bytes, FLV) && bytes[3] === 0x01
    default:
      return startsWith(bytes, FTYP, 4) || startsWith(bytes, JP2) || startsWith(bytes, MPEG_PS)
  }
}
