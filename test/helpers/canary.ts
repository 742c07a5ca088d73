import { createHash } from 'node:crypto'

/**
 * The forms in which a canary could leak (privacy.md P1): as written, case variants, hex, base64 (standard and
 * URL-safe), URL-encoded, and the MD5, SHA-1 and SHA-256 hex digests of the value and of its lower-case form.
 */
export function canaryForms(canary: string): string[] {
  const forms = new Set<string>()
  for (const value of [canary, canary.toLowerCase(), canary.toUpperCase()]) {
    forms.add(value)
    forms.add(Buffer.from(value).toString('hex'))
    forms.add(Buffer.from(value).toString('base64').replace(/=+$/, ''))
    forms.add(Buffer.from(value).toString('base64url'))
    forms.add(encodeURIComponent(value))
    for (const algorithm of ['md5', 'sha1', 'sha256']) forms.add(createHash(algorithm).update(value).digest('hex'))
  }
  // Separators are how MACs and names get rewritten most often: also look for the bare alphanumerics.
  const bare = canary.replace(/[^A-Za-z0-9]/g, '')
  if (bare.length >= 6) forms.add(bare.toLowerCase())
  return [...forms].filter((f) => f.length >= 4)
}

/** The canaries (and which form) found in `text`, compared case-insensitively. */
export function findCanaries(text: string, canaries: readonly string[]): string[] {
  const haystack = text.toLowerCase()
  const hits: string[] = []
  for (const canary of canaries) {
    for (const form of canaryForms(canary)) {
      if (haystack.includes(form.toLowerCase())) hits.push(`${canary} (as ${form})`)
    }
  }
  return hits
}
