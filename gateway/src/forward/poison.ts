import type { Category } from '../sdk/model.ts'

/**
 * Connections in a row that an upstream closed with the same message alone in flight and nothing acknowledged,
 * before that message is taken for the cause and dropped. A broker refuses some messages by closing the connection
 * (mosquitto past its max_packet_size, aedes when its authorizePublish fails, MQTT 3.1.1 having no PUBACK code to
 * say no): sent again from the cursor on every reconnect, such a message would block its queue for good.
 */
export const MAX_DELIVERY_ATTEMPTS = 5

/** What a connection lost with messages in flight and none acknowledged means (see PoisonDetector.lostUnacknowledged). */
export type LossVerdict =
  /** Nothing to blame yet: probing starts (or continues) with one message at a time. */
  | { readonly kind: 'probe' }
  /** The message alone in flight is to blame: drop it so the queue moves on. */
  | { readonly kind: 'drop'; readonly category: Category; readonly seq: number; readonly attempts: number }
  /**
   * A second message in a row would be dropped: the upstream refuses everything and the queue holds. `first` the
   * first time since the upstream last acknowledged one, so it is logged once.
   */
  | { readonly kind: 'refuses_everything'; readonly first: boolean }

/**
 * Tells a message an upstream closes the connection on (a poison message) from an upstream that is down. After a
 * connection was lost with messages in flight and none acknowledged, the bridge probes: it sends one message at a
 * time until one is acknowledged, so the message that closes the connection can be told apart; the
 * MAX_DELIVERY_ATTEMPTS-th loss in a row with the same one alone in flight drops it (counted and audited as
 * upstream_error, like a message refused with a PUBACK code), unless the previous suspect was dropped and nothing
 * has been acknowledged since: two messages in a row that the upstream will not take mean the upstream refuses
 * everything (an ACL that disconnects, a broker that crashes after CONNACK), and the queue holds until it takes one.
 */
export class PoisonDetector {
  #probing = false
  /** The message alone in flight while probing, and how many connections in a row were lost with it. */
  #suspect: { category: Category; seq: number; strikes: number } | undefined
  #droppedSinceAck = false
  #refusingReported = false

  /** While probing the in-flight window is one message, and the reconnect backoff does not start over. */
  get probing(): boolean {
    return this.#probing
  }

  /** The in-flight window for a connection whose full window is `maxPending`. */
  window(maxPending: number): number {
    return this.#probing ? 1 : maxPending
  }

  /** A message handed to the upstream; while probing it is the one in flight. */
  sending(category: Category, seq: number): void {
    if (!this.#probing) return
    const same = this.#suspect?.category === category && this.#suspect.seq === seq
    if (!same) this.#suspect = { category, seq, strikes: 1 }
  }

  /** The upstream acknowledged a message: it takes messages again, back to the full window. */
  acknowledged(): void {
    this.#probing = false
    this.#suspect = undefined
    this.#droppedSinceAck = false
    this.#refusingReported = false
  }

  /** A connection was lost with messages in flight and none acknowledged on it. */
  lostUnacknowledged(): LossVerdict {
    const suspect = this.#suspect
    if (!this.#probing || suspect === undefined) {
      this.#probing = true
      return { kind: 'probe' }
    }
    suspect.strikes++
    if (suspect.strikes < MAX_DELIVERY_ATTEMPTS) return { kind: 'probe' }
    if (this.#droppedSinceAck) {
      const first = !this.#refusingReported
      this.#refusingReported = true
      return { kind: 'refuses_everything', first }
    }
    this.#droppedSinceAck = true
    this.#suspect = undefined
    return { kind: 'drop', category: suspect.category, seq: suspect.seq, attempts: suspect.strikes }
  }
}
