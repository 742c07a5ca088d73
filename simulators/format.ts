/**
 * Payload formatting shared by the profiles: JSON with fixed decimals, device time strings, message builders.
 */
import type { SimMessage } from './types.ts'

/**
 * A number printed with a fixed count of decimals. Firmwares build JSON with printf (`"Factor":0.00`,
 * `"weight":72.40`), which JSON.stringify cannot reproduce; the gateway must cope with those exact bytes.
 */
export class Fixed {
  constructor(
    readonly value: number,
    readonly decimals: number,
  ) {}
}

export function fixed(value: number, decimals: number): Fixed {
  return new Fixed(value, decimals)
}

/** JSON values the simulators emit; `undefined` members are skipped, as JSON.stringify does. */
export type Json =
  | null
  | boolean
  | number
  | string
  | Fixed
  | readonly Json[]
  | { readonly [key: string]: Json | undefined }

/**
 * `compact`: no spaces, as C firmwares and Node apps send it. `python`: Python's `json.dumps` defaults
 * (`", "` and `": "` separators, non-ASCII escaped), as Frigate sends it.
 */
export type JsonStyle = 'compact' | 'python'

export function toJson(value: Json, style: JsonStyle = 'compact'): string {
  if (value === null) return 'null'
  if (value instanceof Fixed) return value.value.toFixed(value.decimals)
  const comma = style === 'python' ? ', ' : ','
  if (Array.isArray(value)) return `[${value.map((item: Json) => toJson(item, style)).join(comma)}]`
  if (typeof value === 'object') return objectToJson(value as { readonly [key: string]: Json | undefined }, style)
  if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`toJson: non-finite number ${value}`)
  return style === 'python' ? asciiJson(value) : JSON.stringify(value)
}

function objectToJson(value: { readonly [key: string]: Json | undefined }, style: JsonStyle): string {
  const colon = style === 'python' ? ': ' : ':'
  const members: string[] = []
  for (const [key, member] of Object.entries(value)) {
    if (member !== undefined) members.push(`${toJson(key, style)}${colon}${toJson(member, style)}`)
  }
  return `{${members.join(style === 'python' ? ', ' : ',')}}`
}

/** Python's ensure_ascii: every non-ASCII UTF-16 unit becomes `\uXXXX`. */
function asciiJson(value: string | number | boolean): string {
  return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** Rounds to `decimals` places as a plain number (for fields where the firmware uses JSON.stringify-like output). */
export function round(value: number, decimals: number): number {
  const factor = 10 ** decimals
  return Math.round(value * factor) / factor
}

/**
 * `YYYY-MM-DDTHH:MM:SS` without zone. Devices print local time; the simulators use UTC so output does not depend
 * on the TZ of the machine running the tests.
 */
export function localIsoSeconds(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19)
}

/** Epoch seconds (integer), e.g. OwnTracks `tst`. */
export function epochSeconds(ms: number): number {
  return Math.floor(ms / 1000)
}

export function jsonMessage(
  topic: string,
  value: Json,
  qos: 0 | 1,
  retain: boolean,
  style: JsonStyle = 'compact',
): SimMessage {
  return { topic, payload: Buffer.from(toJson(value, style), 'utf8'), qos, retain }
}

export function textMessage(topic: string, text: string, qos: 0 | 1, retain: boolean): SimMessage {
  return { topic, payload: Buffer.from(text, 'utf8'), qos, retain }
}

export function binaryMessage(topic: string, payload: Buffer, qos: 0 | 1, retain: boolean): SimMessage {
  return { topic, payload, qos, retain }
}
