import type { Category, Domain } from './model.ts'

/** Whose pseudonym, for whom and when: the epoch and its silent gap depend on the domain, category and device. */
export interface PseudonymScope {
  readonly domain: Domain
  readonly category: Category
  /** The raw device id (as the envelope carries it): it sets the device's rotation phase, never an output. */
  readonly deviceId: string
  readonly nowMs: number
}

/**
 * What an operator may ask of the gateway's keys: the master key never leaves the core, only values derived from it.
 * The core's keyring (gateway/src/keys/keyring.ts) implements it, with rotation and the silent gaps.
 */
export interface Keyring {
  /**
   * Secret, stable bytes for an operator's hidden parameters (a privacy zone's centre offset and radius): derived
   * from the master key, so they survive restarts and differ between gateways, yet are never stored or logged.
   */
  secretBytes(label: string, length: number): Buffer
  /**
   * The pseudonym of `id` (of the id space `kind`) in the scope's device epoch, or undefined inside the device's
   * silent gap around a rotation: the caller drops the copy.
   */
  pseudonym(scope: PseudonymScope, kind: string, id: string): string | undefined
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'

/** RFC 4648 base32, lower case, unpadded: the alphabet pseudonyms and tokens are written in. */
export function base32(bytes: Uint8Array): string {
  let out = ''
  let bits = 0
  let value = 0
  for (const byte of bytes) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31]
  return out
}
