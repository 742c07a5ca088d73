/**
 * The states of an upstream bridge, reported by readiness (/ready's `upstreams.<domain>.state`) and the
 * upstream_connected gauge (1 only in `connected`), and every transition between them:
 * - connecting -> connected: CONNACK;
 * - connecting | connected -> backoff: the connection failed or was lost, and a retry is scheduled;
 * - backoff -> connecting: the retry timer fired;
 * - any -> closed: close(), or a connection lost while closing. Closed is final.
 */
export type BridgeState = 'connecting' | 'connected' | 'backoff' | 'closed'

export const BRIDGE_TRANSITIONS: Readonly<Record<BridgeState, readonly BridgeState[]>> = {
  connecting: ['connected', 'backoff', 'closed'],
  connected: ['backoff', 'closed'],
  backoff: ['connecting', 'closed'],
  closed: [],
}

/** Whether `to` may follow `from`; staying in a state is no transition and always may. */
export function mayTransition(from: BridgeState, to: BridgeState): boolean {
  return from === to || BRIDGE_TRANSITIONS[from].includes(to)
}
