/**
 * A person or vehicle that rests at home and now and then makes a round trip (walk or drive), for the GPS
 * simulators that report raw positions (gpsd, Traccar, canonical). Positions follow the clock passed in, so the
 * reported speed agrees with the distance between consecutive fixes.
 */
import type { Rng } from './random.ts'

export interface LatLon {
  readonly lat: number
  readonly lon: number
}

export interface Fix {
  readonly position: LatLon
  /** m/s along the route; 0 at home. */
  readonly speedMs: number
  /** Degrees, 0 = north, clockwise. */
  readonly course: number
  readonly moving: boolean
}

const METERS_PER_DEGREE = 111_320

/** City centres the simulated homes scatter around (a few km), so geohash and zone tests see realistic places. */
export const CITIES: readonly LatLon[] = [
  { lat: 52.52, lon: 13.405 },
  { lat: 48.137, lon: 11.575 },
  { lat: 53.551, lon: 9.993 },
  { lat: 50.938, lon: 6.96 },
]

/** Moves `distance` metres from `p` in direction `angle` (radians, 0 = north), flat-earth approximation. */
export function offset(p: LatLon, distance: number, angle: number): LatLon {
  return {
    lat: p.lat + (distance * Math.cos(angle)) / METERS_PER_DEGREE,
    lon: p.lon + (distance * Math.sin(angle)) / (METERS_PER_DEGREE * Math.cos((p.lat * Math.PI) / 180)),
  }
}

export function distanceM(a: LatLon, b: LatLon): number {
  const north = (b.lat - a.lat) * METERS_PER_DEGREE
  const east = (b.lon - a.lon) * METERS_PER_DEGREE * Math.cos((a.lat * Math.PI) / 180)
  return Math.hypot(north, east)
}

/** A route: points with the cumulative distance in metres at each, and how far along it the traveller is. */
export interface Route {
  readonly points: readonly LatLon[]
  readonly distances: readonly number[]
  readonly travelled: number
}

/** The interpolated position at the route's travelled distance, and the course of the leg it is on. */
export function positionAlong(route: Route): { position: LatLon; course: number } {
  let i = 1
  while (i < route.distances.length - 1 && (route.distances[i] ?? 0) < route.travelled) i++
  const from = route.points[i - 1] as LatLon
  const to = route.points[i] as LatLon
  const start = route.distances[i - 1] ?? 0
  const length = (route.distances[i] ?? start) - start
  const f = length > 0 ? Math.min(1, (route.travelled - start) / length) : 1
  return {
    position: { lat: from.lat + (to.lat - from.lat) * f, lon: from.lon + (to.lon - from.lon) * f },
    course: bearing(from, to),
  }
}

/** Course over ground in degrees, 0 = north, clockwise. */
export function bearing(a: LatLon, b: LatLon): number {
  const north = b.lat - a.lat
  const east = (b.lon - a.lon) * Math.cos((a.lat * Math.PI) / 180)
  return ((Math.atan2(east, north) * 180) / Math.PI + 360) % 360
}

interface Trip {
  readonly speedMs: number
  readonly points: readonly LatLon[]
  readonly distances: readonly number[]
  travelled: number
}

export interface RoamerOptions {
  /** Trip speeds in km/h: a walk, a drive (or a bike ride). */
  readonly speedsKmh: readonly [number, number]
  /** Furthest stop from home, metres. */
  readonly radiusM: number
  /** Fixes spent at home between trips. */
  readonly homeTicks: readonly [number, number]
}

export class Roamer {
  readonly home: LatLon
  readonly #rng: Rng
  readonly #opts: RoamerOptions
  #trip: Trip | undefined
  #homeTicksLeft: number
  #lastMs: number | undefined

  constructor(rng: Rng, opts: RoamerOptions) {
    this.#rng = rng
    this.#opts = opts
    const city = rng.pick(CITIES)
    this.home = { lat: city.lat + rng.float(-0.03, 0.03), lon: city.lon + rng.float(-0.05, 0.05) }
    this.#homeTicksLeft = rng.int(opts.homeTicks[0], opts.homeTicks[1])
  }

  /** The position at `nowMs` (non-decreasing). */
  advance(nowMs: number): Fix {
    const elapsedS = Math.max(0, nowMs - (this.#lastMs ?? nowMs)) / 1000
    this.#lastMs = Math.max(nowMs, this.#lastMs ?? nowMs)
    const trip = this.#trip
    if (trip === undefined) {
      if (--this.#homeTicksLeft > 0)
        return {
          position: offset(this.home, this.#rng.float(0, 8), this.#rng.float(0, 2 * Math.PI)),
          speedMs: 0,
          course: 0,
          moving: false,
        }
      this.#trip = this.#plan()
      return { position: this.home, speedMs: 0, course: 0, moving: true }
    }
    trip.travelled += trip.speedMs * elapsedS
    const total = trip.distances[trip.distances.length - 1] ?? 0
    if (trip.travelled >= total) {
      this.#trip = undefined
      this.#homeTicksLeft = this.#rng.int(this.#opts.homeTicks[0], this.#opts.homeTicks[1])
      return { position: this.home, speedMs: 0, course: 0, moving: false }
    }
    const { position, course } = positionAlong(trip)
    const speedMs = Math.max(0, trip.speedMs * this.#rng.float(0.85, 1.15))
    return { position, speedMs, course, moving: true }
  }

  #plan(): Trip {
    const stops = Array.from({ length: this.#rng.int(2, 4) }, () =>
      offset(this.home, this.#rng.float(200, this.#opts.radiusM), this.#rng.float(0, 2 * Math.PI)),
    )
    const points = [this.home, ...stops, this.home]
    const distances = [0]
    for (let i = 1; i < points.length; i++)
      distances.push((distances[i - 1] ?? 0) + distanceM(points[i - 1] as LatLon, points[i] as LatLon))
    const kmh = this.#rng.pick(this.#opts.speedsKmh) * this.#rng.float(0.8, 1.2)
    return { speedMs: kmh / 3.6, points, distances, travelled: 0 }
  }
}
