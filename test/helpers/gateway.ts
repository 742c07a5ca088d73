import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Aedes, type AedesPublishPacket } from 'aedes'
import mqtt, { type MqttClient } from 'mqtt'
import { AccessControl } from '../../gateway/src/auth/access.ts'
import { Authenticator } from '../../gateway/src/auth/authenticate.ts'
import { ConnectionGuard } from '../../gateway/src/auth/guard.ts'
import { CredentialStore } from '../../gateway/src/auth/store.ts'
import {
  profilesOf,
  resolveConfig,
  upstreamConfig,
  type DomainConfig,
  type GatewayConfig,
  type GatewayLimits,
} from '../../gateway/src/config/config.ts'
import type { BrokerSecurity } from '../../gateway/src/ingest/broker.ts'
import { Classifier } from '../../gateway/src/streams/classifier.ts'
import { Gateway, type GatewayParts } from '../../gateway/src/gateway.ts'
import type { Domain } from '../../gateway/src/sdk/model.ts'
import { silentLogger } from '../../gateway/src/telemetry/log.ts'
import { builtinPlugins } from '../../gateway/src/builtins.ts'

/** Allowlist-only policies with one output per input: see test/policies/README.md. */
export const TEST_POLICIES = join(import.meta.dirname, '../policies/allowlist')

export function tempDir(prefix = 'veil-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix))
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) }
}

/** A plain aedes on a free loopback port: the stand-in for a cloud broker in unit-level end-to-end tests. */
export async function startUpstream(): Promise<{
  url: string
  port: number
  aedes: Aedes
  received: AedesPublishPacket[]
  close(): Promise<void>
}> {
  const aedes = await Aedes.createBroker({ id: 'test-upstream' })
  const received: AedesPublishPacket[] = []
  aedes.on('publish', (packet, client) => {
    if (client) received.push(packet)
  })
  const server: Server = createServer(aedes.handle)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    aedes,
    received,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
    },
  }
}

export interface TestGateway {
  gateway: Gateway
  url: string
  httpUrl: string
  dataDir: string
  close(): Promise<void>
}

/**
 * A real gateway on free loopback ports with a temporary data directory. `upstreams` maps domains to broker URLs
 * (protocol 4 unless given, since the in-process stand-in is aedes 1.x).
 */
export async function startGateway(
  options: {
    upstreams?: Partial<Record<Domain, string>>
    protocolVersion?: 4 | 5
    policies?: string
    parts?: GatewayParts
    limits?: Partial<GatewayLimits>
    /** Queue and reconnect settings over the defaults (tests of outages use a short backoff). */
    overrides?: Partial<Pick<GatewayConfig, 'queue' | 'reconnect'>>
    /** Use this data directory (kept on close) instead of a fresh temporary one: a restart with the same queue. */
    dataDir?: string
    security?: Partial<GatewayConfig['security']>
    /** Each upstream's declared region (residency). */
    regions?: Partial<Record<Domain, string>>
    /** The household's consent switches (configuration `optIn`). */
    optIn?: readonly string[]
  } = {},
): Promise<TestGateway> {
  const dir = options.dataDir === undefined ? tempDir() : { path: options.dataDir, remove: () => {} }
  const base = resolveConfig(builtinPlugins, {
    listen: 'mqtt://127.0.0.1:0',
    http: '127.0.0.1:0',
    dataDir: dir.path,
    policies: options.policies ?? TEST_POLICIES,
  })
  // Stable pseudonyms: these tests run on the wall clock with a fresh master key, so a rotating domain's copies would
  // fall in their device's rotation gap on some dates. Rotation has its own tests (gateway/src/keys).
  const domains = new Map(
    [...base.domains].map(([d, c]): [Domain, DomainConfig] => [d, { epochSeconds: 0, upstream: c.upstream }]),
  )
  for (const [domain, url] of Object.entries(options.upstreams ?? {}) as [Domain, string][]) {
    domains.set(domain, {
      epochSeconds: 0,
      upstream: upstreamConfig(url, {
        protocolVersion: options.protocolVersion ?? 4,
        region: options.regions?.[domain],
      }),
    })
  }
  // Anonymous devices, as these tests have always used; the access rules have their own tests (test/security).
  const config: GatewayConfig = {
    ...base,
    ...options.overrides,
    domains,
    limits: { ...base.limits, ...options.limits },
    security: { ...base.security, allowAnonymous: true, ...options.security },
    optIn: options.optIn === undefined ? base.optIn : new Set(options.optIn),
  }
  const gateway = await Gateway.start(config, builtinPlugins, silentLogger(), options.parts)
  return {
    gateway,
    url: `mqtt://127.0.0.1:${gateway.broker.address.port}`,
    httpUrl: `http://127.0.0.1:${gateway.http.address.port}`,
    dataDir: dir.path,
    close: async () => {
      await gateway.close(1000)
      dir.remove()
    },
  }
}

export async function connect(url: string, options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options })
}

/** What a DeviceBroker started on its own needs to let anonymous clients in, as startGateway's gateway does. */
export function anonymousBrokerSecurity(dataDir: string): BrokerSecurity {
  const profiles = profilesOf(resolveConfig(builtinPlugins, { dataDir }))
  const classifier = new Classifier(profiles)
  const access = new AccessControl(profiles, classifier)
  const guard = new ConnectionGuard()
  const authenticator = new Authenticator({ store: CredentialStore.open(dataDir), access, guard, allowAnonymous: true })
  return { authenticator, access, guard, listeners: [], tls: undefined, onPublishRefused: () => {} }
}
