import { defineOperator } from '#veil/sdk'
import { compileFieldMap, pathsSchema, readPaths, REMOVE } from '../fields.ts'
import { canonicalValue, vaultFor } from './vault.ts'

export { detokenize, eraseFromVault, forgetVaults, vaultFile } from './vault.ts'

const MAX_VALUE_LENGTH = 256

/**
 * Replaces a value (email, phone number, user name) with a random token and keeps the pair in the gateway's vault,
 * so the owner's service can link a user's records while the value itself never leaves (privacy.md §1 `tokenize`,
 * 2.1 "Email, phone: tokenize"). Unlike a hash, a token has no relation to its value at all, so no dictionary can
 * reverse it (A2); unlike hmac_pseudo it supports access requests (detokenize) and erasure (eraseFromVault).
 *
 * Values are canonicalised (trimmed, lower case) so `Ana@X.org` and `ana@x.org` share a token. Strings and
 * numbers, or arrays of them, are tokenised; anything else is removed.
 */
export default defineOperator({
  name: 'tokenize',
  description: 'Replaces values with random vault tokens (same value, same token); the vault supports erasure',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['paths'],
    properties: { paths: pathsSchema },
  },
  compile(config, env) {
    // Checked against configSchema by the loader: paths is required.
    const paths = readPaths(config as { readonly paths: readonly string[] })
    const vault = vaultFor(env.dataDir, env.domain)
    const tokenOf = (value: unknown): string | typeof REMOVE => {
      if (typeof value !== 'string' && (typeof value !== 'number' || !Number.isFinite(value))) return REMOVE
      const canonical = canonicalValue(value)
      if (canonical.length === 0 || canonical.length > MAX_VALUE_LENGTH) return REMOVE
      return vault.tokenFor(canonical)
    }
    return compileFieldMap(paths, (value) => {
      if (!Array.isArray(value)) return tokenOf(value)
      const out: string[] = []
      for (const item of value) {
        const token = tokenOf(item)
        if (token !== REMOVE) out.push(token)
      }
      return out
    })
  },
})
