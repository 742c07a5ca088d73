/**
 * Protobuf wire helpers the core and plug-ins share (the core's canonical decoders, Sparkplug B's codec): the wire
 * check protobufjs' decoders lack, and UTF-8 text of a byte range. Here, in the SDK, because a profile that brings
 * its own protobuf format needs the same checks, and plug-ins import only the SDK.
 */
import { isUtf8 } from 'node:buffer'
import protobuf from 'protobufjs'

/** Why bytes are not an acceptable message: broken on the wire, or a field the schema does not declare. */
export type WireProblem = 'undecodable' | 'invalid'

class WireError extends Error {
  constructor(
    readonly problem: WireProblem,
    message: string,
  ) {
    super(message)
  }
}

/** Nested messages deeper than this are refused before recursion can exhaust the stack (Sparkplug templates nest). */
export const MAX_PROTO_DEPTH = 32

interface FieldRule {
  readonly wire: number
  /** Repeated numeric scalars may also arrive packed (wire type 2). */
  readonly packed: 0 | 1 | 5 | undefined
  readonly message: MessageRule | undefined
  readonly utf8: boolean
}

interface MessageRule {
  readonly fields: Map<number, FieldRule>
  readonly extensions: readonly (readonly [number, number])[]
}

const rules = new Map<protobuf.Type, MessageRule>()

/** Builds (once per type) the rules checkWire walks by, so a schema problem shows when a decoder is compiled. */
export function prepareWireCheck(type: protobuf.Type): void {
  ruleOf(type)
}

function ruleOf(type: protobuf.Type): MessageRule {
  const known = rules.get(type)
  if (known !== undefined) return known
  const fields = new Map<number, FieldRule>()
  // Registered before the fields are filled: Sparkplug's Metric and Template refer to each other.
  const rule: MessageRule = {
    fields,
    extensions: (type.extensions ?? []).map((range) => [range[0] ?? 0, range[1] ?? 0] as const),
  }
  rules.set(type, rule)
  for (const field of type.fieldsArray) {
    field.resolve()
    const basic = (protobuf.types.basic as Record<string, number | undefined>)[field.type]
    if (field.resolvedType instanceof protobuf.Type) {
      fields.set(field.id, { wire: 2, packed: undefined, message: ruleOf(field.resolvedType), utf8: false })
    } else if (field.resolvedType instanceof protobuf.Enum) {
      fields.set(field.id, { wire: 0, packed: field.repeated ? 0 : undefined, message: undefined, utf8: false })
    } else if (basic !== undefined) {
      const packable = field.repeated && basic !== 2
      fields.set(field.id, {
        wire: basic,
        packed: packable ? (basic as 0 | 1 | 5) : undefined,
        message: undefined,
        utf8: field.type === 'string',
      })
    } else {
      throw new Error(`protobuf schemas: ${type.fullName}.${field.name}: unsupported field type ${field.type}`)
    }
  }
  return rule
}

/**
 * Walks the wire format against the schema before protobufjs decodes it, because protobufjs' decoders trust the
 * wire: a known field sent with another wire type is read as if it had the declared one (a length read as a
 * number, the bytes after it as fields), and strings with invalid UTF-8 become U+FFFD. Refused: truncation, a
 * length past its enclosing message, a wrong wire type, groups, field number 0, invalid UTF-8 in a string, nesting
 * past MAX_PROTO_DEPTH, and a field number the message neither declares nor reserves for extensions (`invalid`).
 * Fields in a declared extension range (Sparkplug B's third-party extensions) are skipped: they are well-formed
 * and the output is rebuilt from the policy, so they cannot leak.
 */
export function checkWire(type: protobuf.Type, bytes: Uint8Array): WireProblem | undefined {
  try {
    const reader = protobuf.Reader.create(bytes)
    walk(ruleOf(type), reader, bytes, bytes.length, 0)
    return undefined
  } catch (err) {
    return err instanceof WireError ? err.problem : 'undecodable'
  }
}

function walk(rule: MessageRule, reader: protobuf.Reader, bytes: Uint8Array, end: number, depth: number): void {
  while (reader.pos < end) {
    const tag = reader.uint32()
    const id = tag >>> 3
    const wire = tag & 7
    if (id === 0 || wire === 3 || wire === 4 || wire > 5) throw new WireError('undecodable', `bad tag ${tag}`)
    const field = rule.fields.get(id)
    if (field === undefined) {
      if (!rule.extensions.some(([lo, hi]) => id >= lo && id <= hi))
        throw new WireError('invalid', `unknown field ${id}`)
      reader.skipType(wire)
    } else if (wire === field.wire) {
      if (wire === 2) {
        const stop = lengthEnd(reader, end)
        if (field.message !== undefined) {
          if (depth >= MAX_PROTO_DEPTH) throw new WireError('undecodable', 'nested too deep')
          walk(field.message, reader, bytes, stop, depth + 1)
        } else {
          if (field.utf8 && !isUtf8(bytes.subarray(reader.pos, stop)))
            throw new WireError('undecodable', 'invalid UTF-8')
          reader.pos = stop
        }
      } else {
        reader.skipType(wire)
      }
    } else if (wire === 2 && field.packed !== undefined) {
      const stop = lengthEnd(reader, end)
      if (field.packed === 0) while (reader.pos < stop) reader.skipType(0)
      else if ((stop - reader.pos) % (field.packed === 1 ? 8 : 4) !== 0)
        throw new WireError('undecodable', 'packed length')
      else reader.pos = stop
      if (reader.pos !== stop) throw new WireError('undecodable', 'packed overrun')
    } else {
      throw new WireError('undecodable', `field ${id}: wire type ${wire}, expected ${field.wire}`)
    }
    if (reader.pos > end) throw new WireError('undecodable', 'field past the end of its message')
  }
  if (reader.pos !== end) throw new WireError('undecodable', 'truncated')
}

/** The end of a length-delimited value, refused when it would run past its enclosing message. */
function lengthEnd(reader: protobuf.Reader, end: number): number {
  const length = reader.uint32()
  const stop = reader.pos + length
  if (stop > end) throw new WireError('undecodable', 'length past the end')
  return stop
}

/** UTF-8 text or undefined when invalid: ASCII byte by byte (most telemetry strings, and no call out of JS), anything else checked and decoded natively. */
export function text(b: Uint8Array, start: number, end: number): string | undefined {
  if (end - start <= 32) {
    let s = ''
    let i = start
    for (; i < end; i++) {
      const c = b[i] as number
      if (c >= 0x80) break
      s += String.fromCharCode(c)
    }
    if (i === end) return s
  }
  const bytes = b.subarray(start, end)
  if (!isUtf8(bytes)) return undefined
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
}
