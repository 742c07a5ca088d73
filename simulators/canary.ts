/**
 * Canary identifiers: recognisable, unique strings planted in simulated traffic so a test can grep the gateway's
 * output for them. Every kind is fixed-width (or from a list with no prefix relations) so that no canary is a
 * substring of another device's canary, and each profile draws from its own range so a leak names its source.
 */

/** Per-profile device limit; keeps every canary family inside its own non-overlapping range. */
export const MAX_DEVICES_PER_PROFILE = 4096

export function checkDeviceCount(profile: string, count: number): void {
  if (!Number.isInteger(count) || count < 0 || count > MAX_DEVICES_PER_PROFILE) {
    throw new RangeError(`${profile}: device count must be an integer in 0..${MAX_DEVICES_PER_PROFILE}, got ${count}`)
  }
}

/** Upper-case hex of `base + index`, zero-padded to `width` digits (e.g. MAC suffix `CA11A7`). */
export function hexCanary(base: number, index: number, width: number): string {
  return (base + index).toString(16).toUpperCase().padStart(width, '0')
}

/** `CanaryNet-7F3A` style SSID; `base` differs per profile. */
export function ssidCanary(base: number, index: number): string {
  return `CanaryNet-${hexCanary(base, index, 4)}`
}

/** Locally administered MAC `ca:11:a7:PP:HH:LL` (PP = profile code), in the case the firmware prints it. */
export function bssidCanary(profileCode: number, index: number, upper: boolean): string {
  const tail = hexCanary(0, index + 1, 4)
  const bssid = `ca:11:a7:${hexCanary(profileCode, 0, 2)}:${tail.slice(0, 2)}:${tail.slice(2)}`
  return upper ? bssid.toUpperCase() : bssid.toLowerCase()
}

/** Private IPv4 whose last three octets are always three digits, so one address never prefixes another. */
export function ipCanary(profileOctet: number, index: number): string {
  return `10.${profileOctet}.${100 + Math.floor(index / 150)}.${100 + (index % 150)}`
}

/** The `index`-th name of a list, then `fallback(hex4)` once the list runs out. */
export function listCanary(names: readonly string[], index: number, fallback: (hex4: string) => string): string {
  return names[index] ?? fallback(hexCanary(0, index, 4))
}
