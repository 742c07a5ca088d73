import { defineOperator } from '#veil/sdk'
import { compileFieldMap, pathsSchema, readPaths, REMOVE } from '../fields.ts'

/**
 * Truncates IP addresses to the network: IPv4 to /24 (last octet 0), IPv6 to /48 (the interface id, often derived
 * from the MAC, and the subnet are zeroed), as Google Analytics' IP anonymisation does "in memory" (privacy.md §1
 * `truncate_ip`, GA). Accepts one address, a comma-separated list (Valetudo `ips`: `10.0.0.7,fe80::c811:…`) or an
 * array of strings. Entries that are not an address are dropped; a field with no address left is removed.
 */
export default defineOperator({
  name: 'truncate_ip',
  description: 'IPv4 to /24 and IPv6 to /48 (canonical form), in single values, comma-separated lists and arrays',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['paths'],
    properties: { paths: pathsSchema },
  },
  compile(config) {
    // Checked against configSchema by the loader: paths is required.
    const paths = readPaths(config as { readonly paths: readonly string[] })
    return compileFieldMap(paths, (value) => {
      if (typeof value === 'string') {
        if (value.indexOf(',') === -1) return truncateIp(value) ?? REMOVE
        const out = truncateList(value.split(','))
        return out.length === 0 ? REMOVE : out.join(',')
      }
      if (Array.isArray(value)) {
        if (!value.every((v) => typeof v === 'string')) return REMOVE
        const out = truncateList(value as string[])
        return out.length === 0 ? REMOVE : out
      }
      return REMOVE
    })
  },
})

/** Truncation makes neighbours equal; duplicates are dropped so the list does not count a network's hosts. */
function truncateList(items: readonly string[]): string[] {
  const out: string[] = []
  for (const item of items) {
    const truncated = truncateIp(item)
    if (truncated !== undefined && !out.includes(truncated)) out.push(truncated)
  }
  return out
}

/** The truncated canonical address, or undefined when the text is not an IP address. */
export function truncateIp(text: string): string | undefined {
  const value = text.trim()
  if (value.length === 0 || value.length > 64) return undefined
  if (value.indexOf(':') === -1) {
    const v4 = parseIpv4(value)
    return v4 === undefined ? undefined : `${v4[0]}.${v4[1]}.${v4[2]}.0`
  }
  const v6 = parseIpv6(value)
  if (v6 === undefined) return undefined
  // ::ffff:a.b.c.d is an IPv4 host in disguise: /48 would erase it entirely, so truncate the IPv4 part instead.
  if (v6[0] === 0 && v6[1] === 0 && v6[2] === 0 && v6[3] === 0 && v6[4] === 0 && v6[5] === 0xffff) {
    return `${(v6[6] as number) >> 8}.${(v6[6] as number) & 0xff}.${(v6[7] as number) >> 8}.0`
  }
  return formatIpv6([v6[0] as number, v6[1] as number, v6[2] as number, 0, 0, 0, 0, 0])
}

const OCTET = /^(?:0|[1-9]\d{0,2})$/

/** Strict dotted quad: leading zeros are refused (`010` is octal to some parsers, decimal to others). */
export function parseIpv4(text: string): [number, number, number, number] | undefined {
  const parts = text.split('.')
  if (parts.length !== 4) return undefined
  const out: number[] = []
  for (const part of parts) {
    if (!OCTET.test(part)) return undefined
    const n = Number(part)
    if (n > 255) return undefined
    out.push(n)
  }
  return out as [number, number, number, number]
}

const GROUP = /^[0-9a-f]{1,4}$/i

/** Eight 16-bit groups; accepts `::` compression, an embedded IPv4 tail and a zone id (`%wlan0`, dropped). */
export function parseIpv6(text: string): number[] | undefined {
  let value = text
  if (value.startsWith('[') && value.endsWith(']')) value = value.slice(1, -1)
  const zone = value.indexOf('%')
  if (zone !== -1) value = value.slice(0, zone)
  const tail: number[] = []
  const lastColon = value.lastIndexOf(':')
  if (value.indexOf('.', lastColon) !== -1) {
    const v4 = parseIpv4(value.slice(lastColon + 1))
    if (v4 === undefined) return undefined
    tail.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3])
    const head = value.slice(0, lastColon + 1)
    // `::ffff:` loses its separator colon; a trailing `::` is itself the compression and stays.
    value = head.endsWith('::') ? head : head.slice(0, -1)
  }
  const double = value.indexOf('::')
  if (double !== -1 && value.indexOf('::', double + 1) !== -1) return undefined
  const parse = (part: string): number[] | undefined => {
    if (part === '') return []
    const groups = part.split(':')
    const out: number[] = []
    for (const group of groups) {
      if (!GROUP.test(group)) return undefined
      out.push(parseInt(group, 16))
    }
    return out
  }
  const want = 8 - tail.length
  let groups: number[]
  if (double === -1) {
    const all = parse(value)
    if (all === undefined || all.length !== want) return undefined
    groups = all
  } else {
    const left = parse(value.slice(0, double))
    const right = parse(value.slice(double + 2))
    if (left === undefined || right === undefined || left.length + right.length >= want) return undefined
    groups = [...left, ...new Array<number>(want - left.length - right.length).fill(0), ...right]
  }
  return [...groups, ...tail]
}

/** RFC 5952: lower case, no leading zeros, the longest run (≥ 2) of zero groups as `::`, the first on a tie. */
export function formatIpv6(groups: readonly number[]): string {
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < groups.length && groups[j] === 0) j++
    if (j - i > bestLength) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (bestStart === -1) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`
}
