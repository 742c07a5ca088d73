import { watch, type FSWatcher } from 'node:fs'
import { builtinOperators } from '../../filters/operators/index.ts'
import { builtinProfiles } from '../../filters/profiles/index.ts'
import { FileAuditLog, type AuditSink } from './audit/audit.ts'
import { AccessControl } from './auth/access.ts'
import { Authenticator } from './auth/authenticate.ts'
import { ConnectionGuard } from './auth/guard.ts'
import { CredentialStore } from './auth/store.ts'
import type { GatewayConfig } from './config/config.ts'
import { UpstreamBridge } from './forward/bridge.ts'
import { HttpEndpoint, type Readiness } from './http/server.ts'
import { DeviceBroker } from './ingest/broker.ts'
import { tlsContext } from './ingest/listeners.ts'
import { Keyring, loadOrCreateMasterKey, type DomainKeyPolicy } from './keys/keyring.ts'
import type { Category, Domain } from './model.ts'
import type { PolicyHolder } from './pipeline/filter.ts'
import type { PipelineResult } from './pipeline/envelope.ts'
import { Pipeline } from './pipeline/pipeline.ts'
import { loadPolicySet, type LoadPolicyOptions, type PolicySet } from './policy/load.ts'
import type { OperatorDefinition } from './policy/operator.ts'
import { Classifier } from './profiles/classifier.ts'
import type { ProfileDefinition } from './profiles/types.ts'
import type { Logger } from './telemetry/log.ts'
import { Metrics } from './telemetry/metrics.ts'

export interface GatewayParts {
  readonly profiles?: readonly ProfileDefinition[]
  readonly operators?: readonly OperatorDefinition[]
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
  readonly #policies: PolicyHolder
  readonly #policyOptions: LoadPolicyOptions
  readonly #audit: AuditSink
  readonly #logger: Logger
  readonly #credentials: CredentialStore
  readonly #observers: ProcessedObserver[] = []
  #watcher: FSWatcher | undefined
  #reloadTimer: NodeJS.Timeout | undefined
  #closing: Promise<void> | undefined

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
  }

  static async start(config: GatewayConfig, logger: Logger, parts: GatewayParts = {}): Promise<Gateway> {
    const classifier = new Classifier(parts.profiles ?? builtinProfiles)
    // Accounts, access rules and certificates first: a problem with any of them stops the start before a file is opened.
    const security = config.security
    const credentials = CredentialStore.open(config.dataDir)
    const access = new AccessControl(parts.profiles ?? builtinProfiles, classifier, security.localRawTopics)
    const guard = new ConnectionGuard(security.connections)
    const authenticator = new Authenticator({ store: credentials, access, guard, allowAnonymous: security.allowAnonymous })
    const tls = security.tls === undefined ? undefined : tlsContext(security.tls)
    const operators = parts.operators ?? builtinOperators
    const keyPolicies = new Map<Domain, DomainKeyPolicy>([...config.domains].map(([d, c]) => [d, { epochSeconds: c.epochSeconds }]))
    const keyring = new Keyring(loadOrCreateMasterKey(config.dataDir), keyPolicies)
    const policyOptions: LoadPolicyOptions = { classifier, operators, keyring, dataDir: config.dataDir, optIn: config.optIn, variables: config.variables }
    const policies: PolicyHolder = { current: loadPolicySet(config.policies, policyOptions) }
    const metrics = parts.metrics ?? new Metrics()
    metrics.setPolicyVersion(policies.current.version)
    const audit = parts.audit ?? new FileAuditLog(config.dataDir, { onError: () => metrics.auditWriteErrors.inc() })
    const pipeline = new Pipeline({ classifier, policies, keyring, metrics, audit, limits: config.limits })

    const bridges = new Map<Domain, UpstreamBridge>()
    for (const [domain, domainConfig] of config.domains) {
      if (domainConfig.upstream !== undefined) bridges.set(domain, new UpstreamBridge(domain, domainConfig.upstream, metrics, logger))
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
        security.reloadToken === undefined ? undefined : { token: security.reloadToken, reload: () => gateway?.reload() ?? { ok: false, error: 'starting' } },
      )
      broker = await DeviceBroker.start({
        host: config.listen.host,
        port: config.listen.port,
        flag: '--listen',
        logger,
        metrics,
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
          onPublishRefused: () => pipeline.recordDrop('ingest', 'unclassified', 'not_authorized', undefined, Date.now()),
        },
      })
    } catch (err) {
      await http?.close()
      await broker?.close()
      await Promise.all([...bridges.values()].map((b) => b.close()))
      await audit.close()
      throw err
    }
    gateway = new Gateway({ config, metrics, pipeline, broker, http, bridges, policies, policyOptions, audit, logger, credentials })
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
      logger.warn({ event: 'no_accounts' }, 'no broker accounts and anonymous clients are refused: add one with veil device add or veil user add')
    }
    return gateway
  }

  /** Raw publish -> pipeline -> local filtered topics and upstream bridges. Resolves when the device may be acked. */
  async #ingest(topic: string, payload: Buffer): Promise<void> {
    const result = await this.pipeline.process(topic, payload)
    for (const observer of this.#observers) observer(topic, payload.length, result)
    if (result.outputs.length === 0) return
    const category = result.category as Category
    const version = this.pipeline.policyVersion
    const local: Promise<void>[] = []
    for (const out of result.outputs) {
      local.push(this.broker.publishFiltered(out.topic, out.payload))
      this.metrics.forwardedHandle(category, out.domain, 'local').inc()
      const bridge = this.bridges.get(out.domain)
      if (bridge !== undefined) {
        const settled = (err?: Error): void => {
          if (err === undefined) this.metrics.forwardedHandle(category, out.domain, 'upstream').inc()
          else this.pipeline.recordDrop('forward', category, 'upstream_error', out.domain, Date.now())
        }
        if (bridge.enqueue(out.topic, out.payload, category, version, settled) !== 'queued') {
          this.pipeline.recordDrop('forward', category, 'queue_full', out.domain, Date.now())
        }
      }
    }
    await Promise.all(local)
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
      this.#logger.warn({ event: 'policy_watch_error', err: (err as Error).message }, 'policy directory watch failed; SIGHUP still reloads')
      return
    }
    this.#watcher.on('error', (err) => this.#logger.warn({ event: 'policy_watch_error', err: err.message }, 'policy directory watch failed; SIGHUP still reloads'))
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
      this.#logger.error({ event: 'policy_reload_rejected', policy: this.#policies.current.version, err: (err as Error).message }, 'policy reload rejected; the previous policies stay in force')
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
      this.#logger.error({ event: 'accounts_reload_rejected', err: (err as Error).message }, 'account reload rejected; the previous accounts stay in force')
      return { ok: false, error: (err as Error).message }
    }
    const revoked = this.broker.disconnectRevoked((name) => this.#credentials.get(name))
    this.#logger.info({ event: 'accounts_reloaded', accounts: this.#credentials.size, disconnected: revoked }, 'accounts reloaded')
    return this.reloadPolicies()
  }

  /** Stops accepting, lets upstreams acknowledge what they hold (bounded), then closes everything. Idempotent. */
  close(drainMs = 5_000): Promise<void> {
    this.#closing ??= (async () => {
      this.#watcher?.close()
      clearTimeout(this.#reloadTimer)
      this.broker.stopAccepting()
      await this.broker.close()
      await Promise.all([...this.bridges.values()].map((b) => b.drain(drainMs)))
      await Promise.all([...this.bridges.values()].map((b) => b.close()))
      await this.http.close()
      await this.#audit.close()
      this.#logger.info({ event: 'stopped' }, 'veil stopped')
    })()
    return this.#closing
  }
}

function readiness(broker: DeviceBroker, bridges: ReadonlyMap<Domain, UpstreamBridge>): Readiness {
  const checks: Record<string, boolean> = { listener: broker.address !== null }
  for (const [domain, bridge] of bridges) if (bridge.config.required) checks[`upstream_${domain}`] = bridge.connected
  return { ready: Object.values(checks).every(Boolean), checks }
}
