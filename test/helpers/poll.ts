export interface UntilOptions {
  /** How long to keep polling before giving up; defaults to 5 s, which on a busy 2-core machine is still generous. */
  timeoutMs?: number
  /** What the test waited for, so a timeout names the condition rather than a line number. */
  what: string
  /** Between checks; 10 ms keeps the loop cheap without adding latency a test would notice. */
  intervalMs?: number
}

/**
 * Resolves once `check` holds, polling; rejects after `timeoutMs` with a message naming what it waited for.
 * The one poll-until of the test suite: a condition that is already true costs no wait, so callers never need a fixed
 * sleep to let something arrive.
 */
export async function until(check: () => boolean | Promise<boolean>, options: UntilOptions): Promise<void> {
  const { timeoutMs = 5000, what, intervalMs = 10 } = options
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}
