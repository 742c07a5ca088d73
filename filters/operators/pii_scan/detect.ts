/**
 * Detectors for personal identifiers in free text. Every detector matches whole tokens: a match must not be
 * glued to a letter or digit on either side (except `email`, whose own syntax delimits it). That rule keeps the
 * 12-hex tail of a uuid, hashes and ISO timestamps from tripping the MAC, phone and plate detectors.
 *
 * `findPii` is also the P2 scanner of privacy.md §3 that tests run over forwarded bytes.
 */

export const DETECTORS = ['email', 'phone', 'mac', 'ipv4', 'ipv6', 'imei', 'plate'] as const
export type Detector = (typeof DETECTORS)[number]

/**
 * What P2 scans forwarded bytes for. `plate` is left out: P2 does not name it, and it matches JSON keys such as
 * Tasmota's `AM2301` sensor block, so it would flag correct output.
 */
export const P2_DETECTORS: readonly Detector[] = ['email', 'phone', 'mac', 'ipv4', 'ipv6', 'imei']

// `\p{L}\p{N}` rather than `\w`: `_` separates tokens (`tasmota_0329F7`), and letters outside ASCII glue them.
const B = '(?<![\\p{L}\\p{N}])'
const E = '(?![\\p{L}\\p{N}])'
/** Not the digits after a decimal point. */
const FRACTION = '(?<!\\d\\.)'

const EMAIL = /[\p{L}\p{N}!#$%&'*+/=?^_`{|}~.-]+@[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?)*\.\p{L}{2,}/u
// E.164: `+`, then 8 to 15 digits; single spaces, dashes or brackets between digits (`+49 (0)89 123-456`).
const PHONE_E164 = new RegExp(`(?<![\\p{L}\\p{N}+])\\+(?:\\d[ ()-]{0,2}){7,14}\\d(?!\\p{N})`, 'u')
// Chinese mobile: 1[3-9]x xxxx xxxx, contiguous or grouped 3-4-4 by a space or a dash. A `.` before it is a
// decimal fraction, not a number of its own.
const PHONE_CN = new RegExp(`(?<![\\p{L}\\p{N}.])1[3-9]\\d(?:[ -]?\\d{4}){2}${E}`, 'u')
const MAC_SEP = new RegExp(`${B}(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}${E}`, 'u')
const MAC_DOT = new RegExp(`${B}[0-9A-Fa-f]{4}\\.[0-9A-Fa-f]{4}\\.[0-9A-Fa-f]{4}${E}`, 'u')
// A bare 12-hex token, unless it is the last group of a uuid (8-4-4-4-12): uuids are random, not hardware ids;
// or the fraction of a decimal number (`3903.103093115916`), which any float in a payload would otherwise trip.
const MAC_BARE = new RegExp(
  `${B}${FRACTION}(?<![0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-)[0-9A-Fa-f]{12}${E}`,
  'u',
)
// Zigbee/Thread EUI-64 as Zigbee2MQTT writes it (`0x00158d0001a2b3c4`): a hardware id exactly like a MAC.
const EUI64 = new RegExp(`${B}0x[0-9A-Fa-f]{16}${E}`, 'u')
const IPV4 = new RegExp(`(?<![\\p{L}\\p{N}.])(\\d{1,3})\\.(\\d{1,3})\\.(\\d{1,3})\\.(\\d{1,3})(?![\\p{L}\\p{N}]|\\.\\d)`, 'gu')
// Candidates only; `isSpecificIpv6` decides. A trailing dotted quad covers `::ffff:192.0.2.1`.
const IPV6 = /(?<![\p{L}\p{N}:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,8}(?::\d{1,3}(?:\.\d{1,3}){3})?(?![\p{L}\p{N}:])/gu
const IMEI = new RegExp(`${B}${FRACTION}\\d{15}${E}`, 'gu')
// A run of upper-case/digit parts joined by single spaces or dashes; `hasPlate` checks windows of up to three parts.
// A `.` or `:` between two alphanumerics glues them, so `3.3V`, `…55.695Z` and `…17T03:19` (ISO timestamps) are
// not candidates, while a sentence's final `.` or a label's `: ` still ends or starts one.
const PLATE_RUN = /(?<![\p{L}\p{N}]|[\p{L}\p{N}][.:])[A-Z0-9]+(?:[ -][A-Z0-9]+)*(?![\p{L}\p{N}]|[.:][\p{L}\p{N}])/gu
const PLATE_SPLIT = /[ -]/
const UUID = /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/

export function luhnValid(digits: string): boolean {
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (double) {
      d *= 2
      if (d > 9) d -= 9
    }
    sum += d
    double = !double
  }
  return sum % 10 === 0
}

function hasImei(text: string): boolean {
  IMEI.lastIndex = 0
  for (let m = IMEI.exec(text); m !== null; m = IMEI.exec(text)) if (luhnValid(m[0])) return true
  return false
}

/** P2: an IPv4 address with a non-zero last octet (`truncate_ip`'s `a.b.c.0` is not a host). */
function hasIpv4(text: string): boolean {
  IPV4.lastIndex = 0
  for (let m = IPV4.exec(text); m !== null; m = IPV4.exec(text)) {
    if (Number(m[1]) <= 255 && Number(m[2]) <= 255 && Number(m[3]) <= 255 && Number(m[4]) <= 255 && Number(m[4]) !== 0) return true
  }
  return false
}

/** Parses an IPv6 address (optionally ending in a dotted quad) into its 8 groups, or undefined. */
export function parseIpv6Groups(token: string): number[] | undefined {
  let text = token
  const lastColon = text.lastIndexOf(':')
  if (text.indexOf('.', lastColon) !== -1) {
    const quad = text.slice(lastColon + 1).split('.')
    if (quad.length !== 4) return undefined
    const q = quad.map(Number)
    if (q.some((n) => !(n >= 0 && n <= 255))) return undefined
    const hi = (((q[0] as number) << 8) | (q[1] as number)).toString(16)
    const lo = (((q[2] as number) << 8) | (q[3] as number)).toString(16)
    text = `${text.slice(0, lastColon + 1)}${hi}:${lo}`
  }
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const head = parseGroups(halves[0] as string)
  const tail = halves.length === 2 ? parseGroups(halves[1] as string) : []
  if (head === undefined || tail === undefined) return undefined
  if (halves.length === 1) return head.length === 8 ? head : undefined
  const missing = 8 - head.length - tail.length
  if (missing < 1) return undefined
  return [...head, ...new Array<number>(missing).fill(0), ...tail]
}

function parseGroups(part: string): number[] | undefined {
  if (part === '') return []
  const out: number[] = []
  for (const g of part.split(':')) {
    if (g.length === 0 || g.length > 4) return undefined
    out.push(parseInt(g, 16))
  }
  return out
}

/** P2: more specific than /48 (anything set past the third group); `::` and `2001:db8:1::` pass. */
function hasIpv6(text: string): boolean {
  if (text.indexOf(':') === -1) return false
  IPV6.lastIndex = 0
  for (let m = IPV6.exec(text); m !== null; m = IPV6.exec(text)) {
    const groups = parseIpv6Groups(m[0])
    if (groups === undefined) continue
    for (let i = 3; i < 8; i++) if (groups[i] !== 0) return true
  }
  return false
}

function isPlateWindow(parts: readonly string[], from: number, to: number): boolean {
  let length = 0
  let letter = false
  let digit = false
  for (let i = from; i <= to; i++) {
    const part = parts[i] as string
    length += part.length
    for (let j = 0; j < part.length; j++) {
      const c = part.charCodeAt(j)
      if (c >= 48 && c <= 57) digit = true
      else letter = true
    }
  }
  return length >= 2 && length <= 8 && letter && digit
}

/**
 * A licence plate: 2 to 8 upper-case letters and digits, at least one of each, optionally in up to three parts
 * (`B-MW 1234`, `ABC 123`, `CAN4RY1`). Plain words and pure numbers never match; upper-case model names
 * (`CO2`, `TS011F`, `POW R2`) do: that is the price of catching plates.
 */
function hasPlate(text: string): boolean {
  PLATE_RUN.lastIndex = 0
  for (let m = PLATE_RUN.exec(text); m !== null; m = PLATE_RUN.exec(text)) {
    const run = m[0]
    if (run.length === 36 && UUID.test(run)) continue
    const parts = run.split(PLATE_SPLIT)
    for (let i = 0; i < parts.length; i++) {
      for (let j = i; j < parts.length && j < i + 3; j++) if (isPlateWindow(parts, i, j)) return true
    }
  }
  return false
}

/** Character counts that rule detectors out before any regex runs: most payload strings are short words. */
interface Features {
  digits: number
  hexRun: number
  hex: number
  at: boolean
  plus: boolean
  dots: number
  colons: number
  dashes: number
  upper: boolean
  x: boolean
}

const features: Features = { digits: 0, hexRun: 0, hex: 0, at: false, plus: false, dots: 0, colons: 0, dashes: 0, upper: false, x: false }

/** Fills the shared `features` (one scanner call at a time: JavaScript is single-threaded). */
function measure(text: string): Features {
  const f = features
  f.digits = 0
  f.hexRun = 0
  f.hex = 0
  f.at = false
  f.plus = false
  f.dots = 0
  f.colons = 0
  f.dashes = 0
  f.upper = false
  f.x = false
  let run = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    let isHex = false
    if (c >= 48 && c <= 57) {
      f.digits++
      isHex = true
    } else if (c >= 65 && c <= 90) {
      f.upper = true
      isHex = c <= 70
    } else if (c >= 97 && c <= 122) {
      isHex = c <= 102
      if (c === 120) f.x = true
    } else if (c === 64) f.at = true
    else if (c === 43) f.plus = true
    else if (c === 46) f.dots++
    else if (c === 58) f.colons++
    else if (c === 45) f.dashes++
    if (isHex) {
      f.hex++
      if (++run > f.hexRun) f.hexRun = run
    } else run = 0
  }
  return f
}

type Test = (text: string, f: Features) => boolean

const TESTS: Readonly<Record<Detector, Test>> = {
  email: (t, f) => f.at && EMAIL.test(t),
  phone: (t, f) => (f.plus && f.digits >= 8 && PHONE_E164.test(t)) || (f.digits >= 11 && PHONE_CN.test(t)),
  mac: (t, f) =>
    f.hex >= 12 &&
    ((f.hexRun >= 12 && MAC_BARE.test(t)) ||
      (f.colons + f.dashes >= 5 && MAC_SEP.test(t)) ||
      (f.dots >= 2 && MAC_DOT.test(t)) ||
      (f.x && f.hexRun >= 16 && EUI64.test(t))),
  ipv4: (t, f) => f.dots >= 3 && f.digits >= 4 && hasIpv4(t),
  ipv6: (t, f) => f.colons >= 2 && hasIpv6(t),
  imei: (t, f) => f.digits >= 15 && hasImei(t),
  plate: (t, f) => f.upper && f.digits > 0 && hasPlate(t),
}

export interface Scanner {
  /** The first detector that matches the text, or undefined. */
  (text: string): Detector | undefined
}

/** Compiles a scanner for a set of detectors once, so the per-message loop only calls plain functions. */
export function compileScanner(detectors: readonly Detector[]): Scanner {
  for (const d of detectors) if (!Object.hasOwn(TESTS, d)) throw new Error(`unknown detector ${d}; known: ${DETECTORS.join(', ')}`)
  const tests = [...new Set(detectors)].map((d) => [d, TESTS[d]] as const)
  return (text) => {
    // Nothing any detector looks for fits in fewer than 2 characters (`A1`).
    if (text.length < 2) return undefined
    const f = measure(text)
    for (const [name, test] of tests) if (test(text, f)) return name
    return undefined
  }
}

const p2Scanner = compileScanner(P2_DETECTORS)
const scanners = new Map<string, Scanner>()

/**
 * The name of the first detector that finds an identifier in `text`, or undefined. Without `detectors` it scans
 * for what P2 forbids in forwarded bytes (everything but `plate`).
 */
export function findPii(text: string, detectors?: readonly Detector[]): Detector | undefined {
  if (detectors === undefined) return p2Scanner(text)
  const key = detectors.join(',')
  let scanner = scanners.get(key)
  if (scanner === undefined) {
    scanner = compileScanner(detectors)
    scanners.set(key, scanner)
  }
  return scanner(text)
}
