import { defineOperator, type OperatorContext } from '#veil/sdk'
import { compileFieldMap, pathsSchema, readPaths, REMOVE } from '../fields.ts'

/** Longer values are not ids but text, which has no place in a pseudonymised field. */
const MAX_ID_LENGTH = 256

/** The settings as the loader hands them over: checked against configSchema. */
interface Settings {
  readonly paths: readonly string[]
  readonly kind?: string
}

/**
 * Replaces identifiers (serials, IMEIs, MACs, camera names, phone numbers) with keyed pseudonyms:
 * base32(trunc128(HMAC-SHA256(K[domain, epoch], kind | canonical(id)))). A plain hash of a low-entropy id is
 * reversed by enumeration (a MAC's 2^24 candidates per OUI, an IMEI's 10^6 per TAC, a country's phone numbers:
 * privacy.md A1, A2); without the gateway's master key the enumeration finds nothing. The key differs per recipient
 * domain and, where the keyring rotates it (by default ANA and 3P: 30 d, GPS: 1 d), per epoch of the message's
 * device, so domains cannot join on the pseudonym, old and new pseudonyms cannot be linked, and a payload id
 * switches at the same instant as the device's topic pseudonym.
 *
 * The canonical id is trimmed and lower-cased, so `AA:BB` and `aa:bb ` give one pseudonym. Numbers are ids too
 * (an IMEI sent as a number); anything else (objects, booleans, null, empty strings) is removed.
 */
export default defineOperator({
  name: 'hmac_pseudo',
  description: 'Replaces ids (strings or numbers, or arrays of them) with keyed, per-domain, per-epoch pseudonyms',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['paths'],
    properties: {
      paths: pathsSchema,
      kind: {
        type: 'string',
        minLength: 1,
        maxLength: 64,
        description:
          'separates id spaces (a camera name and a user name that are equal get different pseudonyms); default: the category',
      },
    },
  },
  compile(config, env) {
    const options = config as Settings
    const paths = readPaths(options)
    // The default depends on the stream's category, which a schema default cannot name.
    const kind = options.kind ?? env.category
    if (typeof kind !== 'string' || kind === '') throw new Error('kind must be a non-empty string')
    const pseudonymOf = (value: unknown, ctx: OperatorContext): string | typeof REMOVE => {
      let text: string
      if (typeof value === 'string') text = value
      else if (typeof value === 'number' && Number.isFinite(value)) text = String(value)
      else return REMOVE
      const id = text.trim().toLowerCase()
      if (id.length === 0 || id.length > MAX_ID_LENGTH) return REMOVE
      // Under the device's epoch, so the payload's pseudonyms switch with the topic's; none inside the device's
      // rotation gap, where the route stage drops the copy anyway.
      return ctx.keyring.pseudonym(ctx, kind, id) ?? REMOVE
    }
    return compileFieldMap(paths, (value, ctx) => {
      if (!Array.isArray(value)) return pseudonymOf(value, ctx)
      const out: string[] = []
      for (const item of value) {
        const p = pseudonymOf(item, ctx)
        if (p !== REMOVE) out.push(p)
      }
      return out
    })
  },
})
