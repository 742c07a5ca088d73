import { until } from './poll.ts'

/**
 * Proves an absence without a fixed sleep: publish a message Veil forwards at once, on the same path and from the same
 * client as the forbidden one (MQTT keeps order per client and per subscription), and wait for it. Once it has arrived,
 * anything forbidden published before it would have arrived too, so the caller asserts on what it collected.
 */
export async function throughSentinel(
  publish: () => Promise<unknown>,
  arrived: () => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  await publish()
  await until(arrived, { timeoutMs, what: `the sentinel: ${what}` })
}
