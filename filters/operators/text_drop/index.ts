import { TEXT_DROP_DEFAULT_KEYS as DEFAULT_KEYS, defineOperator, isPlainObject, MAX_NESTING } from '#veil/sdk'

// Re-exported for the operator's tests and docs; the list lives in the SDK because the core's string check reads it too.
export { DEFAULT_KEYS }

/** Deeper than any device payload; a deeper document is refused rather than walked. */

/**
 * Removes named keys wherever they occur (privacy.md §1 `text_drop`, §2.3): the results of biometric identification
 * are special-category data (GDPR 4(14), 9; EDPB19) and no downstream service needs them. Names are matched exactly
 * and case-sensitively, at any depth and inside arrays, so a key that moves into a new wrapper (`{"Info2":{…}}`)
 * is still found.
 */
export default defineOperator({
  name: 'text_drop',
  description: 'Removes the named keys (identification results, user-given names) at any depth',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      keys: {
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        items: { type: 'string', minLength: 1 },
        default: [...DEFAULT_KEYS],
      },
    },
  },
  compile(config) {
    // Checked against configSchema by the loader, its default (DEFAULT_KEYS) filled in; checked again below.
    const keys: unknown = (config as { readonly keys: readonly string[] }).keys
    if (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => typeof k === 'string' && k.length > 0)) {
      throw new Error('keys must be a non-empty list of key names')
    }
    const drop: ReadonlySet<string> = new Set(keys as string[])

    const walk = (value: unknown, depth: number): void => {
      if (typeof value !== 'object' || value === null) return
      if (depth > MAX_NESTING) throw new Error('text_drop: document nested too deeply')
      if (Array.isArray(value)) {
        for (const item of value) walk(item, depth + 1)
        return
      }
      // A key-based filter cannot see inside bytes, so bytes cannot pass it.
      if (!isPlainObject(value) || value instanceof Uint8Array)
        throw new Error('text_drop: the document is not JSON data')
      for (const key in value) {
        if (drop.has(key)) delete value[key]
        else walk(value[key], depth + 1)
      }
    }

    return (doc) => {
      walk(doc, 0)
      return doc
    }
  },
})
