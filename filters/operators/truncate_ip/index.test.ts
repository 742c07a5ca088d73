import { isIP } from 'node:net'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SUPPRESS } from '#veil/sdk'
import { compileEnv, opContext } from '../testing.ts'
import truncateIp, { formatIpv6, parseIpv4, parseIpv6, truncateIp as truncate } from './index.ts'

const env = compileEnv({ category: 'robot_vacuum' })
const ctx = opContext({ category: 'robot_vacuum' })
const run = (paths: string[], doc: unknown): unknown => truncateIp.compile({ paths }, env)(doc, ctx)

/** The P2 check: no IPv4 with a non-zero last octet, no IPv6 with a set bit past /48. */
function leaks(out: string): boolean {
  for (const item of out.split(',')) {
    if (isIP(item) === 4) {
      if (!item.endsWith('.0')) return true
    } else if (isIP(item) === 6) {
      const groups = parseIpv6(item)
      if (groups === undefined || groups.slice(3).some((g) => g !== 0)) return true
    } else return true
  }
  return false
}

describe('truncate_ip', () => {
  it('truncates IPv4 to /24 and IPv6 to /48 in canonical form', () => {
    expect(truncate('192.168.1.37')).toBe('192.168.1.0')
    expect(truncate(' 10.203.4.5 ')).toBe('10.203.4.0')
    expect(truncate('2001:db8:85a3:8d3:1319:8a2e:370:7348')).toBe('2001:db8:85a3::')
    expect(truncate('2001:0DB8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::')
    expect(truncate('fe80::c811:a7ff:fe03:1')).toBe('fe80::')
    expect(truncate('fe80::1%wlan0')).toBe('fe80::')
    expect(truncate('[2a00:1450:4001:81c::200e]')).toBe('2a00:1450:4001::')
    expect(truncate('0:1:0::1')).toBe('0:1::')
    expect(truncate('::1')).toBe('::')
    expect(truncate('::ffff:192.0.2.77')).toBe('192.0.2.0')
    expect(truncate('64:ff9b::192.0.2.77')).toBe('64:ff9b::')
  })

  it('rejects what is not an address', () => {
    for (const bad of [
      '',
      'localhost',
      '256.1.1.1',
      '1.2.3',
      '1.2.3.4.5',
      '01.2.3.4',
      '1.2.3.4/24',
      '1:2:3:4:5:6:7',
      '1::2::3',
      '12345::',
      'g::1',
      '1:2:3:4:5:6:7:8:9',
      '1.2.3.4:1883',
      '::ffff:1.2.3',
    ]) {
      expect(truncate(bad), bad).toBeUndefined()
    }
  })

  it('handles Valetudo comma-separated lists and arrays, dropping bad entries and duplicates', () => {
    expect(run(['$'], '10.203.7.9,fe80::c811:a7ff:fe03:a')).toBe('10.203.7.0,fe80::')
    expect(run(['ips'], { ips: '10.0.0.5, 10.0.0.9 ,junk' })).toEqual({ ips: '10.0.0.0' })
    expect(run(['ips'], { ips: ['10.0.0.5', 'fe80::1', 'x'] })).toEqual({ ips: ['10.0.0.0', 'fe80::'] })
    expect(run(['ips'], { ips: 'junk,more junk' })).toEqual({})
    expect(run(['$'], 'junk')).toBe(SUPPRESS)
    // `[]` paths map elements (dropping what is not an address) and nested objects; a non-array is removed, and so
    // is an element where the path expects an object (it cannot be processed, so it cannot pass).
    expect(run(['list[]'], { list: ['1.2.3.4', 5, 'x'] })).toEqual({ list: ['1.2.3.0'] })
    expect(run(['hosts[].ip'], { hosts: [{ ip: '1.2.3.4' }, { ip: 7 }, 'x'] })).toEqual({
      hosts: [{ ip: '1.2.3.0' }, {}],
    })
    expect(run(['list[]'], { list: '1.2.3.4' })).toEqual({})
  })

  it('fails closed: non-strings are removed', () => {
    for (const bad of [3232235777, null, true, { ip: '1.2.3.4' }, [1, 2]]) {
      expect(run(['StatusNET.IPAddress'], { StatusNET: { IPAddress: bad, Webserver: 2 } })).toEqual({
        StatusNET: { Webserver: 2 },
      })
    }
  })

  it('formats IPv6 as RFC 5952 (longest zero run, first on a tie, runs of one not compressed)', () => {
    expect(formatIpv6([1, 0, 0, 2, 0, 0, 0, 3])).toBe('1:0:0:2::3')
    expect(formatIpv6([1, 0, 0, 2, 0, 0, 3, 4])).toBe('1::2:0:0:3:4')
    expect(formatIpv6([1, 0, 2, 3, 4, 5, 6, 7])).toBe('1:0:2:3:4:5:6:7')
    expect(formatIpv6([0, 0, 0, 0, 0, 0, 0, 0])).toBe('::')
  })

  it('property: output never has a non-zero last IPv4 octet or more than 48 significant IPv6 bits', () => {
    const address = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), fc.string({ maxLength: 40 }))
    fc.assert(
      fc.property(fc.array(address, { minLength: 1, maxLength: 4 }), (list) => {
        const out = run(['ips'], { ips: list.join(',') }) as { ips?: string }
        if (out.ips === undefined) return
        expect(leaks(out.ips)).toBe(false)
      }),
      { seed: 42, numRuns: 3000 },
    )
  })

  it('property: valid addresses parse, and truncation keeps exactly the network prefix', () => {
    fc.assert(
      fc.property(fc.ipV4(), (ip) => {
        const parts = parseIpv4(ip)
        const out = truncate(ip)
        expect(out).toBe(`${ip.split('.').slice(0, 3).map(Number).join('.')}.0`)
        expect(parts).toBeDefined()
      }),
      { seed: 42, numRuns: 2000 },
    )
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const groups = parseIpv6(ip)
        expect(groups).toHaveLength(8)
        const out = truncate(ip) as string
        expect(out).toBeDefined()
        const mapped = groups?.slice(0, 6).join(',') === '0,0,0,0,0,65535'
        if (!mapped) expect(parseIpv6(out)?.slice(0, 3)).toEqual(groups?.slice(0, 3))
        expect(isIP(out)).toBeGreaterThan(0)
      }),
      { seed: 42, numRuns: 2000 },
    )
  })
})
