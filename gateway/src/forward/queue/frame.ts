import { createCipheriv, createDecipheriv, randomFillSync, type KeyObject } from 'node:crypto'
import { crc32 } from 'node:zlib'

/**
 * One queued message on disk: `[u32 body length][u32 CRC-32 of body][body]`, little endian, with the body
 * `[u8 version][f64 seq][f64 enqueued ms][u16 topic length][topic][u8 policy length][policy][u8 content type
 * length][content type][u8 subject length][subject id][u8 purpose length][purpose][payload]`.
 * The CRC covers the whole body, so a torn write (length written, body not) or a flipped bit is caught on recovery.
 * Version 2 frames (no subject, no purpose: written before consent) are read as the household's, default policy.
 *
 * Version 4 (sealed, written when the queue is given subject keys): the body is `[u8 version=4][f64 seq][f64
 * enqueued ms][u8 subject length][subject id][u32 key id][12 nonce][ciphertext][16 tag]`, the ciphertext being
 * AES-256-GCM under the subject's data key of `[u16 topic length][topic][u8 policy length][policy][u8 content type
 * length][content type][u8 purpose length][purpose][payload]`. The associated data is the queue's context
 * (`<domain>/<category>`) followed by the clear fields from the version to the key id, so a frame edited, renumbered
 * or copied into another queue fails its tag. The clear fields are what the log needs without a key: recovery,
 * ordering, TTL, and which key to ask for.
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
  /** The subject key it was sealed under (version 4); undefined for a frame stored in the clear. */
  readonly keyId?: number
}

export const FRAME_HEADER = 8
const VERSION = 3
const LEGACY_VERSION = 2
const LEGACY_FIXED_BODY = 1 + 8 + 8 + 2 + 1 + 1
const FIXED_BODY = LEGACY_FIXED_BODY + 1 + 1
const SEALED_VERSION = 4
const NONCE = 12
const TAG = 16
/** version, seq, enqueued, subject length (the subject id itself follows). */
const SEALED_CLEAR = 1 + 8 + 8 + 1
/** key id, nonce, tag. */
const SEALED_FIXED = SEALED_CLEAR + 4 + NONCE + TAG
/** The plaintext's length fields: topic (2), policy, content type, purpose (1 each). */
const SEALED_PLAIN_FIXED = 2 + 1 + 1 + 1
const CIPHER = 'aes-256-gcm'
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

/** A subject's data key as the queue uses it: the id goes into the frame so that a forgotten key is told from a bad tag. */
export interface SubjectKey {
  readonly id: number
  readonly key: Buffer
  /** The same key imported once: createCipheriv with a KeyObject skips the import of a raw key on every frame. */
  readonly secret: KeyObject
}

/** Where a sealing queue gets its keys (keys/subject-keys.ts). */
export interface FrameKeys {
  /** The subject's current data key, created on first use. Throws when it cannot be stored. */
  keyFor(subject: string): SubjectKey
  /** The key `id` of the subject, or undefined when it is gone (forgotten: its frames are crypto-shredded). */
  keyById(subject: string, id: number): SubjectKey | undefined
}

/**
 * Nonces are drawn from a pool refilled a few hundred at a time: one call into the CSPRNG per 341 frames instead of
 * one per frame. Random 96-bit nonces under one key stay below a 2^-32 collision chance up to 2^32 frames.
 */
const nonces = Buffer.allocUnsafe(NONCE * 341)
let nonceAt = nonces.length

function nextNonce(into: Buffer, offset: number): void {
  if (nonceAt === nonces.length) {
    randomFillSync(nonces)
    nonceAt = 0
  }
  nonces.copy(into, offset, nonceAt, nonceAt + NONCE)
  // Spent nonces are wiped so that the pool never hands one out twice, even after a bug elsewhere.
  nonces.fill(0, nonceAt, nonceAt + NONCE)
  nonceAt += NONCE
}

/** Size of a version 4 frame on disk. */
export function sealedFrameSize(
  topic: string,
  policy: string,
  payloadLength: number,
  contentType: string,
  subject: string,
  purpose: string,
): number {
  return (
    FRAME_HEADER +
    SEALED_FIXED +
    subject.length +
    SEALED_PLAIN_FIXED +
    Buffer.byteLength(topic) +
    Buffer.byteLength(policy) +
    Buffer.byteLength(contentType) +
    Buffer.byteLength(purpose) +
    payloadLength
  )
}

/**
 * A version 4 frame: the plaintext is laid out in the frame itself, then encrypted and the ciphertext copied over
 * it (GCM's update cannot write into a given buffer), so one frame and one ciphertext buffer are allocated.
 */
export function encodeSealedFrame(
  seq: number,
  enqueuedAt: number,
  topic: string,
  policy: string,
  payload: Buffer,
  contentType: string,
  subject: string,
  purpose: string,
  key: SubjectKey,
  context: Buffer,
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
  const plainLength = SEALED_PLAIN_FIXED + topicLength + policyLength + typeLength + purposeLength + payload.length
  const bodyLength = SEALED_FIXED + subjectLength + plainLength
  const frame = Buffer.allocUnsafe(FRAME_HEADER + bodyLength)
  let o = FRAME_HEADER
  o = frame.writeUInt8(SEALED_VERSION, o)
  o = frame.writeDoubleLE(seq, o)
  o = frame.writeDoubleLE(enqueuedAt, o)
  o = frame.writeUInt8(subjectLength, o)
  o += frame.write(subject, o, 'latin1')
  o = frame.writeUInt32LE(key.id, o)
  const adEnd = o
  nextNonce(frame, o)
  const nonce = frame.subarray(o, o + NONCE)
  o += NONCE
  const plainAt = o
  o = frame.writeUInt16LE(topicLength, o)
  o += frame.write(topic, o, 'utf8')
  o = frame.writeUInt8(policyLength, o)
  o += frame.write(policy, o, 'latin1')
  o = frame.writeUInt8(typeLength, o)
  o += frame.write(contentType, o, 'latin1')
  o = frame.writeUInt8(purposeLength, o)
  o += frame.write(purpose, o, 'latin1')
  payload.copy(frame, o)
  const plainEnd = plainAt + plainLength
  const cipher = createCipheriv(CIPHER, key.secret, nonce)
  cipher.setAAD(context)
  cipher.setAAD(frame.subarray(FRAME_HEADER, adEnd))
  const ciphertext = cipher.update(frame.subarray(plainAt, plainEnd))
  // GCM is a stream mode: update returns exactly the input's length and final nothing but the tag.
  ciphertext.copy(frame, plainAt)
  cipher.final()
  cipher.getAuthTag().copy(frame, plainEnd)
  frame.writeUInt32LE(bodyLength, 0)
  frame.writeUInt32LE(crc32(frame.subarray(FRAME_HEADER)), 4)
  return frame
}

/** A version 4 frame as read from disk: the clear fields, the rest still sealed (see openFrame). */
export interface SealedFrame {
  readonly sealed: true
  readonly seq: number
  readonly enqueuedAt: number
  readonly subject: string
  readonly keyId: number
  /** The whole body; the clear fields end at `adEnd`, where the nonce starts. */
  readonly body: Buffer
  readonly adEnd: number
}

export type StoredFrame = QueuedMessage | SealedFrame

/** The message of a sealed frame, or undefined when its tag (or layout) does not check out under `key`. */
export function openFrame(frame: SealedFrame, key: SubjectKey, context: Buffer): QueuedMessage | undefined {
  const { body, adEnd } = frame
  const plainAt = adEnd + NONCE
  const tagAt = body.length - TAG
  let plain: Buffer
  try {
    const decipher = createDecipheriv(CIPHER, key.secret, body.subarray(adEnd, plainAt))
    decipher.setAAD(context)
    decipher.setAAD(body.subarray(0, adEnd))
    decipher.setAuthTag(body.subarray(tagAt))
    plain = decipher.update(body.subarray(plainAt, tagAt))
    decipher.final()
  } catch {
    return undefined
  }
  if (plain.length < SEALED_PLAIN_FIXED) return undefined
  const topicLength = plain.readUInt16LE(0)
  let o = 2
  if (o + topicLength + 1 > plain.length) return undefined
  const topic = plain.toString('utf8', o, o + topicLength)
  o += topicLength
  const policyLength = plain.readUInt8(o++)
  if (o + policyLength + 1 > plain.length) return undefined
  const policy = plain.toString('latin1', o, o + policyLength)
  o += policyLength
  const typeLength = plain.readUInt8(o++)
  if (o + typeLength + 1 > plain.length) return undefined
  const contentType = plain.toString('latin1', o, o + typeLength)
  o += typeLength
  const purposeLength = plain.readUInt8(o++)
  if (o + purposeLength > plain.length) return undefined
  const purpose = plain.toString('latin1', o, o + purposeLength)
  o += purposeLength
  return {
    seq: frame.seq,
    enqueuedAt: frame.enqueuedAt,
    topic,
    policy,
    contentType,
    subject: frame.subject,
    purpose,
    payload: plain.subarray(o),
    keyId: frame.keyId,
  }
}

function decodeSealed(body: Buffer): SealedFrame | undefined {
  if (body.length < SEALED_FIXED) return undefined
  const seq = body.readDoubleLE(1)
  const enqueuedAt = body.readDoubleLE(9)
  const subjectLength = body.readUInt8(17)
  const adEnd = SEALED_CLEAR + subjectLength + 4
  if (body.length < SEALED_FIXED + subjectLength) return undefined
  const subject = body.toString('latin1', SEALED_CLEAR, SEALED_CLEAR + subjectLength)
  return { sealed: true, seq, enqueuedAt, subject, keyId: body.readUInt32LE(adEnd - 4), body, adEnd }
}

/** The body length announced by a frame header, or -1 when it cannot be a frame. */
export function bodyLengthOf(header: Buffer): number {
  const length = header.readUInt32LE(0)
  return length < LEGACY_FIXED_BODY || length > MAX_BODY ? -1 : length
}

/** Decodes a body whose CRC matches `expectedCrc`; undefined for a torn or corrupt one. Version 4 stays sealed. */
export function decodeBody(body: Buffer, expectedCrc: number): StoredFrame | undefined {
  if (body.length < LEGACY_FIXED_BODY || crc32(body) !== expectedCrc) return undefined
  const version = body.readUInt8(0)
  if (version === SEALED_VERSION) return decodeSealed(body)
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
export function frameAt(data: Buffer, offset: number): { message: StoredFrame; end: number } | undefined {
  if (offset + FRAME_HEADER > data.length) return undefined
  const length = bodyLengthOf(data.subarray(offset, offset + FRAME_HEADER))
  const end = offset + FRAME_HEADER + length
  if (length < 0 || end > data.length) return undefined
  const message = decodeBody(data.subarray(offset + FRAME_HEADER, end), data.readUInt32LE(offset + 4))
  return message === undefined ? undefined : { message, end }
}
