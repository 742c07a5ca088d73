/**
 * Issue 13.1: home and work must not be found from what svc receives. Seven simulated days of a home-work routine
 * (nights at home, commutes, days at work, weekend at home, a fix every 90 s with indoor GPS jitter) run through
 * the real compiled gps_tracker policy on the replay clock. Of svc's night-time (22-06) and day-time (09-16)
 * fixes, the mean, the component-wise median and the centre of the densest geohash-7 cell must each lie ≥ 400 m
 * from home and from work, with and without configured zones, for several master keys. An empty set passes (no
 * estimate at all); the same statistics with learned stay zones off show the test is not vacuous.
 */
import { describe, expect, it } from 'vitest'
import { geohashDecode, geohashEncode } from '../../filters/operators/geohash_snap/index.ts'
import { seededRandom } from '../../filters/operators/testing.ts'
import { dataOf, gpsPipeline, type Zone } from '../../filters/profiles/gps.testing.ts'

const START = Date.UTC(2026, 2, 2) // a Monday, 00:00 UTC
const STEP_MS = 90_000
const DAYS = 7
const HOME: Zone = { lat: 52.52, lon: 13.405 }
const WORK: Zone = { lat: 52.5, lon: 13.29 } // ≈ 8 km west-south-west
const TOPIC = 'owntracks/alice/phone'
const KEYS = [0x11, 0x47, 0x9c, 0xe3]

function haversine(a: Zone, b: Zone): number {
  const rad = Math.PI / 180
  const h =
    Math.sin(((b.lat - a.lat) * rad) / 2) ** 2 +
    Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(((b.lon - a.lon) * rad) / 2) ** 2
  return 2 * 6_371_008.8 * Math.asin(Math.min(1, Math.sqrt(h)))
}

/** Where the person is at `t`: home, work, or on the 30-minute commute between them (weekends at home). */
function truth(t: number): Zone {
  const day = Math.floor((t - START) / 86_400_000)
  const hour = ((t - START) % 86_400_000) / 3_600_000
  if (day >= 5) return HOME
  const between = (f: number): Zone => ({
    lat: HOME.lat + (WORK.lat - HOME.lat) * f,
    lon: HOME.lon + (WORK.lon - HOME.lon) * f,
  })
  if (hour < 7.5 || hour >= 17.5) return HOME
  if (hour < 8) return between((hour - 7.5) * 2)
  if (hour < 17) return WORK
  return between(1 - (hour - 17) * 2)
}

interface Stats {
  n: number
  /** The three estimates' distances from home and from work, metres; empty when nothing left. */
  distances: number[]
}

function estimate(fixes: readonly Zone[]): Stats {
  if (fixes.length === 0) return { n: 0, distances: [] }
  const mean = {
    lat: fixes.reduce((s, f) => s + f.lat, 0) / fixes.length,
    lon: fixes.reduce((s, f) => s + f.lon, 0) / fixes.length,
  }
  const med = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b)
    const m = s.length >> 1
    return s.length % 2 === 1 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2
  }
  const median = { lat: med(fixes.map((f) => f.lat)), lon: med(fixes.map((f) => f.lon)) }
  const counts = new Map<string, number>()
  for (const f of fixes) {
    const cell = geohashEncode(f.lat, f.lon, 7)
    counts.set(cell, (counts.get(cell) ?? 0) + 1)
  }
  const densest = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0] ?? ''
  const dense = (() => {
    const c = geohashDecode(densest)
    return { lat: c.lat, lon: c.lon }
  })()
  return { n: fixes.length, distances: [mean, median, dense].flatMap((e) => [haversine(e, HOME), haversine(e, WORK)]) }
}

/** Runs the week for one master key; returns svc's night and day statistics. */
async function week(
  masterKey: number,
  zones: readonly Zone[],
  stayZones: boolean,
): Promise<{ night: Stats; day: Stats }> {
  const { pipeline, remove } = gpsPipeline({ masterKey, zones, stayZones, seed: masterKey })
  const jitter = seededRandom(masterKey)
  const night: Zone[] = []
  const day: Zone[] = []
  try {
    for (let t = START; t < START + DAYS * 86_400_000; t += STEP_MS) {
      const at = truth(t)
      // ±25 m of indoor jitter.
      const lat = at.lat + ((jitter() - 0.5) * 50) / 111_195
      const lon = at.lon + ((jitter() - 0.5) * 50) / (111_195 * Math.cos((at.lat * Math.PI) / 180))
      const body = { _type: 'location', lat, lon, tst: Math.floor(t / 1000), batt: 80, tid: 'ap' }
      const result = await pipeline.process(TOPIC, Buffer.from(JSON.stringify(body)), t)
      for (const out of result.outputs) {
        if (out.domain !== 'svc') continue
        const data = dataOf(out)
        if (typeof data.lat !== 'number' || typeof data.lon !== 'number') continue
        const hour = ((t - START) % 86_400_000) / 3_600_000
        if (hour >= 22 || hour < 6) night.push({ lat: data.lat, lon: data.lon })
        else if (hour >= 9 && hour < 16) day.push({ lat: data.lat, lon: data.lon })
      }
    }
  } finally {
    remove()
  }
  return { night: estimate(night), day: estimate(day) }
}

const fmt = (s: Stats) => (s.n === 0 ? 'none' : `n=${s.n} min ${Math.round(Math.min(...s.distances))} m`)

describe('home inference from svc fixes (issue 13.1)', () => {
  it('after 7 days, mean, median and densest geohash-7 cell of night and day fixes are ≥ 400 m from home and work', {
    timeout: 30_000,
  }, async () => {
    const lines: string[] = []
    let openMin = Number.POSITIVE_INFINITY
    for (const key of KEYS) {
      for (const zones of [[], [HOME, WORK]] as const) {
        const { night, day } = await week(key, zones, true)
        lines.push(`key ${key} zones ${zones.length}: night ${fmt(night)}, day ${fmt(day)}`)
        for (const d of [...night.distances, ...day.distances]) expect(d).toBeGreaterThanOrEqual(400)
      }
      // Not vacuous: learned zones off and no configured zone (the behaviour the issue measured, with keyed noise).
      const open = await week(key, [], false)
      lines.push(`key ${key} stay zones off: night ${fmt(open.night)}, day ${fmt(open.day)}`)
      openMin = Math.min(openMin, ...open.night.distances, ...open.day.distances)
    }
    console.log(lines.join('\n'))
    // Measured with stay zones off: nearest estimate 171-1052 m over the four keys (two under 400 m); the issue
    // measured 58-202 m for the night mean with the old per-window noise.
    expect(openMin).toBeLessThan(400)
  })
})
