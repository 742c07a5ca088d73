import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ajv, type ValidateFunction } from 'ajv'
import configSchema from '../../../schemas/gateway.config.schema.json' with { type: 'json' }
import { DEFAULT_RECONNECT, type ReconnectConfig, type UpstreamConfig } from '../forward/bridge.ts'
import { DEFAULT_QUEUE, type QueueConfig } from '../forward/queue/upstream-queue.ts'
import { DEFAULT_AUDIT_RETENTION_DAYS } from '../audit/audit.ts'
import { VeilError, formatProblems } from '../errors.ts'
import { describeAjvError, parseYaml } from './yaml.ts'
import { DOMAINS, isDomain, type Domain } from '../sdk/model.ts'
import { DEFAULT_LIMITS, type Limits } from '../pipeline/pipeline.ts'
import type { OutputEncoding } from '../pipeline/encode.ts'
import { DEFAULT_EPOCH_S, resolveRotation, type RotationSettings } from '../keys/rotation.ts'
import { DEFAULT_INFLIGHT_PER_CLIENT } from '../ingest/limits.ts'
import { configuredProfiles, type ProfileSettings } from '../streams/configured.ts'
import type { ProfileDefinition } from '../sdk/profile.ts'
import type { ProfileSettingsDeclaration } from '../sdk/settings.ts'
import type { Plugins } from '../plugins.ts'
import { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from '../auth/guard.ts'
import type { ListenerKind, ListenerSpec, TlsFiles } from '../ingest/listeners.ts'

export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
export const DEFAULT_POLICIES = join(PACKAGE_ROOT, 'filters/policies')

type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

/** A domain's upstream and pseudonym rotation (keys/rotation.ts: the defaults rotate ana and 3p, never svc). */
export interface DomainConfig extends RotationSettings {
  readonly epochSeconds: number
  readonly upstream: UpstreamConfig | undefined
}

/** The keyring's view of the domains: each one's rotation settings. */
export function keyPoliciesOf(config: Pick<GatewayConfig, 'domains'>): ReadonlyMap<Domain, RotationSettings> {
  return new Map(
    [...config.domains].map(([d, c]) => [
      d,
      { epochSeconds: c.epochSeconds, rotationGapSeconds: c.rotationGapSeconds, categories: c.categories },
    ]),
  )
}

/** The pipeline's limits and the broker's per-client one; the parser's packet limit is derived (packetLimitFor). */
export type GatewayLimits = Limits & { readonly inflightPerClient: number }

/** The configuration Veil runs with, after defaults, file, environment and flags. */
export interface GatewayConfig {
  readonly listen: { readonly host: string; readonly port: number }
  readonly http: { readonly host: string; readonly port: number }
  readonly dataDir: string
  readonly policies: string
  readonly logLevel: LogLevel
  readonly limits: GatewayLimits
  readonly domains: ReadonlyMap<Domain, DomainConfig>
  /** The opt-in switches that are on. */
  readonly optIn: ReadonlySet<string>
  /** Configuration values policies may name (`$privacy_zones`). */
  readonly variables: Readonly<Record<string, unknown>>
  /** Domains that receive protobuf; the others JSON. */
  readonly encoding: ReadonlyMap<Domain, OutputEncoding>
  /**
   * Each profile's top-level section (`sparkplug`) resolved by its declaration, by its configuration key: for the
   * profile set (profilesOf) and the codec states the pipeline builds.
   */
  readonly profileSettings: Readonly<Record<string, unknown>>
  /** The durable store-and-forward queue of each upstream. */
  readonly queue: QueueConfig
  /** Backoff between upstream connection attempts. */
  readonly reconnect: ReconnectConfig
  /** The plug-ins' device profiles, rebuilt for the `profiles` section's topics. */
  readonly profiles: readonly ProfileDefinition[]
  readonly security: SecurityConfig
  /** The audit log: how long rotated files are kept (audit/README.md). */
  readonly audit: AuditConfig
}

export interface AuditConfig {
  /** Rotated audit files whose last line is older are deleted; default 180. */
  readonly retentionDays: number
}

/** Who may connect and how: accounts, listeners, TLS, connection limits, the reload token. */
export interface SecurityConfig {
  /** Off by default: `veil start` refuses clients without credentials unless `--allow-anonymous`. */
  readonly allowAnonymous: boolean
  /** Raw device topics (MQTT filters) that local and admin accounts may read; none by default. */
  readonly localRawTopics: readonly string[]
  /** Listeners beside `listen`: mqtts://, ws://, wss:// (and further mqtt://). */
  readonly listeners: readonly ListenerSpec[]
  readonly tls: TlsFiles | undefined
  readonly connections: ConnectionLimits
  /** Bearer token of POST /-/reload; without one the endpoint is disabled. */
  readonly reloadToken: string | undefined
  /** Bearer token of the subjects and consent API (/api/v1/); without one the API is disabled. */
  readonly apiToken: string | undefined
}

/** The configuration file's shape (schemas/gateway.config.schema.json). */
interface ConfigFile {
  listen?: string
  http?: string
  dataDir?: string
  policies?: string
  logLevel?: LogLevel
  limits?: Partial<GatewayLimits>
  optIn?: Record<string, boolean>
  privacyZones?: { lat: number; lon: number; name?: string }[]
  /** Learn the places a device dwells as privacy zones (stay_zone); on unless set to false. */
  stayZones?: boolean
  domains?: Partial<Record<Domain, RotationSettings & { upstream?: Partial<UpstreamConfig> & { url: string } }>>
  encoding?: Partial<Record<Domain, OutputEncoding>>
  /** A profile's own section (`sparkplug`), read by its declaration. */
  [section: string]: unknown
  queue?: Partial<Omit<QueueConfig, 'ttlSeconds'>> & { ttlSeconds?: Partial<QueueConfig['ttlSeconds']> }
  reconnect?: Partial<ReconnectConfig>
  profiles?: ProfileSettings
  auth?: {
    allowAnonymous?: boolean
    localRawTopics?: string[]
    reloadToken?: string
    reloadTokenFile?: string
    apiToken?: string
    apiTokenFile?: string
  }
  listeners?: string[]
  tls?: { cert?: string; key?: string; ca?: string; requireClientCert?: boolean }
  connections?: Partial<ConnectionLimits>
  audit?: Partial<AuditConfig>
}

/** Settings given on the command line or in VEIL_* variables; each overrides the file. */
export interface ConfigOverrides {
  config?: string | undefined
  listen?: string | undefined
  http?: string | undefined
  dataDir?: string | undefined
  policies?: string | undefined
  logLevel?: string | undefined
  upstreams?: readonly string[] | undefined
  allowAnonymous?: boolean | undefined
  listeners?: readonly string[] | undefined
  tlsCert?: string | undefined
  tlsKey?: string | undefined
  tlsCa?: string | undefined
  reloadToken?: string | undefined
  apiToken?: string | undefined
}

/** The token file `veil start` reads from the data directory when no token is configured. */
export const RELOAD_TOKEN_FILE = 'reload.token'
/** The token file of the subjects and consent API, read from the data directory when no token is configured. */
export const API_TOKEN_FILE = 'api.token'

// maxPending and maxPendingBytes bound the in-flight window to the upstream; the backlog waits on disk (queue).
const DEFAULT_UPSTREAM = {
  protocolVersion: 5,
  topicPrefix: '',
  required: true,
  maxPending: 1000,
  maxPendingBytes: 16 * 1024 * 1024,
} as const

/** An upstream with the defaults of the configuration file, for code that builds one (the demo, tests). */
export function upstreamConfig(url: string, overrides: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return { ...DEFAULT_UPSTREAM, ...overrides, url }
}
// Compiled once per registry: the schema compiles in milliseconds, and tests resolve hundreds of configurations.
const validators = new WeakMap<readonly ProfileSettingsDeclaration[], ValidateFunction<ConfigFile>>()

function fileValidator(configurable: readonly ProfileSettingsDeclaration[]): ValidateFunction<ConfigFile> {
  let validate = validators.get(configurable)
  if (validate === undefined) {
    validate = new Ajv({ allErrors: true, strict: false }).compile<ConfigFile>(
      withProfileSettings(configSchema, configurable),
    )
    validators.set(configurable, validate)
  }
  return validate
}

/** The configuration schema with each configurable profile's settings schema under `profiles`. */
function withProfileSettings(
  schema: typeof configSchema,
  configurable: readonly ProfileSettingsDeclaration[],
): typeof configSchema {
  const properties = Object.fromEntries(configurable.map((p) => [p.name, p.schema]))
  return { ...schema, properties: { ...schema.properties, profiles: { ...schema.properties.profiles, properties } } }
}
const LOG_LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** Reads VEIL_* variables: the environment equivalents of `veil start`'s flags. */
export function overridesFromEnv(env: NodeJS.ProcessEnv): ConfigOverrides {
  return {
    config: env.VEIL_CONFIG,
    listen: env.VEIL_LISTEN,
    http: env.VEIL_HTTP,
    dataDir: env.VEIL_DATA_DIR,
    policies: env.VEIL_POLICIES,
    logLevel: env.VEIL_LOG_LEVEL,
    upstreams: env.VEIL_UPSTREAM?.split(/[,\s]+/).filter((s) => s !== ''),
    allowAnonymous:
      env.VEIL_ALLOW_ANONYMOUS === undefined
        ? undefined
        : env.VEIL_ALLOW_ANONYMOUS === '1' || env.VEIL_ALLOW_ANONYMOUS === 'true',
    listeners: env.VEIL_LISTENERS?.split(/[,\s]+/).filter((s) => s !== ''),
    tlsCert: env.VEIL_TLS_CERT,
    tlsKey: env.VEIL_TLS_KEY,
    tlsCa: env.VEIL_TLS_CA,
    reloadToken: env.VEIL_RELOAD_TOKEN,
    apiToken: env.VEIL_API_TOKEN,
  }
}

/** `plugins`: the profiles the configuration builds on, and the settings its `profiles` section may give them. */
export function resolveConfig(
  plugins: Pick<Plugins, 'profiles' | 'configurableProfiles' | 'configSections'>,
  flags: ConfigOverrides,
  env: ConfigOverrides = {},
): GatewayConfig {
  const configPath = flags.config ?? env.config
  const file = configPath === undefined ? {} : readConfigFile(configPath, fileValidator(plugins.configurableProfiles))
  const pick = <K extends keyof ConfigOverrides>(key: K): ConfigOverrides[K] => flags[key] ?? env[key]

  const listenText = pick('listen') ?? file.listen ?? 'mqtt://0.0.0.0:1883'
  const httpText = pick('http') ?? file.http ?? '127.0.0.1:9464'
  const logLevel = pick('logLevel') ?? file.logLevel ?? 'info'
  if (!LOG_LEVELS.includes(logLevel)) throw usage(`--log-level: ${logLevel} is not one of ${LOG_LEVELS.join(', ')}`)

  const rotation = resolveRotation(file.domains ?? {})
  if (rotation.problems.length > 0)
    throw new VeilError(
      'VEIL_ERR_CONFIG',
      formatProblems(rotation.problems.map((p) => ({ file: configPath ?? '(configuration)', ...p }))),
    )
  const domains = new Map<Domain, DomainConfig>()
  for (const domain of DOMAINS) {
    const section = file.domains?.[domain]
    const upstream = section?.upstream === undefined ? undefined : { ...DEFAULT_UPSTREAM, ...section.upstream }
    if (upstream?.ca !== undefined) {
      upstream.ca = resolve(upstream.ca)
      try {
        readFileSync(upstream.ca)
      } catch (err) {
        throw new VeilError(
          'VEIL_ERR_CONFIG',
          `${configPath}: /domains/${domain}/upstream/ca: ${(err as Error).message}`,
        )
      }
    }
    const epochSeconds = section?.epochSeconds ?? DEFAULT_EPOCH_S[domain]
    domains.set(domain, {
      epochSeconds,
      rotationGapSeconds: section?.rotationGapSeconds,
      categories: section?.categories,
      upstream,
    })
  }
  for (const spec of pick('upstreams') ?? []) {
    const eq = spec.indexOf('=')
    const domain = spec.slice(0, eq)
    const url = spec.slice(eq + 1)
    if (eq < 1 || !isDomain(domain))
      throw usage(`--upstream ${redactUrl(spec)}: expected DOMAIN=URL with DOMAIN one of ${DOMAINS.join(', ')}`)
    parseUrl(url, '--upstream', ['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'ws:', 'wss:'])
    const existing = domains.get(domain)
    domains.set(domain, {
      ...existing,
      epochSeconds: existing?.epochSeconds ?? DEFAULT_EPOCH_S[domain],
      upstream: { ...DEFAULT_UPSTREAM, ...existing?.upstream, url },
    })
  }

  const { profiles: configured, problems } = configuredProfiles(file.profiles, plugins)
  if (problems.length > 0)
    throw new VeilError(
      'VEIL_ERR_CONFIG',
      formatProblems(problems.map((p) => ({ file: configPath ?? '(configuration)', ...p }))),
    )
  const profileSettings: Record<string, unknown> = Object.fromEntries(
    plugins.configSections.map((section) => [section.key, section.resolve(file[section.key])]),
  )
  const profiles = plugins.configSections.reduce(
    (set, section) => section.profiles(set, profileSettings[section.key]),
    configured,
  )

  const dataDir = resolve(pick('dataDir') ?? file.dataDir ?? 'data')
  return {
    listen: parseListen(listenText),
    http: parseHostPort(httpText, '--http'),
    dataDir,
    policies: resolve(pick('policies') ?? file.policies ?? DEFAULT_POLICIES),
    logLevel: logLevel as LogLevel,
    limits: { ...DEFAULT_LIMITS, inflightPerClient: DEFAULT_INFLIGHT_PER_CLIENT, ...file.limits },
    domains,
    optIn: new Set(
      Object.entries(file.optIn ?? {})
        .filter(([, on]) => on)
        .map(([name]) => name),
    ),
    variables: { privacy_zones: file.privacyZones ?? [], stay_zones: file.stayZones ?? true },
    encoding: new Map(Object.entries(file.encoding ?? {}) as [Domain, OutputEncoding][]),
    profileSettings,
    queue: { ...DEFAULT_QUEUE, ...file.queue, ttlSeconds: { ...DEFAULT_QUEUE.ttlSeconds, ...file.queue?.ttlSeconds } },
    reconnect: reconnectOf(file, configPath),
    profiles,
    security: resolveSecurity(file, pick, dataDir, configPath),
    audit: { retentionDays: file.audit?.retentionDays ?? DEFAULT_AUDIT_RETENTION_DAYS },
  }
}

/**
 * The device profiles Veil runs with: the configured ones, each as its own configuration section configures it
 * (Sparkplug B's categories), applied once by resolveConfig.
 */
export function profilesOf(config: Pick<GatewayConfig, 'profiles'>): readonly ProfileDefinition[] {
  return config.profiles
}

function reconnectOf(file: ConfigFile, path: string | undefined): ReconnectConfig {
  const reconnect = { ...DEFAULT_RECONNECT, ...file.reconnect }
  if (reconnect.minMs > reconnect.maxMs) {
    throw new VeilError(
      'VEIL_ERR_CONFIG',
      formatProblems([
        {
          file: path ?? '(defaults)',
          path: '/reconnect',
          problem: `minMs (${reconnect.minMs}) must not exceed maxMs (${reconnect.maxMs})`,
        },
      ]),
    )
  }
  return reconnect
}

function resolveSecurity(
  file: ConfigFile,
  pick: <K extends keyof ConfigOverrides>(key: K) => ConfigOverrides[K],
  dataDir: string,
  configPath: string | undefined,
): SecurityConfig {
  const listeners = (pick('listeners') ?? file.listeners ?? []).map((text) => parseListener(text))
  const cert = pick('tlsCert') ?? file.tls?.cert
  const key = pick('tlsKey') ?? file.tls?.key
  if ((cert === undefined) !== (key === undefined))
    throw usage(`--tls-cert and --tls-key (tls.cert, tls.key) go together`)
  const tls: TlsFiles | undefined =
    cert === undefined || key === undefined
      ? undefined
      : {
          cert: resolve(cert),
          key: resolve(key),
          ca: optionalPath(pick('tlsCa') ?? file.tls?.ca),
          requireClientCert: file.tls?.requireClientCert,
        }
  const tlsListener = listeners.find((l) => l.kind === 'mqtts' || l.kind === 'wss')
  if (tlsListener !== undefined && tls === undefined)
    throw usage(`${tlsListener.flag}: ${tlsListener.kind}:// needs --tls-cert and --tls-key (tls.cert, tls.key)`)
  const connections = { ...DEFAULT_CONNECTION_LIMITS, ...file.connections }
  if (connections.failedLoginMaxDelayMs < connections.failedLoginDelayMs) {
    throw new VeilError(
      'VEIL_ERR_CONFIG',
      `${configPath ?? 'configuration'}: /connections/failedLoginMaxDelayMs: must be at least failedLoginDelayMs`,
    )
  }
  return {
    allowAnonymous: pick('allowAnonymous') ?? file.auth?.allowAnonymous ?? false,
    localRawTopics: file.auth?.localRawTopics ?? [],
    listeners,
    tls,
    connections,
    reloadToken:
      pick('reloadToken') ??
      file.auth?.reloadToken ??
      readToken(file.auth?.reloadTokenFile, join(dataDir, RELOAD_TOKEN_FILE)),
    apiToken:
      pick('apiToken') ??
      file.auth?.apiToken ??
      readToken(file.auth?.apiTokenFile, join(dataDir, API_TOKEN_FILE), 'auth.apiTokenFile'),
  }
}

function optionalPath(path: string | undefined): string | undefined {
  return path === undefined ? undefined : resolve(path)
}

/** The configured token file must exist; the data directory's default one may not. Surrounding white space is trimmed. */
function readToken(configured: string | undefined, fallback: string, key = 'auth.reloadTokenFile'): string | undefined {
  let text: string
  try {
    text = readFileSync(configured ?? fallback, 'utf8')
  } catch (err) {
    if (configured === undefined && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new VeilError('VEIL_ERR_CONFIG', `${key}: ${configured ?? fallback}: ${(err as Error).message}`)
  }
  const token = text.trim()
  if (token.length < 16)
    throw new VeilError(
      'VEIL_ERR_CONFIG',
      `${key}: ${configured ?? fallback}: the token must be at least 16 characters`,
    )
  return token
}

const LISTENER_SCHEMES: Record<string, ListenerKind> = {
  'mqtt:': 'mqtt',
  'tcp:': 'mqtt',
  'mqtts:': 'mqtts',
  'ssl:': 'mqtts',
  'tls:': 'mqtts',
  'ws:': 'ws',
  'wss:': 'wss',
}
const DEFAULT_PORTS: Record<ListenerKind, number> = { mqtt: 1883, mqtts: 8883, ws: 8080, wss: 8081 }

function parseListener(text: string): ListenerSpec {
  const url = parseUrl(text, '--listener', Object.keys(LISTENER_SCHEMES))
  const kind = LISTENER_SCHEMES[url.protocol] as ListenerKind
  const port = url.port === '' ? DEFAULT_PORTS[kind] : Number(url.port)
  return { kind, host: url.hostname.replace(/^\[|\]$/g, ''), port, flag: `--listener ${kind}://` }
}

function readConfigFile(path: string, validateFile: ValidateFunction<ConfigFile>): ConfigFile {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new VeilError('VEIL_ERR_CONFIG', `${path}: cannot read the configuration file: ${(err as Error).message}`)
  }
  const { value: parsed, problems } = parseYaml(path, text)
  if (problems.length > 0) throw new VeilError('VEIL_ERR_CONFIG', formatProblems(problems.slice(0, 1)))
  const value: unknown = parsed ?? {}
  if (!validateFile(value)) {
    const schemaProblems = (validateFile.errors ?? []).map((e) => ({
      file: path,
      path: e.instancePath,
      problem: describeAjvError(e),
    }))
    throw new VeilError('VEIL_ERR_CONFIG', formatProblems(schemaProblems))
  }
  return value
}

function usage(message: string): VeilError {
  return new VeilError('VEIL_ERR_USAGE', message)
}

function parseUrl(text: string, flag: string, protocols: readonly string[]): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw usage(`${flag}: ${redactUrl(text)} is not a URL`)
  }
  if (!protocols.includes(url.protocol))
    throw usage(`${flag}: ${url.protocol}// is not supported; use ${protocols.map((p) => `${p}//`).join(' or ')}`)
  return url
}

function parseListen(text: string): { host: string; port: number } {
  const url = parseUrl(text, '--listen', ['mqtt:', 'tcp:'])
  const port = url.port === '' ? 1883 : Number(url.port)
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port }
}

function parseHostPort(text: string, flag: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text)
  const port = Number(match?.[2])
  if (match === null || port > 65535) throw usage(`${flag}: ${text} is not HOST:PORT`)
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port }
}

/** Upstream URLs may embed credentials; never echo them back. */
export function redactUrl(text: string): string {
  // Greedy up to the last "@" before the host: URL parsers accept "@" inside a password.
  return text.replace(/\/\/[^/]*@/, '//***@')
}
