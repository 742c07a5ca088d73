import { endianness } from 'node:os'

/**
 * A protobuf writer into one reused buffer, for codec.ts' encodePayload: the bytes protobufjs' Writer writes for the
 * same values (varints, uint64 from a Number with its two's complement and wrap-around, float and double
 * little-endian, strings with their UTF-8 length), without its queue of one operation object per field and its
 * forked state per nested message. One difference, as in gateway/src/pipeline/filtered.ts: a lone UTF-16 surrogate
 * is written as U+FFFD, where protobufjs wrote strings under 40 units as WTF-8, which no protobuf runtime accepts.
 * Not reentrant: one message at a time, from begin() to finish().
 */

/** Above this the buffer is given back after the message, so one huge message does not pin its memory. */
const KEEP_BYTES = 64 * 1024
const LITTLE_ENDIAN = endianness() === 'LE'

export class ProtoWriter {
  #buf = Buffer.allocUnsafeSlow(512)
  #pos = 0
  readonly #f32 = new Float32Array(1)
  readonly #f32Bytes = new Uint8Array(this.#f32.buffer)
  readonly #f64 = new Float64Array(1)
  readonly #f64Bytes = new Uint8Array(this.#f64.buffer)

  begin(): void {
    this.#pos = 0
  }

  /** A copy of what was written; the buffer is reused by the next message. */
  finish(): Buffer {
    const out = Buffer.allocUnsafe(this.#pos)
    this.#buf.copy(out, 0, 0, this.#pos)
    this.reset()
    return out
  }

  /** Bytes written before (a field encoded once and repeated in every message). */
  raw(bytes: Uint8Array): void {
    const n = bytes.length
    this.#ensure(n)
    const buf = this.#buf
    let p = this.#pos
    for (let i = 0; i < n; i++) buf[p++] = bytes[i] as number
    this.#pos = p
  }

  /** After finish, or after a throw mid-message. */
  reset(): void {
    if (this.#buf.length > KEEP_BYTES) this.#buf = Buffer.allocUnsafeSlow(512)
    this.#pos = 0
  }

  #ensure(more: number): void {
    if (this.#pos + more <= this.#buf.length) return
    const next = Buffer.allocUnsafeSlow(Math.max(this.#pos + more, this.#buf.length * 2))
    this.#buf.copy(next, 0, 0, this.#pos)
    this.#buf = next
  }

  /** One byte: a tag under 16 fields, or a bool. */
  byte(value: number): void {
    this.#ensure(1)
    this.#buf[this.#pos++] = value
  }

  /** protobufjs' Writer#uint32: the value as unsigned 32 bits. */
  uint32(value: number): void {
    this.#ensure(5)
    let v = value >>> 0
    while (v >= 0x80) {
      this.#buf[this.#pos++] = (v & 0x7f) | 0x80
      v >>>= 7
    }
    this.#buf[this.#pos++] = v
  }

  /** protobufjs' Writer#uint64 of a Number (LongBits.fromNumber): negatives as two's complement, past 2^64 wrapped. */
  uint64(value: number): void {
    let lo = 0
    let hi = 0
    if (value !== 0) {
      const negative = value < 0
      const v = negative ? -value : value
      lo = v >>> 0
      hi = ((v - lo) / 4294967296) >>> 0
      if (negative) {
        hi = ~hi >>> 0
        lo = ~lo >>> 0
        if (++lo > 4294967295) {
          lo = 0
          if (++hi > 4294967295) hi = 0
        }
      }
    }
    this.#ensure(10)
    const buf = this.#buf
    while (hi !== 0) {
      buf[this.#pos++] = (lo & 0x7f) | 0x80
      lo = ((lo >>> 7) | (hi << 25)) >>> 0
      hi >>>= 7
    }
    while (lo > 0x7f) {
      buf[this.#pos++] = (lo & 0x7f) | 0x80
      lo >>>= 7
    }
    buf[this.#pos++] = lo
  }

  float(value: number): void {
    this.#ensure(4)
    if (LITTLE_ENDIAN) {
      this.#f32[0] = value
      for (let i = 0; i < 4; i++) this.#buf[this.#pos++] = this.#f32Bytes[i] as number
    } else {
      this.#pos = this.#buf.writeFloatLE(value, this.#pos)
    }
  }

  double(value: number): void {
    this.#ensure(8)
    if (LITTLE_ENDIAN) {
      this.#f64[0] = value
      for (let i = 0; i < 8; i++) this.#buf[this.#pos++] = this.#f64Bytes[i] as number
    } else {
      this.#pos = this.#buf.writeDoubleLE(value, this.#pos)
    }
  }

  /** A length-prefixed UTF-8 string: short ASCII strings byte by byte, anything else through Buffer#write. */
  string(s: string): void {
    const n = s.length
    if (n < 0x80) {
      this.#ensure(n + 1)
      const buf = this.#buf
      const start = this.#pos
      let p = start + 1
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i)
        if (c >= 0x80) {
          this.#utf8(s)
          return
        }
        buf[p++] = c
      }
      buf[start] = n
      this.#pos = p
      return
    }
    this.#utf8(s)
  }

  #utf8(s: string): void {
    const length = Buffer.byteLength(s, 'utf8')
    this.uint32(length)
    this.#ensure(length)
    this.#pos += this.#buf.write(s, this.#pos, length, 'utf8')
  }

  /**
   * Reserves one byte for the length of a nested message; `endLength` fixes it up. Lengths under 128 (a metric of
   * a telemetry message) fit that byte; a longer one moves its content up by the varint's extra bytes.
   */
  beginLength(): number {
    this.#ensure(1)
    return this.#pos++
  }

  endLength(at: number): void {
    const length = this.#pos - at - 1
    if (length < 0x80) {
      this.#buf[at] = length
      return
    }
    let extra = 1
    for (let rest = length >>> 14; rest !== 0; rest >>>= 7) extra++
    this.#ensure(extra)
    this.#buf.copyWithin(at + 1 + extra, at + 1, this.#pos)
    this.#pos += extra
    let p = at
    let v = length
    while (v >= 0x80) {
      this.#buf[p++] = (v & 0x7f) | 0x80
      v >>>= 7
    }
    this.#buf[p] = v
  }
}
