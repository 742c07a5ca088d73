import { watch, type FSWatcher } from 'node:fs'
import { join } from 'node:path'
import { FileAuditLog, type AuditSink } from './audit/audit.ts'
import { profilesOf, type GatewayConfig } from './config/config.ts'
import { VeilError } from './errors.ts'
import { UpstreamBridge } from './forward/bridge.ts'
import { ReleaseSchedule, type HeldCopy } from './forward/release.ts'
import { HttpEndpoint, type Readiness } from './http/server.ts'
import { DeviceBroker } from './ingest/broker.ts'
import { packetLimitFor } from './ingest/limits.ts'
import { AccessControl } from './auth/access.ts'
import { Authenticator } from './auth/authenticate.ts'
import { ConnectionGuard } from './auth/guard.ts'
import { CredentialStore } from './auth/store.ts'
import { tlsContext } from './ingest/listeners.ts'
import { loadOrCreateMasterKey } from './keys/keyring.ts'
import { SubjectKeys } from './keys/subject-keys.ts'
import type { Category, Domain } from './sdk/model.ts'
import type { PolicyHolder } from './pipeline/filter.ts'
import type { Output, PipelineResult } from './pipeline/envelope.ts'
import { createPipeline, specOfConfig } from './pipeline/create.ts'
import { consentBlocksNow, purposeName, type ConsentBook } from './consent/book.ts'
import { LiveConsent, type ConsentReload } from './consent/live.ts'
import { finishErasures, forgetSubject, type ErasureResult } from './consent/forget.ts'
import { SubjectRegistry } from './consent/registry.ts'
import { offeredByDomain } from './consent/changes.ts'
import { apiHandler } from './http/api.ts'
import { createHmac } from 'node:crypto'
import type { Pipeline } from './pipeline/pipeline.ts'
import { loadPolicySet, secureRandom, type LoadPolicyOptions, type PolicySet } from './policy/load.ts'
import type { Plugins } from './plugins.ts'
import { Classifier } from './streams/classifier.ts'
import type { ProfileDefinition } from './sdk/profile.ts'
import type { Logger } from './telemetry/log.ts'
import { Metrics } from './telemetry/metrics.ts'

/** At shutdown, how long upstreams may take to acknowledge what is in flight (a stalled one never does). */
const IN_FLIGHT_GRACE_MS = 1000
/** The gateway's clock: scheduled operators' records and batched copies are released on this tick. */
const TICK_MS = 1000

export interface GatewayParts {
  readonly profiles?: readonly ProfileDefinition[]
  readonly metrics?: Metrics
  readonly audit?: AuditSink
}

/** Observes each processed raw message: its topic, size and fate (the demo prints them); never logged. */
export type ProcessedObserver = (topic: string, size: number, result: PipelineResult) => void

/**
 * Compiles profiles and policies, opens the device listener, the upstream bridges and the HTTP endpoint, and wires
 * the broker's raw publishes through the pipeline to the filtered namespace and the upstreams. Everything that
 * can be wrong with configuration or policies fails here, before the first connection is accepted.
 */
export class Gateway {
  readonly config: GatewayConfig
  readonly metrics: Metrics
  readonly pipeline: Pipeline
  readonly broker: DeviceBroker
  readonly http: HttpEndpoint
  readonly bridges: ReadonlyMap<Domain, UpstreamBridge>
  /** The subjects' queue keys: `forget(id)` crypto-shreds a subject's queued copies (veil subject forget). */
  readonly subjectKeys: SubjectKeys
  readonly #policies: PolicyHolder
  readonly #policyOptions: LoadPolicyOptions
  readonly #audit: AuditSink
  readonly #logger: Logger
  readonly #credentials: CredentialStore
  readonly #consent: LiveConsent
  readonly #profiles: readonly ProfileDefinition[]
  /** For keyed references to subjects in logs (subjectRef); never logged itself. */
  readonly #master: Buffer
  readonly #observers: ProcessedObserver[] = []
  #watcher: FSWatcher | undefined
  #reloadTimer: NodeJS.Timeout | undefined
  #closing: Promise<void> | undefined
  /** Raw publishes between the broker's hook and their last queue append: close() waits for them. */
  #ingesting = 0
  readonly #release = new ReleaseSchedule(secureRandom)
  #ticker: NodeJS.Timeout | undefined
  #ticking = false

  private constructor(init: {
    config: GatewayConfig
    metrics: Metrics
    pipeline: Pipeline
    broker: DeviceBroker
    http: HttpEndpoint
    bridges: Map<Domain, UpstreamBridge>
    policies: PolicyHolder
    policyOptions: LoadPolicyOptions
    audit: AuditSink
    logger: Logger
    credentials: CredentialStore
    consent: LiveConsent
    profiles: readonly ProfileDefinition[]
    master: Buffer
    subjectKeys: SubjectKeys
  }) {
    this.config = init.config
    this.metrics = init.metrics
    this.pipeline = init.pipeline
    this.broker = init.broker
    this.http = init.http
    this.bridges = init.bridges
    this.#policies = init.policies
    this.#policyOptions = init.policyOptions
    this.#audit = init.audit
    this.#logger = init.logger
    this.#credentials = init.credentials
    this.#consent = init.consent
    this.#profiles = init.profiles
    this.#master = init.master
    this.subjectKeys = init.subjectKeys
    // Not keeping the process alive: a gateway that is closed or never closed must not hang its host on a timer.
    this.#ticker = setInterval(() => void this.tick(), TICK_MS).unref()
  }

  /** `plugins`: the operators its policies may name (its profiles came with `config`, from resolveConfig). */
  static async start(
    config: GatewayConfig,
    plugins: Pick<Plugins, 'operators'>,
    logger: Logger,
    parts: GatewayParts = {},
  ): Promise<Gateway> {
    const profiles = parts.profiles ?? profilesOf(config)
    const classifier = new Classifier(profiles)
    // Accounts, access rules and certificates first: a problem with any of them stops the start before a file is opened.
    const security = config.security
    const credentials = CredentialStore.open(config.dataDir)
    const access = new AccessControl(profiles, classifier, security.localRawTopics)
    const guard = new ConnectionGuard(security.connections)
    const authenticator = new Authenticator({
      store: credentials,
      access,
      guard,
      allowAnonymous: security.allowAnonymous,
    })
    const tls = security.tls === undefined ? undefined : tlsContext(security.tls)
    const metrics = parts.metrics ?? new Metrics()
    const master = loadOrCreateMasterKey(config.dataDir)
    // Before any queue opens: a damaged key file stops the start, naming the file and the entry.
    const subjectKeys = SubjectKeys.open(config.dataDir, master)
    // An erasure a crash (or `veil subject forget`) left unfinished is finished before anything reads the queues.
    finishErasures(config.dataDir, { keys: subjectKeys, registry: SubjectRegistry.open(config.dataDir, profiles) })
    // Subjects and consent before the pipeline: a damaged registry or log stops the start, naming the file and line.
    const consent = new LiveConsent(config.dataDir, profiles, config)
    const { pipeline, policies, policyOptions, audit } = createPipeline({
      ...specOfConfig(config, plugins.operators),
      streams: classifier,
      consent: consent.holder,
      master,
      metrics,
      audit:
        parts.audit ??
        new FileAuditLog(config.dataDir, {
          retentionDays: config.audit.retentionDays,
          onError: () => metrics.auditWriteErrors.inc(),
        }),
    })
    metrics.setPolicyVersion(policies.current.version)

    const bridges = new Map<Domain, UpstreamBridge>()
    for (const [domain, domainConfig] of config.domains) {
      if (domainConfig.upstream === undefined) continue
      let bridge: UpstreamBridge
      try {
        bridge = new UpstreamBridge({
          domain,
          config: domainConfig.upstream,
          queue: config.queue,
          reconnect: config.reconnect,
          dataDir: config.dataDir,
          metrics,
          logger,
          onDrop: (category, reason, count) =>
            pipeline.recordDrop(
              'forward',
              category,
              reason === 'corrupt' ? 'queue_corrupt' : reason,
              domain,
              Date.now(),
              count,
            ),
          consentBlocks: (category, subject, purpose) =>
            consentBlocksNow(pipeline.consent.current, subject, domain, category, purpose),
          onDelivered: (category) => metrics.forwardedHandle(category, domain, 'upstream').inc(),
          subjectKeys,
        })
      } catch (err) {
        await Promise.all([...bridges.values()].map((b) => b.close(0)))
        await audit.close()
        throw new VeilError(
          'VEIL_ERR_CONFIG',
          `${join(config.dataDir, 'queue', domain)}: cannot open the upstream queue (--data-dir): ${(err as Error).message}`,
        )
      }
      bridges.set(domain, bridge)
    }

    let gateway: Gateway | undefined
    let broker: DeviceBroker | undefined
    let http: HttpEndpoint | undefined
    try {
      // HTTP first: once the device listener is up, the gateway object exists before any I/O callback can run,
      // so no publish is ever acknowledged before the pipeline can take it.
      http = await HttpEndpoint.start(
        config.http.host,
        config.http.port,
        metrics,
        () => (broker === undefined ? { ready: false, checks: { listener: false } } : readiness(broker, bridges)),
        security.reloadToken === undefined
          ? undefined
          : { token: security.reloadToken, reload: () => gateway?.reload() ?? { ok: false, error: 'starting' } },
        security.apiToken === undefined
          ? undefined
          : apiHandler({
              token: security.apiToken,
              dataDir: config.dataDir,
              profiles,
              defaults: config.optIn,
              offered: () => offeredByDomain(policies.current.documents.values()),
              changed: () => gateway?.reloadConsent(),
              forget: (name) => gateway?.forget(name) !== undefined,
              audit: (action, subjectId) =>
                logger.info(
                  { event: 'api_change', action, subject: subjectRef(master, subjectId) },
                  'consent changed through the API',
                ),
            }),
      )
      broker = await DeviceBroker.start({
        host: config.listen.host,
        port: config.listen.port,
        flag: '--listen',
        logger,
        metrics,
        limits: { inflightPerClient: config.limits.inflightPerClient, packetBytes: packetLimitFor(config.limits) },
        onPacketRefused: (reason) => pipeline.recordDrop('ingest', 'unclassified', reason, undefined, Date.now()),
        onRawPublish: (topic, payload) => {
          if (gateway !== undefined) return gateway.#ingest(topic, payload)
          pipeline.recordDrop('ingest', 'unclassified', 'internal_error', undefined, Date.now())
          return Promise.resolve()
        },
        security: {
          authenticator,
          access,
          guard,
          listeners: security.listeners,
          tls,
          onPublishRefused: () =>
            pipeline.recordDrop('ingest', 'unclassified', 'not_authorized', undefined, Date.now()),
        },
      })
    } catch (err) {
      await http?.close()
      await broker?.close()
      await Promise.all([...bridges.values()].map((b) => b.close()))
      await audit.close()
      throw err
    }
    gateway = new Gateway({
      config,
      metrics,
      pipeline,
      broker,
      http,
      bridges,
      policies,
      policyOptions,
      audit,
      logger,
      credentials,
      consent,
      subjectKeys,
      profiles,
      master,
    })
    logger.info(
      {
        event: 'started',
        listen: broker.address,
        listeners: broker.addresses.slice(1).map((l) => ({ kind: l.kind, port: l.address.port })),
        http: http.address,
        policy: policies.current.version,
        upstreams: [...bridges.keys()],
        accounts: credentials.size,
        allowAnonymous: security.allowAnonymous,
      },
      'veil started',
    )
    if (!security.allowAnonymous && credentials.size === 0) {
      logger.warn(
        { event: 'no_accounts' },
        'no broker accounts and anonymous clients are refused: add one with veil device add or veil user add',
      )
    }
    return gateway
  }

  /**
   * Raw publish -> pipeline -> local filtered topics and upstream queues. Resolves when the device may be acked:
   * after every upstream copy is in its durable queue, so an acknowledged message survives a crash.
   */
  async #ingest(topic: string, payload: Buffer): Promise<void> {
    this.#ingesting++
    try {
      // Flow control: while a connected upstream is far behind, wait here (bounded: see UpstreamBridge.catchUp).
      for (const bridge of this.bridges.values()) {
        const behind = bridge.catchUp()
        if (behind !== undefined) await behind
      }
      const result = await this.pipeline.process(topic, payload)
      for (const observer of this.#observers) observer(topic, payload.length, result)
      const outputs = result.outputs
      if (outputs.length === 0) return
      const category = result.category as Category
      const version = this.pipeline.policyVersion
      let batched = 0
      for (const out of outputs) if (out.releaseMs !== 0) batched++
      // Most copies leave at once: no second array for them.
      if (batched === 0) return await this.#forward(outputs, category, version)
      const now: Output[] = []
      const nowMs = Date.now()
      for (const out of outputs) {
        if (out.releaseMs === 0) now.push(out)
        else if (!this.#release.hold({ out, category, version }, nowMs))
          this.pipeline.recordDrop('forward', category, 'release_full', out.domain, nowMs)
      }
      if (now.length > 0) await this.#forward(now, category, version)
    } finally {
      this.#ingesting--
    }
  }

  /**
   * Local filtered topics and upstream queues for copies of one category. Resolves when every upstream copy is in
   * its durable queue (what a device's PUBACK waits for); a failed append is counted and audited as a drop.
   */
  async #forward(outputs: readonly Output[], category: Category, version: string, waited = false): Promise<void> {
    // Local publishes and queue batches (one promise shared by every message appended in the same turn).
    // `appendedTo[i]` names the domain of a queue wait, to count its drop if it failed.
    const pending: Promise<Error | undefined | void>[] = []
    let appendedTo: (Domain | undefined)[] | undefined
    for (let i = 0; i < outputs.length; i++) {
      const out = outputs[i] as Output
      if (waited) {
        // Held for its release: the consent may have changed since it was filtered.
        const blocked = consentBlocksNow(
          this.pipeline.consent.current,
          out.subject.id,
          out.domain,
          category,
          purposeName(out.purposeBit),
        )
        if (blocked !== undefined) {
          this.pipeline.recordDrop('forward', category, blocked, out.domain, Date.now())
          continue
        }
      }
      // Counted only when a copy was published locally: with no local subscriber there is none.
      const local = this.broker.publishFiltered(out.topic, out.payload, out.domain)
      if (local !== undefined) {
        pending.push(local)
        this.metrics.forwardedHandle(category, out.domain, 'local').inc()
      }
      const bridge = this.bridges.get(out.domain)
      if (bridge === undefined) continue
      const queued = bridge.enqueueBatched(
        out.topic,
        out.payload,
        category,
        version,
        out.contentType,
        out.subject.id,
        purposeName(out.purposeBit),
      )
      if (typeof queued === 'string') {
        this.pipeline.recordDrop('forward', category, queued, out.domain, Date.now())
        continue
      }
      appendedTo ??= []
      appendedTo[pending.length] = out.domain
      pending.push(queued)
    }
    if (pending.length === 0) return
    if (pending.length === 1) {
      const err = await pending[0]
      if (err instanceof Error && appendedTo !== undefined)
        this.pipeline.recordDrop('forward', category, 'queue_error', appendedTo[0] as Domain, Date.now())
      return
    }
    const settled = await Promise.all(pending)
    if (appendedTo === undefined) return
    for (let i = 0; i < settled.length; i++) {
      const domain = appendedTo[i]
      if (domain !== undefined && settled[i] instanceof Error)
        this.pipeline.recordDrop('forward', category, 'queue_error', domain, Date.now())
    }
  }

  /**
   * One beat of the gateway's clock (every second): records that scheduled operators release now (energy windows,
   * aggregates) and batches whose release has come. Never overlaps itself; errors are counted, never thrown.
   */
  async tick(nowMs: number = Date.now()): Promise<void> {
    if (this.#ticking || this.#closing !== undefined) return
    this.#ticking = true
    this.#ingesting++
    try {
      for (const result of await this.pipeline.tick(nowMs)) {
        if (result.outputs.length > 0)
          await this.#forward(result.outputs, result.category as Category, this.pipeline.policyVersion)
      }
      await this.#forwardHeld(this.#release.due(nowMs))
    } catch (err) {
      this.#logger.error({ event: 'tick_error', err: (err as Error).message }, 'release tick failed')
    } finally {
      this.#ingesting--
      this.#ticking = false
    }
  }

  async #forwardHeld(copies: readonly HeldCopy[]): Promise<void> {
    // In order, each category's run as one call: their appends share the queue's batch.
    let start = 0
    for (let i = 1; i <= copies.length; i++) {
      const first = copies[start] as HeldCopy
      if (
        i < copies.length &&
        (copies[i] as HeldCopy).category === first.category &&
        (copies[i] as HeldCopy).version === first.version
      )
        continue
      await this.#forward(
        copies.slice(start, i).map((c) => c.out),
        first.category,
        first.version,
        true,
      )
      start = i
    }
  }

  /** Copies waiting for their batch's release. */
  get held(): number {
    return this.#release.held
  }

  /**
   * Reloads when a file in the policy directory changes. Editors write in several steps (truncate, write, rename),
   * so changes are debounced; the reload itself validates the whole set before swapping it in.
   */
  watchPolicies(debounceMs = 300): void {
    if (this.#watcher !== undefined) return
    try {
      this.#watcher = watch(this.config.policies, () => {
        clearTimeout(this.#reloadTimer)
        this.#reloadTimer = setTimeout(() => this.reloadPolicies(), debounceMs)
      })
    } catch (err) {
      // fs.watch throws synchronously when the inotify limit is reached: reloading on SIGHUP still works.
      this.#logger.warn(
        { event: 'policy_watch_error', err: (err as Error).message },
        'policy directory watch failed; SIGHUP still reloads',
      )
      return
    }
    this.#watcher.on('error', (err) =>
      this.#logger.warn(
        { event: 'policy_watch_error', err: err.message },
        'policy directory watch failed; SIGHUP still reloads',
      ),
    )
  }

  /**
   * Applies a change of subjects.json or consent.jsonl (veil subject, veil consent) as soon as the file is written:
   * the next message is filtered under it. A damaged file leaves the last good state in force.
   */
  watchConsent(debounceMs?: number): void {
    try {
      this.#consent.watch(
        (result) => this.#consentReloaded(result),
        debounceMs,
        () => this.finishErasures(),
      )
    } catch (err) {
      this.#logger.warn(
        { event: 'consent_watch_error', err: (err as Error).message },
        'data directory watch failed; SIGHUP still reloads consent',
      )
    }
  }

  /** Compiles subjects and consent again (SIGHUP, the watch, the API); a damaged file keeps the last good state. */
  reloadConsent(): ConsentReload {
    const result = this.#consent.reload()
    this.#consentReloaded(result)
    return result
  }

  #consentReloaded(result: ConsentReload): void {
    // Counts only: a subject's name never reaches a log, and a registry problem can quote one.
    if (result.ok)
      this.#logger.info(
        { event: 'consent_reloaded', subjects: result.subjects, records: result.records },
        'subjects and consent reloaded',
      )
    else
      this.#logger.error(
        { event: 'consent_reload_rejected' },
        'subjects or consent file damaged; the last good consent stays in force (veil subject list shows the problem)',
      )
  }

  /**
   * Forgets a subject in one step (consent/forget.ts): its queued copies become unreadable (their data keys are
   * destroyed), every operator's state of its devices is deleted, and its devices belong to the household from the
   * next message. Undefined for an unknown subject.
   */
  forget(name: string): ErasureResult | undefined {
    const registry = SubjectRegistry.open(this.config.dataDir, this.#profiles)
    const subject = registry.get(name)
    if (subject === undefined) return undefined
    const result = forgetSubject(this.config.dataDir, subject, { keys: this.subjectKeys, registry })
    this.reloadConsent()
    this.#logger.info(
      { event: 'subject_forgotten', subject: subjectRef(this.#master, subject.id), stateEntries: result.stateEntries },
      'a subject was forgotten',
    )
    return result
  }

  /** Finishes the erasures `veil subject forget` left in the journal (the operators' state lives here only). */
  finishErasures(): void {
    try {
      const done = finishErasures(this.config.dataDir, {
        keys: this.subjectKeys,
        registry: SubjectRegistry.open(this.config.dataDir, this.#profiles),
      })
      if (done.length === 0) return
      this.reloadConsent()
      for (const id of done)
        this.#logger.info(
          { event: 'subject_forgotten', subject: subjectRef(this.#master, id) },
          'a subject was forgotten',
        )
    } catch (err) {
      this.#logger.error(
        { event: 'erasure_failed', err: (err as Error).message },
        'an erasure could not be finished; it stays in the journal',
      )
    }
  }

  /** The consent in force. */
  get consent(): ConsentBook {
    return this.#consent.holder.current
  }

  onProcessed(observer: ProcessedObserver): void {
    this.#observers.push(observer)
  }

  get policyVersion(): string {
    return this.#policies.current.version
  }

  readiness(): Readiness {
    return readiness(this.broker, this.bridges)
  }

  /**
   * Loads the policy directory again and swaps it in only if the whole set is valid; a bad set leaves the running
   * one in force and the error says why.
   */
  reloadPolicies(): { ok: true; version: string } | { ok: false; error: string } {
    try {
      const next: PolicySet = loadPolicySet(this.config.policies, this.#policyOptions)
      // Stateful operators (noise caches, windows, rate limits) start empty when recompiled: an unchanged set
      // (a touch, an editor's swap file) must not hand out fresh noise samples or a fresh fix budget.
      if (next.version === this.#policies.current.version) return { ok: true, version: next.version }
      this.#policies.current = next
      this.metrics.setPolicyVersion(next.version)
      this.metrics.policyReloads.labels('ok').inc()
      this.#logger.info({ event: 'policy_reloaded', policy: next.version }, 'policies reloaded')
      return { ok: true, version: next.version }
    } catch (err) {
      this.metrics.policyReloads.labels('rejected').inc()
      this.#logger.error(
        { event: 'policy_reload_rejected', policy: this.#policies.current.version, err: (err as Error).message },
        'policy reload rejected; the previous policies stay in force',
      )
      return { ok: false, error: (err as Error).message }
    }
  }

  /**
   * SIGHUP and POST /-/reload: the policies (as reloadPolicies) and the broker accounts, so `veil device add` takes
   * effect without a restart. Clients of a removed or replaced account are disconnected.
   */
  reload(): { ok: true; version: string } | { ok: false; error: string } {
    try {
      this.#credentials.reload()
    } catch (err) {
      this.#logger.error(
        { event: 'accounts_reload_rejected', err: (err as Error).message },
        'account reload rejected; the previous accounts stay in force',
      )
      return { ok: false, error: (err as Error).message }
    }
    this.reloadConsent()
    const revoked = this.broker.disconnectRevoked((name) => this.#credentials.get(name))
    this.#logger.info(
      { event: 'accounts_reloaded', accounts: this.#credentials.size, disconnected: revoked },
      'accounts reloaded',
    )
    return this.reloadPolicies()
  }

  /**
   * Stops accepting, closes device connections, waits (bounded) for messages already in the pipeline to reach their
   * durable queues, lets upstreams acknowledge what is in flight (bounded), then closes the queues (cursor written,
   * files synced) and everything else. The backlog stays on disk for the next start. Idempotent.
   */
  close(drainMs = 5_000): Promise<void> {
    this.#closing ??= (async () => {
      this.#watcher?.close()
      this.#consent.close()
      clearTimeout(this.#reloadTimer)
      clearInterval(this.#ticker)
      this.broker.stopAccepting()
      // Messages held by flow control go on into the queues now, within the drain below.
      for (const bridge of this.bridges.values()) bridge.stopPacing()
      await this.broker.close()
      const deadline = Date.now() + drainMs
      while (this.#ingesting > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
      if (this.#ingesting > 0)
        this.#logger.warn(
          { event: 'shutdown_drain_timeout', inPipeline: this.#ingesting },
          'messages still in the pipeline at shutdown',
        )
      // Batched copies go to the durable queues now rather than be lost: they leave early, once, at shutdown.
      const held = this.#release.drain()
      if (held.length > 0) await this.#forwardHeld(held)
      // In-flight messages are safe on disk either way; waiting for their PUBACKs only spares duplicates later.
      const graceMs = Math.min(IN_FLIGHT_GRACE_MS, Math.max(0, deadline - Date.now()))
      await Promise.all([...this.bridges.values()].map((b) => b.close(graceMs)))
      await this.http.close()
      await this.#audit.close()
      this.#logger.info({ event: 'stopped' }, 'veil stopped')
    })()
    return this.#closing
  }
}

/**
 * Ready: the listener is up and every required upstream is connected. Each upstream's state and queue are shown
 * either way: a gateway that buffers to disk keeps accepting while an upstream is down, and the operator sees how
 * much waits and for how long.
 */
function readiness(broker: DeviceBroker, bridges: ReadonlyMap<Domain, UpstreamBridge>): Readiness {
  const checks: Record<string, boolean> = { listener: broker.address !== null }
  for (const [domain, bridge] of bridges) if (bridge.config.required) checks[`upstream_${domain}`] = bridge.connected
  const ready = Object.values(checks).every(Boolean)
  if (bridges.size === 0) return { ready, checks }
  const upstreams: NonNullable<Readiness['upstreams']> = {}
  for (const [domain, b] of bridges) {
    upstreams[domain] = {
      state: b.state,
      required: b.config.required,
      queued: b.pending,
      queuedBytes: b.queuedBytes,
      oldestSeconds: Math.round(b.oldestAgeMs / 1000),
      inflight: b.inflight,
    }
  }
  return { ready, checks, upstreams }
}

/**
 * How a log or audit line names a subject: a keyed hash of its id (16 hex digits), stable for the gateway's master
 * key, never the name, and not reversible without the key.
 */
export function subjectRef(master: Buffer, subjectId: string): string {
  return createHmac('sha256', master).update('veil/audit/subject\u0000').update(subjectId).digest('hex').slice(0, 16)
}
