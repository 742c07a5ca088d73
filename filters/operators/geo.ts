/**
 * What the location operators (geo_ind, privacy_zone, geohash_snap) share: the spherical Earth they measure on and
 * how they read a fix from a message, failing closed.
 */
import type { Accessor } from '#veil/sdk'

/** Mean Earth radius (IUGG), metres. */
export const EARTH_RADIUS_M = 6_371_008.8
/** Radians per degree. */
export const RAD = Math.PI / 180
/** Metres per degree of latitude (and of longitude on the equator) on the mean sphere. */
export const M_PER_DEG = RAD * EARTH_RADIUS_M

/**
 * The fix at the `lat`/`lon` paths of `doc`, or undefined when there is nothing to process: neither path is set, or
 * the fix is not a pair of numbers within ±90/±180, in which case both paths have been removed (fail closed: a
 * coordinate an operator cannot handle is never forwarded precise).
 */
export function readFix(doc: unknown, lat: Accessor, lon: Accessor): { lat: number; lon: number } | undefined {
  const y = lat.get(doc)
  const x = lon.get(doc)
  if (y === undefined && x === undefined) return undefined
  if (typeof y !== 'number' || typeof x !== 'number' || !(y >= -90 && y <= 90) || !(x >= -180 && x <= 180)) {
    lat.delete(doc)
    lon.delete(doc)
    return undefined
  }
  return { lat: y, lon: x }
}
