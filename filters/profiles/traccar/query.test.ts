import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { parseOsmandQuery } from './osmand.ts'
import { FIXTURES, leaks, shippedPipeline, type ProfilePipeline } from '../testing.ts'

const T0 = Date.UTC(2026, 2, 1, 12)
/** The OsmAnd request lines of Traccar's own decoder tests (test/fixtures/gps/traccar_osmand_query_requests.txt). */
const REQUESTS = readFileSync(join(FIXTURES, 'gps/traccar_osmand_query_requests.txt'), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')

describe('OsmAnd query strings', () => {
  let p: ProfilePipeline | undefined
  afterEach(() => p?.close())

  it('rewrites the query form into the JSON form: knots to m/s, every timestamp form to ISO, batt to 0..1', () => {
    const parse = (q: string): Record<string, unknown> => {
      const r = parseOsmandQuery(q, T0)
      if ('problem' in r) throw new Error(r.problem)
      return r.value
    }
    expect(
      parse(
        'id=123456789012345&timestamp=1504763810&lat=40.7232948571&lon=-74.0061408571&bearing=7.19889788244&speed=40&ignition=true&batt=87',
      ),
    ).toEqual({
      device_id: '123456789012345',
      location: {
        timestamp: '2017-09-07T05:56:50.000Z',
        coords: {
          latitude: 40.7232948571,
          longitude: -74.0061408571,
          heading: 7.19889788244,
          speed: (40 * 1852) / 3600,
        },
        battery: { level: 0.87 },
        extras: { ignition: 'true' },
      },
    })
    expect((parse('/?id=1&lat=1&lon=2&timestamp=1442068686579').location as { timestamp: string }).timestamp).toBe(
      '2015-09-12T14:38:06.579Z',
    )
    expect(
      (parse('/?id=1&lat=1&lon=2&timestamp=2014-06-04+09%3A10%3A11').location as { timestamp: string }).timestamp,
    ).toBe('2014-06-04T09:10:11.000Z')
    expect(
      (parse('/?id=1&lat=1&lon=2&timestamp=2016-01-27T18%3A55%3A47Z').location as { timestamp: string }).timestamp,
    ).toBe('2016-01-27T18:55:47.000Z')
    // No timestamp: the arrival time, as Traccar uses the server time.
    expect(parse('deviceid=9&location=60.0,30.0').location as { timestamp: string; coords: unknown }).toMatchObject({
      timestamp: new Date(T0).toISOString(),
      coords: { latitude: 60, longitude: 30 },
    })
    expect(parse('id=1&lat=1&lon=2&wifi=00-14-22-01-23-45,-80&wifi=00-1C-B3-09-85-15,-70').location).toMatchObject({
      extras: { wifi: ['00-14-22-01-23-45,-80', '00-1C-B3-09-85-15,-70'] },
    })
    for (const bad of [
      'lat=1&lon=2',
      'id=1&lat=x&lon=2',
      'id=1&lat=1',
      'id=1&lat=1&lon=2&speed=fast',
      'id=1&id=2&lat=1&lon=2',
      'id=1&lat=1&lon=2&timestamp=yesterday',
    ]) {
      expect('problem' in parseOsmandQuery(bad, T0), bad).toBe(true)
    }
  })

  it("takes Traccar's own request lines; what leaves carries no id, cell, Wi-Fi or exact position", async () => {
    p = shippedPipeline()
    const results = []
    for (const [i, line] of REQUESTS.entries()) results.push(await p.send(T0 + i * 20 * 60_000, 'traccar/osmand', line))
    // The line without an id has no device: dropped at validation; every other one is decoded.
    expect(results.map((r) => r.dropped?.stage ?? 'kept')).toEqual(
      REQUESTS.map((l) => (/[?&](id|deviceid)=/.test(l) ? (/lat=|location=/.test(l) ? 'kept' : 'decode') : 'decode')),
    )
    expect(p.forwarded.length).toBeGreaterThan(4)
    const identifiers = [
      '123456',
      '902064',
      '353861053849681',
      '861001000719969',
      '123456789012345',
      '00-14-22-01-23-45',
      '00-1C-B3-09-85-15',
      '2224',
      '2223',
      '42.06288',
      '-88.23412',
      '40.7232948571',
    ]
    expect(leaks(p.forwarded, identifiers, p.audit)).toEqual([])
    for (const f of p.forwarded.filter((x) => x.domain === 'svc')) {
      const location = (f.data as { location: Record<string, unknown> }).location
      for (const key of Object.keys(location)) expect(['coords', 'timestamp', 'motion', 'battery']).toContain(key)
      expect(Object.keys(location.coords as object).sort()).toEqual(['latitude', 'longitude'])
    }
  })
})
