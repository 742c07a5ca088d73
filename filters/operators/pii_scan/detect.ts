/**
 * Detectors for personal identifiers in free text. Every detector matches whole tokens: a match must not be
 * glued to a letter or digit on either side (except `email`, whose own syntax delimits it). That rule keeps the
 * 12-hex tail of a uuid, hashes and ISO timestamps from tripping the MAC, phone and plate detectors.
 *
 * Before matching, a scanner looks through encodings (issue 13 part 6): text is normalised (NFKC, so fullwidth
 * `００：１１…` is `00:11…`; zero-width and other invisible characters removed; Unicode dashes made `-`), and
 * percent-encoding, HTML character references, base64 runs and hex runs that decode to printable text are decoded
 * and scanned again (up to three layers). Cheap character counts decide whether any of that runs: a short word
 * costs one pass over its characters.
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

const EMAIL =
  /[\p{L}\p{N}!#$%&'*+/=?^_`{|}~.-]+@[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?)*\.\p{L}{2,}/u
// E.164: `+`, then 8 to 15 digits; single spaces, dashes or brackets between digits (`+49 (0)89 123-456`).
const PHONE_E164 = /(?<![\p{L}\p{N}+])\+(?:\d[ ()-]{0,2}){7,14}\d(?!\p{N})/u
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
const IPV4 = /(?<![\p{L}\p{N}.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\p{L}\p{N}]|\.\d)/gu
// Candidates only; `isSpecificIpv6` decides. A trailing dotted quad covers `::ffff:192.0.2.1`.
const IPV6 =
  /(?<![\p{L}\p{N}:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,8}(?::\d{1,3}(?:\.\d{1,3}){3})?(?![\p{L}\p{N}:])/gu
const IMEI = new RegExp(`${B}${FRACTION}\\d{15}${E}`, 'gu')
// An IMEI written in groups (`35-209900-176148-1`, `352099 001761481`): 15 digits, single spaces or dashes between.
const IMEI_GROUPED = new RegExp(`${B}${FRACTION}\\d(?:[ -]?\\d){14}${E}`, 'gu')
// National numbers with a trunk zero (`0151 2345678`, `(030) 123456`, `07700 900123`, `030/1234567`), the
// international `00` prefix (`0049 151 2345678`), and North American `(202) 555-0143` / `202-555-0143`. Dots are
// no separator: `07.12.2026` is a date. The digit count is checked in `hasNationalPhone`.
const PHONE_NATIONAL =
  /(?<![\p{L}\p{N}+.,:/-])(?:\(0[1-9]\d{0,4}\) ?\d{3,}(?:[ -]\d{2,})*|0[1-9]\d{0,4}[ /-]\d{3,}(?:[ -]\d{2,})*|0[1-9]\d{8,11}|00[1-9](?:[ -]?\d){7,13}|0[1-9](?:[ .-]\d\d){4}|\([2-9]\d\d\) ?\d{3}[ .-]\d{4}|[2-9]\d\d-\d{3}-\d{4})(?![\p{L}\p{N}]|[.,:/-]\d)/gu
// IPv4 written with hex or octal parts (`0xC0.0xA8.0x01.0x01`, `0300.0250.01.01`) or as one hex number (`0xC0A80101`).
const IPV4_RADIX =
  /(?<![\p{L}\p{N}.])((?:0x[0-9a-f]{1,2}|[0-9]{1,4})(?:\.(?:0x[0-9a-f]{1,2}|[0-9]{1,4})){3})(?![\p{L}\p{N}]|\.[\p{L}\p{N}])/giu
const IPV4_HEX = /(?<![\p{L}\p{N}])0x([0-9a-f]{8})(?![\p{L}\p{N}])/giu
// Free text only: a 12-hex run glued to other letters (`mac001122AABBCC`), and integers (a MAC's 48 bits or an
// IPv4 address's 32 bits in decimal, `73588229205`, `3232235777`).
const MAC_RUN = /(?<![0-9A-Fa-f])(?<!\d\.)[0-9A-Fa-f]{12,14}(?![0-9A-Fa-f])/gu
/** Uuids are random ids, not PII: the free-text checks look past them (their groups are hex and digit runs). */
const UUIDS = /[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}/gu
const withoutUuids = (text: string, f: Features): string => (f.dashes >= 4 ? text.replace(UUIDS, ' ') : text)
const DECIMAL = new RegExp(`${B}${FRACTION}\\d{8,15}(?![\\p{L}\\p{N}]|\\.\\d)`, 'gu')
// A run of upper-case/digit parts joined by single spaces or dashes; `hasPlate` checks windows of up to three parts.
// A `.` or `:` between two alphanumerics glues them, so `3.3V`, `…55.695Z` and `…17T03:19` (ISO timestamps) are
// not candidates, while a sentence's final `.` or a label's `: ` still ends or starts one.
const PLATE_RUN = /(?<![\p{L}\p{N}]|[\p{L}\p{N}][.:])[A-Z0-9]+(?:[ -][A-Z0-9]+)*(?![\p{L}\p{N}]|[.:][\p{L}\p{N}])/gu
const PLATE_SPLIT = /[ -]/
const HEX_GROUPS = /^[0-9A-F]+(?:[ -][0-9A-F]+)*$/
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
    if (Number(m[1]) <= 255 && Number(m[2]) <= 255 && Number(m[3]) <= 255 && Number(m[4]) <= 255 && Number(m[4]) !== 0)
      return true
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

function isPlateWindow(parts: readonly string[], from: number, to: number, folded: boolean): boolean {
  let length = 0
  let letter = false
  let digit = false
  for (let i = from; i <= to; i++) {
    const part = parts[i] as string
    length += part.length
    let letters = 0
    for (let j = 0; j < part.length; j++) {
      const c = part.charCodeAt(j)
      if (c >= 48 && c <= 57) {
        digit = true
        letters = 0
      } else {
        letter = true
        // Folded (lower-case) text: a plate's letter groups are 1 to 3 letters (`b-mw 1234`, `ab12 cde`), so words
        // with a number (`error 3`, `zone 2`) are not plates.
        if (folded && ++letters > 3) return false
      }
    }
  }
  // A single all-hex part of five or more letter and digit groups is a hash fragment (`f4f3cfa` of a version),
  // not a plate (`ab12cde` has three groups, `can4ry1` four).
  if (
    folded &&
    from === to &&
    /^[0-9A-F]+$/.test(parts[from] as string) &&
    (parts[from] as string).match(/[0-9]+|[A-F]+/g)!.length >= 5
  )
    return false
  return length >= 2 && length <= 8 && letter && digit
}

/**
 * A licence plate: 2 to 8 upper-case letters and digits, at least one of each, optionally in up to three parts
 * (`B-MW 1234`, `ABC 123`, `CAN4RY1`). Plain words and pure numbers never match; upper-case model names
 * (`CO2`, `TS011F`, `POW R2`) do: that is the price of catching plates. `folded`: the text was lower or mixed
 * case and has been upper-cased; then letter groups are at most 3 letters and a single all-hex part (`f4f3cfa` of
 * a version string) is no plate.
 */
function hasPlate(text: string, folded = false): boolean {
  PLATE_RUN.lastIndex = 0
  for (let m = PLATE_RUN.exec(text); m !== null; m = PLATE_RUN.exec(text)) {
    const run = m[0]
    if (run.length === 36 && UUID.test(run)) continue
    // Folded text: a run of hex groups (`dcb772de-d8e8-4074`, a uuid cut short by `.jpg`) is an id, not a plate.
    if (folded && run.length >= 12 && HEX_GROUPS.test(run)) continue
    const parts = run.split(PLATE_SPLIT)
    for (let i = 0; i < parts.length; i++) {
      for (let j = i; j < parts.length && j < i + 3; j++) if (isPlateWindow(parts, i, j, folded)) return true
    }
  }
  return false
}

function hasGroupedImei(text: string): boolean {
  IMEI_GROUPED.lastIndex = 0
  for (let m = IMEI_GROUPED.exec(text); m !== null; m = IMEI_GROUPED.exec(text)) {
    const digits = m[0].replace(/[ -]/g, '')
    if (luhnValid(digits)) return true
  }
  return false
}

function hasNationalPhone(text: string): boolean {
  PHONE_NATIONAL.lastIndex = 0
  for (let m = PHONE_NATIONAL.exec(text); m !== null; m = PHONE_NATIONAL.exec(text)) {
    let digits = 0
    for (let i = 0; i < m[0].length; i++) {
      const c = m[0].charCodeAt(i)
      if (c >= 48 && c <= 57) digits++
    }
    if (digits >= 8 && digits <= 15) return true
  }
  return false
}

const parsePart = (part: string): number =>
  /^0x/i.test(part)
    ? parseInt(part.slice(2), 16)
    : part.length > 1 && part.startsWith('0')
      ? /^[0-7]+$/.test(part)
        ? parseInt(part, 8)
        : NaN
      : Number(part)

/** IPv4 with hex or octal parts, or as one `0x` hex number; a host (last octet not zero), as for dotted quads. */
function hasRadixIpv4(text: string): boolean {
  IPV4_RADIX.lastIndex = 0
  for (let m = IPV4_RADIX.exec(text); m !== null; m = IPV4_RADIX.exec(text)) {
    const parts = (m[1] as string).split('.')
    // Plain decimal quads are the `ipv4` dotted-quad test's.
    if (!parts.some((p) => /^0x/i.test(p) || (p.length > 1 && p.startsWith('0')))) continue
    const values = parts.map(parsePart)
    if (values.every((v) => v >= 0 && v <= 255) && values[3] !== 0) return true
  }
  IPV4_HEX.lastIndex = 0
  for (let m = IPV4_HEX.exec(text); m !== null; m = IPV4_HEX.exec(text)) {
    const value = parseInt(m[1] as string, 16)
    if (value >= 0x01000000 && (value & 0xff) !== 0) return true
  }
  return false
}

/** Free text: a standalone integer of 8 to 15 digits that is an IPv4 address (32 bits) or a MAC (48 bits). */
function decimalIdentifier(text: string): 'mac' | 'ipv4' | undefined {
  DECIMAL.lastIndex = 0
  for (let m = DECIMAL.exec(text); m !== null; m = DECIMAL.exec(text)) {
    const value = Number(m[0])
    if (value >= 0x01000000 && value <= 0xffffffff) return 'ipv4'
    if (value > 0xffffffff && value < 2 ** 48) return 'mac'
  }
  return undefined
}

/** A glued prefix may end in a-f (`mac` + 12 hex is a 14-hex run); no word is 12 letters a-f. */
function hasMacRun(text: string): boolean {
  MAC_RUN.lastIndex = 0
  return MAC_RUN.test(text)
}

/** `john(at)example(dot)com`, `john [at] example [dot] com`, `john at example dot com`. */
const AT_BRACKETED = /\s*[([{<]\s*at\s*[)\]}>]\s*/giu
const AT_SPACED = /\s+at\s+/giu
const DOT_BRACKETED = /\s*[([{<]\s*dot\s*[)\]}>]\s*/giu
const DOT_SPACED = /\s+dot\s+/giu

const AT_WORD = /(?:^|[\s([{<])at(?:$|[\s)\]}>])/iu

function hasObfuscatedEmail(text: string): boolean {
  if (!AT_WORD.test(text)) return false
  const bracketed = AT_BRACKETED.test(text)
  AT_BRACKETED.lastIndex = 0
  DOT_BRACKETED.lastIndex = 0
  DOT_SPACED.lastIndex = 0
  const dots = DOT_BRACKETED.test(text) || DOT_SPACED.test(text)
  DOT_BRACKETED.lastIndex = 0
  DOT_SPACED.lastIndex = 0
  if (!bracketed && !dots) return false
  // `stuck at dock.` must not become `stuck@dock.`: a spaced `at` counts only beside a written-out `dot`.
  let t = text.replace(AT_BRACKETED, '@')
  if (dots) t = t.replace(AT_SPACED, '@').replace(DOT_BRACKETED, '.').replace(DOT_SPACED, '.')
  return t.includes('@') && EMAIL.test(t)
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
  lower: boolean
  x: boolean
  /** Characters outside printable ASCII (controls, anything past U+007E): normalisation may change the text. */
  unusual: boolean
  percent: boolean
  amp: boolean
  bracket: boolean
  spaces: number
  /** Longest run of base64 characters (letters, digits, `+ / - _`). */
  b64Run: number
  /** A `0` that starts a number (national trunk prefix). */
  zeroStart: boolean
  /** A base64 run of 8 or more whose every fourth character can start a quad of printable text (see quadsLookPrintable). */
  b64Candidate: boolean
}

const features: Features = {
  digits: 0,
  hexRun: 0,
  hex: 0,
  at: false,
  plus: false,
  dots: 0,
  colons: 0,
  dashes: 0,
  upper: false,
  lower: false,
  x: false,
  unusual: false,
  percent: false,
  amp: false,
  bracket: false,
  spaces: 0,
  b64Run: 0,
  zeroStart: false,
  b64Candidate: false,
}

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
  f.lower = false
  f.x = false
  f.unusual = false
  f.percent = false
  f.amp = false
  f.bracket = false
  f.spaces = 0
  f.b64Run = 0
  f.zeroStart = false
  f.b64Candidate = false
  let run = 0
  let previous = 0
  let b64Ok = true
  let b64 = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    let isHex = false
    let isB64 = true
    if (c >= 48 && c <= 57) {
      f.digits++
      isHex = true
      if (c === 48 && !(previous >= 48 && previous <= 57)) f.zeroStart = true
    } else if (c >= 65 && c <= 90) {
      f.upper = true
      isHex = c <= 70
    } else if (c >= 97 && c <= 122) {
      f.lower = true
      isHex = c <= 102
      if (c === 120) f.x = true
    } else {
      isB64 = c === 43 || c === 47 || c === 45 || c === 95
      if (c === 64) f.at = true
      else if (c === 43) f.plus = true
      else if (c === 46) f.dots++
      else if (c === 58) f.colons++
      else if (c === 45) f.dashes++
      else if (c === 32) f.spaces++
      else if (c === 37) f.percent = true
      else if (c === 38) f.amp = true
      else if (c === 40 || c === 91 || c === 123 || c === 60) f.bracket = true
      else if (c < 32 || c > 126) f.unusual = true
    }
    if (isHex) {
      f.hex++
      if (++run > f.hexRun) f.hexRun = run
    } else run = 0
    if (isB64) {
      if (b64 % 4 === 0) {
        if (b64 === 0) b64Ok = true
        if (!(c === 67 || c === 68 || (c >= 73 && c <= 90) || (c >= 97 && c <= 102))) b64Ok = false
      }
      if (++b64 > f.b64Run) f.b64Run = b64
      if (b64Ok && b64 >= 8) f.b64Candidate = true
    } else b64 = 0
    previous = c
  }
  return f
}

type Test = (text: string, f: Features, free: boolean) => boolean

const TESTS: Readonly<Record<Detector, Test>> = {
  email: (t, f) => (f.at && EMAIL.test(t)) || ((f.bracket || f.spaces >= 2) && t.length >= 10 && hasObfuscatedEmail(t)),
  phone: (t, f) =>
    (f.plus && f.digits >= 8 && PHONE_E164.test(t)) ||
    (f.digits >= 11 && PHONE_CN.test(t)) ||
    (f.digits >= 8 && (f.zeroStart || f.bracket || f.dashes >= 2) && hasNationalPhone(t)),
  mac: (t, f, free) =>
    f.hex >= 12 &&
    ((f.hexRun >= 12 && (MAC_BARE.test(t) || (free && hasMacRun(withoutUuids(t, f))))) ||
      (f.colons + f.dashes >= 5 && MAC_SEP.test(t)) ||
      (f.dots >= 2 && MAC_DOT.test(t)) ||
      (f.x && f.hexRun >= 16 && EUI64.test(t))),
  ipv4: (t, f) =>
    (f.dots >= 3 && f.digits >= 4 && (hasIpv4(t) || hasRadixIpv4(t))) || (f.x && f.hexRun >= 8 && hasRadixIpv4(t)),
  ipv6: (t, f) => f.colons >= 2 && hasIpv6(t),
  imei: (t, f) => f.digits >= 15 && (hasImei(t) || ((f.spaces > 0 || f.dashes > 0) && hasGroupedImei(t))),
  plate: (t, f, free) =>
    f.digits > 0 && ((f.upper && hasPlate(t)) || (free && f.lower && hasPlate(t.toUpperCase(), true))),
}

/**
 * Text decoded from a base64 or hex run is often a few random printable bytes (` !@ 1A`), in which a two-character
 * plate is easy to find: there only a whole decoded text of letters, digits, spaces and dashes can be a plate.
 */
const DECODED_TESTS: Readonly<Record<Detector, Test>> = {
  ...TESTS,
  plate: (t, f, free) => /^[A-Za-z0-9 -]{5,10}$/.test(t) && TESTS.plate(t, f, free),
}

/** Unicode dashes that stand for `-` (NFKC keeps them). */
const DASHES = /[\u2010-\u2015\u2212\uFE58\uFE63\uFF0D]/gu
/** Characters that show as nothing (format characters, controls but tab and line breaks, fillers, variation selectors). */
const INVISIBLE =
  // biome-ignore lint/suspicious/noMisleadingCharacterClass: the combining grapheme joiner (U+034F) stands alone on purpose: it is one of the invisible characters removed
  /[\p{Cf}\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u034F\u115F\u1160\u17B4\u17B5\u180B-\u180F\u3164\uFE00-\uFE0F\uFFA0]|\uDB40[\uDC00-\uDDEF]/gu

/** NFKC, invisible characters removed, Unicode dashes and the ideographic full stop made ASCII. */
export function normalizeText(text: string): string {
  return text
    .replace(INVISIBLE, '')
    .normalize('NFKC')
    .replace(INVISIBLE, '')
    .replace(DASHES, '-')
    .replaceAll('\u3002', '.')
}

const PERCENT_RUN = /(?:%[0-9A-Fa-f]{2})+/g
const ENTITY = /&(?:#(\d{1,7})|#[xX]([0-9A-Fa-f]{1,6})|(commat|period|colon|plus));/g
const NAMED: Readonly<Record<string, string>> = { commat: '@', period: '.', colon: ':', plus: '+' }

function percentDecode(text: string): string {
  return text.replace(PERCENT_RUN, (run) => Buffer.from(run.replaceAll('%', ''), 'hex').toString('utf8'))
}

function entityDecode(text: string): string {
  return text.replace(ENTITY, (all, dec: string | undefined, hex: string | undefined, name: string | undefined) => {
    if (name !== undefined) return NAMED[name] ?? all
    const code = dec !== undefined ? Number(dec) : parseInt(hex as string, 16)
    return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : all
  })
}

/** Decoded bytes that read as text: printable ASCII, tabs and line breaks, or (valid) UTF-8. */
function printable(bytes: Buffer): string | undefined {
  if (bytes.length < 4) return undefined
  let ascii = true
  for (const b of bytes) {
    if (b >= 0x80) ascii = false
    else if ((b < 0x20 && b !== 9 && b !== 10 && b !== 13) || b === 0x7f) return undefined
  }
  if (ascii) return bytes.toString('latin1')
  const text = bytes.toString('utf8')
  return text.includes('\uFFFD') ? undefined : text
}

/**
 * The first sextet of each base64 quad of printable ASCII is 2-3 (tab, line breaks) or 8-31 (`C D I-Z a-f`): one
 * character in four rules out a word such as `stationary` before anything is decoded.
 */
function quadsLookPrintable(run: string): boolean {
  for (let i = 0; i < run.length; i += 4) {
    const c = run.charCodeAt(i)
    if (!(c === 67 || c === 68 || (c >= 73 && c <= 90) || (c >= 97 && c <= 102))) return false
  }
  return true
}

/** Hex of printable ASCII: every first nibble is 2-7 (or 0 for tab and line breaks). */
function nibblesLookPrintable(run: string, from: number): boolean {
  for (let i = from; i < run.length - 1; i += 2) {
    const c = run.charCodeAt(i)
    if (c === 48) {
      const low = run.charCodeAt(i + 1) | 0x20
      if (low !== 57 && low !== 97 && low !== 100) return false
    } else if (c < 50 || c > 55) return false
  }
  return true
}

/** Base64 of text mixes character classes; a short word of one class (`MDFBMDFB`, `stationary`) is left alone. */
function mixedClasses(run: string): boolean {
  let upper = 0
  let lower = 0
  let digit = 0
  for (let i = 0; i < run.length; i++) {
    const c = run.charCodeAt(i)
    if (c >= 65 && c <= 90) upper = 1
    else if (c >= 97 && c <= 122) lower = 1
    else if (c >= 48 && c <= 57) digit = 1
  }
  // Upper-case-only runs are base64 of upper-case text (`REVBREJFRUZGQUNF`) when long, and words when short (`MDFBMDFB`).
  return upper + lower + digit >= 2 || (upper === 1 && run.length >= 12)
}

const B64_RUN = /[A-Za-z0-9+/_-]{8,}={0,2}/g
const HEX_RUN = /[0-9A-Fa-f]{12,}/g
const MAX_LAYERS = 3

/** The texts that base64 and hex runs of `text` decode to (printable ones only). */
function decodedRuns(text: string, f: Features): string[] {
  const out: string[] = []
  if (f.b64Candidate) {
    B64_RUN.lastIndex = 0
    for (let m = B64_RUN.exec(text); m !== null; m = B64_RUN.exec(text)) {
      const run = m[0]
      const body = run.replace(/=+$/, '')
      // Aligned at the run's start; a prefix glued to it (`id=`, `mac:`) ends the run, so the start is a boundary.
      if (body.length % 4 === 1 || !quadsLookPrintable(body) || !mixedClasses(body)) continue
      const decoded = printable(Buffer.from(body, 'base64'))
      if (decoded !== undefined) out.push(decoded)
    }
  }
  if (f.hexRun >= 12) {
    HEX_RUN.lastIndex = 0
    for (let m = HEX_RUN.exec(text); m !== null; m = HEX_RUN.exec(text)) {
      const run = m[0]
      for (const from of run.length % 2 === 0 ? [0] : [0, 1]) {
        if (!nibblesLookPrintable(run, from)) continue
        const decoded = printable(Buffer.from(run.slice(from, from + ((run.length - from) & ~1)), 'hex'))
        if (decoded !== undefined) out.push(decoded)
      }
    }
  }
  return out
}

export interface Scanner {
  /** The first detector that matches the text, or undefined. */
  (text: string): Detector | undefined
}

export interface ScannerOptions {
  /**
   * Free text (pii_scan's strings): also a 12-hex run glued to letters, a standalone integer of 8 to 15 digits that
   * is an IPv4 address or a MAC in decimal, and lower- or mixed-case plates. Off for the P2 scan of whole JSON
   * outputs, where timestamps are such integers. Default true.
   */
  readonly freeText?: boolean
}

/** Compiles a scanner for a set of detectors once, so the per-message loop only calls plain functions. */
export function compileScanner(detectors: readonly Detector[], options: ScannerOptions = {}): Scanner {
  for (const d of detectors)
    if (!Object.hasOwn(TESTS, d)) throw new Error(`unknown detector ${d}; known: ${DETECTORS.join(', ')}`)
  const tests = [...new Set(detectors)].map((d) => [d, TESTS[d]] as const)
  const decodedTests = [...new Set(detectors)].map((d) => [d, DECODED_TESTS[d]] as const)
  const free = options.freeText ?? true
  const decimalMac = free && detectors.includes('mac')
  const decimalIpv4 = free && detectors.includes('ipv4')

  const scan = (text: string, layer: number, fromRun = false): Detector | undefined => {
    // Nothing any detector looks for fits in fewer than 2 characters (`A1`).
    if (text.length < 2) return undefined
    const f = measure(text)
    for (const [name, test] of fromRun ? decodedTests : tests) if (test(text, f, free)) return name
    if ((decimalMac || decimalIpv4) && f.digits >= 8) {
      const found = decimalIdentifier(withoutUuids(text, f))
      if ((found === 'mac' && decimalMac) || (found === 'ipv4' && decimalIpv4)) return found
    }
    if (layer >= MAX_LAYERS) return undefined
    // Variants of the text, each scanned again; `measure` refills the shared features, so read them first.
    const unusual = f.unusual
    const percent = f.percent
    const amp = f.amp
    const decoded = f.b64Candidate || f.hexRun >= 12 ? decodedRuns(withoutUuids(text, f), f) : []
    if (unusual) {
      const normal = normalizeText(text)
      if (normal !== text) {
        const found = scan(normal, layer + 1)
        if (found !== undefined) return found
      }
    }
    if (percent) {
      const plain = percentDecode(text)
      if (plain !== text) {
        const found = scan(plain, layer + 1)
        if (found !== undefined) return found
      }
    }
    if (amp) {
      const plain = entityDecode(text)
      if (plain !== text) {
        const found = scan(plain, layer + 1)
        if (found !== undefined) return found
      }
    }
    for (const d of decoded) {
      const found = scan(d, layer + 1, true)
      if (found !== undefined) return found
    }
    return undefined
  }
  return (text) => scan(text, 0)
}

const p2Scanner = compileScanner(P2_DETECTORS, { freeText: false })
const scanners = new Map<string, Scanner>()

/**
 * The name of the first detector that finds an identifier in `text`, or undefined; the scanner for forwarded bytes
 * (not in free-text mode: see ScannerOptions). Without `detectors` it scans for what P2 forbids (all but `plate`).
 */
export function findPii(text: string, detectors?: readonly Detector[]): Detector | undefined {
  if (detectors === undefined) return p2Scanner(text)
  const key = detectors.join(',')
  let scanner = scanners.get(key)
  if (scanner === undefined) {
    scanner = compileScanner(detectors, { freeText: false })
    scanners.set(key, scanner)
  }
  return scanner(text)
}
