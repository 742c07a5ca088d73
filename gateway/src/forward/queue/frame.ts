import { crc32 } from 'node:zlib'

/**
 * One queued message on disk: `[u32 body length][u32 CRC-32 of body][body]`, little endian, with the body
 * `[u8 version][f64 seq][f64 enqueued ms][u16 topic length][topic][u8 policy length][policy][u8 content type
 * length][content type][u8 subject length][subject id][u8 purpose length][purpose][payload]`.
 * The CRC covers the whole body, so a torn write (length written, body not) or a flipped bit is caught on recovery.
 * Version 2 frames (no subject, no purpose: written before consent) are read as the household's, default policy.
 */
export interface QueuedMessage {
  readonly seq: number
  readonly enqueuedAt: number
  readonly topic: string
  /** The policy version the message was filtered under (MQTT 5 `veil-policy` user property). */
  readonly policy: string
  /** The payload's MQTT 5 content type (JSON, or protobuf for domains configured so). */
  readonly contentType: string
  /** The id of the subject whose data it is (never the name): its consent is checked again before it is sent. */
  readonly subject: string
  /** The purpose the copy's policy variant needed; '' for the default. */
  readonly purpose: string
  readonly payload: Buffer
}

export const FRAME_HEADER = 8
const VERSION = 3
const LEGACY_VERSION = 2
const LEGACY_FIXED_BODY = 1 + 8 + 8 + 2 + 1 + 1
const FIXED_BODY = LEGACY_FIXED_BODY + 1 + 1
/** What a version 2 frame is read as. */
export const LEGACY_SUBJECT = 'household'
export const DEFAULT_CONTENT_TYPE = 'application/json'
/** A frame longer than this is corruption, not a message: payloads are limited far below it by `limits`. */
export const MAX_BODY = 64 * 1024 * 1024

export function encodeFrame(
  seq: number,
  enqueuedAt: number,
  topic: string,
  policy: string,
  payload: Buffer,
  contentType = DEFAULT_CONTENT_TYPE,
  subject = LEGACY_SUBJECT,
  purpose = '',
): Buffer {
  const topicLength = Buffer.byteLength(topic)
  const policyLength = Buffer.byteLength(policy)
  const typeLength = Buffer.byteLength(contentType)
  const subjectLength = Buffer.byteLength(subject)
  const purposeLength = Buffer.byteLength(purpose)
  if (
    topicLength > 0xffff ||
    policyLength > 0xff ||
    typeLength > 0xff ||
    subjectLength > 0xff ||
    purposeLength > 0xff
  ) {
    throw new RangeError('topic, policy version, content type, subject or purpose too long for a queue frame')
  }
  const bodyLength =
    FIXED_BODY + topicLength + policyLength + typeLength + subjectLength + purposeLength + payload.length
  const frame = Buffer.allocUnsafe(FRAME_HEADER + bodyLength)
  let o = FRAME_HEADER
  o = frame.writeUInt8(VERSION, o)
  o = frame.writeDoubleLE(seq, o)
  o = frame.writeDoubleLE(enqueuedAt, o)
  o = frame.writeUInt16LE(topicLength, o)
  o += frame.write(topic, o, 'utf8')
  o = frame.writeUInt8(policyLength, o)
  o += frame.write(policy, o, 'latin1')
  o = frame.writeUInt8(typeLength, o)
  o += frame.write(contentType, o, 'latin1')
  o = frame.writeUInt8(subjectLength, o)
  o += frame.write(subject, o, 'latin1')
  o = frame.writeUInt8(purposeLength, o)
  o += frame.write(purpose, o, 'latin1')
  payload.copy(frame, o)
  frame.writeUInt32LE(bodyLength, 0)
  frame.writeUInt32LE(crc32(frame.subarray(FRAME_HEADER)), 4)
  return frame
}

/** The body length announced by a frame header, or -1 when it cannot be a frame. */
export function bodyLengthOf(header: Buffer): number {
  const length = header.readUInt32LE(0)
  return length < LEGACY_FIXED_BODY || length > MAX_BODY ? -1 : length
}

/** Decodes a body whose CRC matches `expectedCrc`; undefined for a torn or corrupt one. */
export function decodeBody(body: Buffer, expectedCrc: number): QueuedMessage | undefined {
  if (body.length < LEGACY_FIXED_BODY || crc32(body) !== expectedCrc) return undefined
  const version = body.readUInt8(0)
  if (version !== VERSION && version !== LEGACY_VERSION) return undefined
  const seq = body.readDoubleLE(1)
  const enqueuedAt = body.readDoubleLE(9)
  const topicLength = body.readUInt16LE(17)
  let o = 19
  if (o + topicLength + 1 > body.length) return undefined
  const topic = body.toString('utf8', o, o + topicLength)
  o += topicLength
  const policyLength = body.readUInt8(o)
  o += 1
  if (o + policyLength > body.length) return undefined
  const policy = body.toString('latin1', o, o + policyLength)
  o += policyLength
  if (o + 1 > body.length) return undefined
  const typeLength = body.readUInt8(o)
  o += 1
  if (o + typeLength > body.length) return undefined
  const contentType = body.toString('latin1', o, o + typeLength)
  o += typeLength
  if (version === LEGACY_VERSION)
    return {
      seq,
      enqueuedAt,
      topic,
      policy,
      contentType,
      subject: LEGACY_SUBJECT,
      purpose: '',
      payload: body.subarray(o),
    }
  if (o + 1 > body.length) return undefined
  const subjectLength = body.readUInt8(o)
  o += 1
  if (o + subjectLength + 1 > body.length) return undefined
  const subject = body.toString('latin1', o, o + subjectLength)
  o += subjectLength
  const purposeLength = body.readUInt8(o)
  o += 1
  if (o + purposeLength > body.length) return undefined
  const purpose = body.toString('latin1', o, o + purposeLength)
  o += purposeLength
  return { seq, enqueuedAt, topic, policy, contentType, subject, purpose, payload: body.subarray(o) }
}

/** Reads the frame at `offset` of `data`: the message and the offset after it, or undefined where the data stops being valid. */
export function frameAt(data: Buffer, offset: number): { message: QueuedMessage; end: number } | undefined {
  if (offset + FRAME_HEADER > data.length) return undefined
  const length = bodyLengthOf(data.subarray(offset, offset + FRAME_HEADER))
  const end = offset + FRAME_HEADER + length
  if (length < 0 || end > data.length) return undefined
  const message = decodeBody(data.subarray(offset + FRAME_HEADER, end), data.readUInt32LE(offset + 4))
  return message === undefined ? undefined : { message, end }
}
