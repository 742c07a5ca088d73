/**
 * The gateway clock of scheduled operators (energy_window, aggregate): aligned windows, and the delay after a
 * window's end at which its record leaves. The delay is drawn per record from the loader's CSPRNG, so the moment a
 * record arrives says when the window ended and nothing about the device; it is short, so the record is not late.
 */

/** Records leave 5 to 30 s after their window ends: long enough that no release lines up with a device's report at the boundary, short enough to be timely. */
export const MIN_RELEASE_DELAY_MS = 5_000
export const MAX_RELEASE_DELAY_MS = 30_000

export function releaseDelayMs(random: () => number): number {
  return MIN_RELEASE_DELAY_MS + Math.floor(random() * (MAX_RELEASE_DELAY_MS - MIN_RELEASE_DELAY_MS))
}

/** Windows that divide a day start at the same clock times every day (xx:00, xx:15), whatever the epoch. */
export function checkWindow(windowS: unknown): number {
  if (typeof windowS !== 'number' || !Number.isSafeInteger(windowS) || windowS < 60 || 86_400 % windowS !== 0) {
    throw new Error(`window_s must be an integer ≥ 60 that divides 86400, got ${String(windowS)}`)
  }
  return windowS
}

/** Epoch seconds of the window that holds `nowMs`. */
export function windowStart(nowMs: number, windowS: number): number {
  return Math.floor(nowMs / 1000 / windowS) * windowS
}

/** A closed window's record, waiting for its release. */
export interface Due<T> {
  readonly record: T
  readonly atMs: number
}

/** Moves the records of `due` whose time has come (they are in time order) to `out`, for `deviceId`. */
export function releaseDue<T>(
  due: Due<T>[],
  nowMs: number,
  deviceId: string,
  out: { deviceId: string; doc: unknown }[],
): void {
  let n = 0
  while (n < due.length && (due[n] as Due<T>).atMs <= nowMs) {
    out.push({ deviceId, doc: (due[n] as Due<T>).record })
    n++
  }
  if (n > 0) due.splice(0, n)
}

export const NOTHING_DUE: readonly never[] = Object.freeze([])
