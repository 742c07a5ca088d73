/**
 * Fake JPEG snapshots: a structurally plausible baseline JFIF (SOI, APP0, DQT, SOF0, SOS, entropy data, EOI) whose
 * scan data is pseudo-random. Enough for a gateway's magic-byte detection and size handling; no image decoder will
 * show a picture, which is the point (no real faces in test data).
 */
import type { Rng } from '../random.ts'

const SOI = [0xff, 0xd8]
const EOI = [0xff, 0xd9]
// APP0 "JFIF\0", version 1.1, aspect ratio 1:1, no thumbnail.
const APP0 = [
  0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
]

/** Frigate's default MQTT snapshot: cropped to the object, `height: 270`. */
export function fakeJpeg(rng: Rng, width: number, height = 270): Buffer {
  const scanLength = rng.int(2_000, 6_000)
  return Buffer.concat([
    Buffer.from(SOI),
    Buffer.from(APP0),
    quantizationTable(rng),
    startOfFrame(width, height),
    Buffer.from([0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03, 0x11, 0x00, 0x3f, 0x00]),
    entropyData(rng, scanLength),
    Buffer.from(EOI),
  ])
}

function quantizationTable(rng: Rng): Buffer {
  const table = Array.from({ length: 64 }, (_, i) => Math.min(255, 3 + Math.floor(i / 2) + rng.int(0, 6)))
  return Buffer.from([0xff, 0xdb, 0x00, 0x43, 0x00, ...table])
}

/** Baseline SOF0, 8-bit, three components (Y 2x2 subsampled, Cb, Cr). */
function startOfFrame(width: number, height: number): Buffer {
  return Buffer.from([
    0xff,
    0xc0,
    0x00,
    0x11,
    0x08,
    height >> 8,
    height & 0xff,
    width >> 8,
    width & 0xff,
    0x03,
    0x01,
    0x22,
    0x00,
    0x02,
    0x11,
    0x01,
    0x03,
    0x11,
    0x01,
  ])
}

/** Random scan bytes with JPEG byte stuffing (0xFF is followed by 0x00), so no stray marker such as EOI appears. */
function entropyData(rng: Rng, length: number): Buffer {
  const raw = rng.bytes(length)
  const out: number[] = []
  for (const byte of raw) {
    out.push(byte)
    if (byte === 0xff) out.push(0x00)
  }
  return Buffer.from(out)
}
