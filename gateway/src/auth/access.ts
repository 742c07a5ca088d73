import { VeilError } from '../errors.ts'
import { FILTERED_ROOT, type Domain } from '../sdk/model.ts'
import type { Classifier } from '../streams/classifier.ts'
import type { ProfileDefinition } from '../sdk/profile.ts'
import type { Account } from './store.ts'

/**
 * Who a connected client is, with everything its checks need compiled at CONNECT: the per-message checks are
 * topic-level comparisons against a handful of filters.
 */
export type Principal =
  | { readonly role: 'anonymous' }
  | {
      readonly role: 'device'
      readonly deviceId: string
      readonly profile: string
      readonly scope: 'device' | 'hub'
      readonly publishes: readonly string[]
      readonly commands: readonly string[]
      /** The same filters split into levels once, for the per-message checks. */
      readonly publishLevels: readonly Levels[]
      readonly commandLevels: readonly Levels[]
    }
  | { readonly role: 'consumer'; readonly domain: Domain }
  | { readonly role: 'local' }
  | { readonly role: 'admin' }

export type Role = Principal['role']

/** An MQTT filter or topic split at `/`. */
type Levels = readonly string[]

/** What happens to one publish: run the pipeline, deliver as a command to devices, or refuse (ack and drop). */
export type PublishDecision = 'pipeline' | 'command' | 'refuse'

/**
 * Whether every topic `filter` can match is also matched by `allowed` (both MQTT filters; a topic is a filter
 * without wildcards). [MQTT-4.7.2-1]: a first-level wildcard never matches a `$` topic.
 */
export function covers(allowed: string, filter: string): boolean {
  return coversLevels(allowed.split('/'), filter.split('/'))
}

function coversLevels(a: Levels, f: Levels): boolean {
  for (let i = 0; ; i++) {
    const al = a[i]
    const fl = f[i]
    if (al === '#') return !(i === 0 && fl !== undefined && fl.startsWith('$'))
    if (al === undefined || fl === undefined) return al === undefined && fl === undefined
    if (fl === '#') return false
    if (al === '+') {
      if (i === 0 && fl.startsWith('$')) return false
      continue
    }
    if (fl === '+' || al !== fl) return false
  }
}

function coveredByAny(allowed: readonly Levels[], levels: Levels): boolean {
  for (const a of allowed) if (coversLevels(a, levels)) return true
  return false
}

const split = (filters: readonly string[]): Levels[] => filters.map((f) => f.split('/'))
const FILTERED_ALL = split([`${FILTERED_ROOT}/#`])
const SYS_ALL = split(['$SYS/#'])

/** A device id may name only whole topic levels: no wildcard, no empty level, no `$` start, no NUL. */
export function deviceIdProblem(id: string): string | undefined {
  if (id === '') return 'is empty'
  if (/[+#\u0000]/.test(id)) return 'contains +, # or NUL'
  if (id.startsWith('$')) return 'starts with $'
  if (id.split('/').some((l) => l === '')) return 'has an empty topic level'
  return undefined
}

/**
 * Replaces the `{id}` levels of a pattern by the levels of `id` (`owntracks/{id}/{id}` takes `alice/phone`), or by
 * `+` when `id` is undefined (a hub). Returns undefined when the id has another number of levels than the pattern.
 */
function bind(levels: readonly string[], id: string | undefined): string[] | undefined {
  const idLevels = id?.split('/')
  const slots = levels.filter((l) => l === '{id}').length
  if (idLevels !== undefined && slots > 0 && idLevels.length !== slots) return undefined
  let next = 0
  return levels.map((l) => (l === '{id}' ? (idLevels === undefined ? '+' : (idLevels[next++] as string)) : l))
}

/**
 * The topics a device account may publish, derived from its profile: for each topic pattern, the levels up to the
 * last `{id}` (bound to the account's id) and everything below (`tele/{id}/SENSOR` gives `tele/<id>/#`), so a
 * firmware's topics that no stream knows stay inside its own namespace and reach the pipeline, which drops them as
 * unknown. For a `device` profile a pattern without `{id}` (Shelly's shared `shellies/announce`, whose device id is
 * in the payload) is not granted: nothing would tie that message to the account. A `hub` profile (Frigate, whose
 * `frigate/events` names the camera in the payload; Zigbee2MQTT for every friendly name) gets its patterns with
 * `+` for `{id}`, fixed topics as they are.
 */
export function publishFilters(profile: ProfileDefinition, deviceId: string): string[] {
  const hub = profile.access?.scope === 'hub'
  const out = new Set<string>()
  for (const stream of Object.values(profile.streams)) {
    for (const pattern of stream.topics) {
      const levels = pattern.split('/')
      const last = levels.lastIndexOf('{id}')
      if (last < 0) {
        if (hub) out.add(pattern)
        continue
      }
      const bound = bind(levels.slice(0, last + 1), hub ? undefined : deviceId)
      if (bound === undefined) continue
      const prefix = bound.join('/')
      out.add(last === levels.length - 1 ? prefix : `${prefix}/#`)
    }
  }
  return [...out]
}

export function commandFilters(profile: ProfileDefinition, deviceId: string): string[] {
  const hub = profile.access?.scope === 'hub'
  const out: string[] = []
  for (const pattern of profile.access?.commands ?? []) {
    const bound = bind(pattern.split('/'), hub ? undefined : deviceId)
    if (bound !== undefined) out.push(bound.join('/'))
  }
  return out
}

/**
 * Every account's checks. One instance per gateway; the profiles are the ones the classifier knows, so a device
 * account is bound to exactly the topics the pipeline would take from it.
 */
export class AccessControl {
  readonly #profiles: ReadonlyMap<string, readonly ProfileDefinition[]>
  readonly #classifier: Classifier
  /** Raw topics that local and admin clients may read (`auth.localRawTopics`); empty: none. */
  readonly #rawRead: readonly Levels[]
  /** Every profile's command filters with `+` for `{id}`: what a local or admin publish on is a command, not telemetry. */
  readonly #allCommands: readonly Levels[]

  constructor(profiles: readonly ProfileDefinition[], classifier: Classifier, rawRead: readonly string[] = []) {
    const byName = new Map<string, ProfileDefinition[]>()
    for (const p of profiles) byName.set(p.name, [...(byName.get(p.name) ?? []), p])
    this.#profiles = byName
    this.#classifier = classifier
    for (const f of rawRead) {
      if (covers(f, `${FILTERED_ROOT}/x`) || f.startsWith('$'))
        throw new VeilError(
          'VEIL_ERR_CONFIG',
          `auth.localRawTopics: ${f} would match veil/ or $ topics; name raw device topics only`,
        )
    }
    this.#rawRead = split(rawRead)
    this.#allCommands = split(profiles.flatMap((p) => (p.access?.commands ?? []).map((c) => c.replaceAll('{id}', '+'))))
  }

  /** Checks that a device account can be created: a known profile and an id that fits its topics. */
  deviceProblem(deviceId: string, profile: string): string | undefined {
    const defs = this.#profiles.get(profile)
    if (defs === undefined) return `unknown profile ${profile}; known: ${[...this.#profiles.keys()].join(', ')}`
    const idProblem = deviceIdProblem(deviceId)
    if (idProblem !== undefined) return `device id ${idProblem}`
    const filters = defs.flatMap((d) => publishFilters(d, deviceId))
    if (filters.length === 0)
      return `device id ${deviceId} does not fit the topics of ${profile} (wrong number of / levels?)`
    // An id-first firmware (Shelly gen2: `<id>/events/rpc`) whose id is another profile's root would publish into
    // that profile's namespace.
    if (defs.every((d) => d.access?.scope !== 'hub')) {
      const root = deviceId.split('/')[0] as string
      for (const [name, others] of this.#profiles) {
        if (
          name !== profile &&
          others.some((o) => Object.values(o.streams).some((s) => s.topics.some((t) => t.split('/')[0] === root)))
        ) {
          return `device id ${deviceId} starts with ${root}, a topic root of profile ${name}`
        }
      }
    }
    return undefined
  }

  principalOf(account: Account): Principal | undefined {
    switch (account.role) {
      case 'device': {
        const defs = this.#profiles.get(account.profile ?? '')
        if (defs === undefined || this.deviceProblem(account.name, account.profile as string) !== undefined)
          return undefined
        const publishes = defs.flatMap((d) => publishFilters(d, account.name))
        const commands = defs.flatMap((d) => commandFilters(d, account.name))
        return {
          role: 'device',
          deviceId: account.name,
          profile: account.profile as string,
          scope: defs.some((d) => d.access?.scope === 'hub') ? 'hub' : 'device',
          publishes,
          commands,
          publishLevels: split(publishes),
          commandLevels: split(commands),
        }
      }
      case 'consumer':
        return account.domain === undefined ? undefined : { role: 'consumer', domain: account.domain }
      case 'local':
        return { role: 'local' }
      case 'admin':
        return { role: 'admin' }
    }
  }

  /**
   * A device publishes telemetry only inside its own namespace, and only what classifies (if it classifies at all)
   * as its own profile and, unless it is a hub, its own id. Local clients publish commands only; admin clients
   * commands or telemetry; consumers nothing. Anonymous clients (only with auth.allowAnonymous) behave as before
   * accounts existed: everything goes to the pipeline.
   */
  decidePublish(p: Principal, topic: string): PublishDecision {
    return p.role === 'anonymous' ? 'pipeline' : this.#decide(p, topic, topic.split('/'))
  }

  #decide(p: Principal, topic: string, levels: Levels): PublishDecision {
    switch (p.role) {
      case 'anonymous':
        return 'pipeline'
      case 'device': {
        if (!coveredByAny(p.publishLevels, levels)) return 'refuse'
        const c = this.#classifier.classify(topic)
        if (c === undefined) return 'pipeline'
        if (c.stream.profile !== p.profile) return 'refuse'
        if (p.scope === 'device' && !ownsDevice(p.deviceId, c.deviceId)) return 'refuse'
        return 'pipeline'
      }
      case 'consumer':
        return 'refuse'
      case 'local':
        return coveredByAny(this.#allCommands, levels) ? 'command' : 'refuse'
      case 'admin':
        return coveredByAny(this.#allCommands, levels) ? 'command' : 'pipeline'
    }
  }

  /** Once per SUBSCRIBE, not per message: plain string filters are fine here. */
  maySubscribe(p: Principal, filter: string): boolean {
    const f = filter.split('/')
    switch (p.role) {
      case 'anonymous':
        return coveredByAny(FILTERED_ALL, f)
      case 'device':
        return coveredByAny(p.commandLevels, f)
      case 'consumer':
        return covers(`${FILTERED_ROOT}/${p.domain}/#`, filter)
      case 'local':
        return coveredByAny(FILTERED_ALL, f) || coveredByAny(this.#rawRead, f)
      case 'admin':
        return coveredByAny(FILTERED_ALL, f) || coveredByAny(SYS_ALL, f) || coveredByAny(this.#rawRead, f)
    }
  }

  /**
   * Whether a packet a client published (not Veil's own output) may reach `receiver`. Devices receive commands from
   * local and admin clients on their command filters; local and admin clients receive raw device topics where the
   * configuration allows, and only what the publisher was allowed to send. Everything else stays inside.
   */
  mayReceiveRaw(receiver: Principal, publisher: Principal | undefined, topic: string): boolean {
    if (publisher === undefined) return false
    const levels = topic.split('/')
    const decision = publisher.role === 'anonymous' ? 'pipeline' : this.#decide(publisher, topic, levels)
    if (receiver.role === 'device') return decision === 'command' && coveredByAny(receiver.commandLevels, levels)
    if (receiver.role === 'local' || receiver.role === 'admin')
      return decision === 'pipeline' && coveredByAny(this.#rawRead, levels)
    return false
  }
}

/**
 * Whether a topic's device id is the account's device or one of its channels: a multi-channel device (Shelly 2.5
 * relay/1, Plus 2PM switch:1) publishes its channels as devices `<id>/<n>` of their own (profiles with two {id}).
 */
function ownsDevice(account: string, deviceId: string | undefined): boolean {
  if (deviceId === undefined) return false
  return (
    deviceId === account ||
    (deviceId.length > account.length && deviceId.startsWith(account) && deviceId.charCodeAt(account.length) === 0x2f)
  )
}
