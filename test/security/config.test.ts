// The security sections of the configuration: defaults (anonymous refused, no extra listener, no reload token),
// the file's keys, the flags and VEIL_* variables that override them, and precise errors.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { overridesFromEnv, resolveConfig } from '../../gateway/src/config/config.ts'
import { tempDir } from '../helpers/gateway.ts'
import { builtinPlugins } from '../../gateway/src/builtins.ts'

const dir = tempDir('veil-seccfg-')
afterAll(() => dir.remove())

function file(name: string, text: string): string {
  const path = join(dir.path, name)
  writeFileSync(path, text)
  return path
}

describe('security configuration', () => {
  it('is secure by default', () => {
    const s = resolveConfig(builtinPlugins, { dataDir: dir.path }).security
    expect(s).toMatchObject({
      allowAnonymous: false,
      localRawTopics: [],
      listeners: [],
      tls: undefined,
      reloadToken: undefined,
    })
    expect(s.connections).toMatchObject({ maxConnections: 10_000, connectTimeoutMs: 10_000, failedLoginDelayMs: 500 })
  })

  it('reads auth, listeners, tls and connections from the file; flags and variables win', () => {
    const config = file(
      'sec.yaml',
      [
        'auth: { allowAnonymous: true, localRawTopics: ["tele/+/SENSOR"], reloadToken: "0123456789abcdef0123" }',
        'listeners: ["mqtts://127.0.0.1:8883", "ws://127.0.0.1:8080", "wss://[::1]:8081"]',
        'tls: { cert: server.crt, key: server.key, ca: ca.crt, requireClientCert: true }',
        'connections: { maxConnections: 5, ratePerSecond: 0.5, burst: 2, connectTimeoutMs: 2000, failedLoginDelayMs: 100, failedLoginMaxDelayMs: 1000 }',
        '',
      ].join('\n'),
    )
    const s = resolveConfig(builtinPlugins, { config, dataDir: dir.path }).security
    expect(s.allowAnonymous).toBe(true)
    expect(s.localRawTopics).toEqual(['tele/+/SENSOR'])
    expect(s.reloadToken).toBe('0123456789abcdef0123')
    expect(s.listeners.map((l) => [l.kind, l.host, l.port])).toEqual([
      ['mqtts', '127.0.0.1', 8883],
      ['ws', '127.0.0.1', 8080],
      ['wss', '::1', 8081],
    ])
    expect(s.tls).toMatchObject({ requireClientCert: true })
    expect(s.tls?.cert).toMatch(/server\.crt$/)
    expect(s.connections).toMatchObject({ maxConnections: 5, ratePerSecond: 0.5, burst: 2 })

    const env = overridesFromEnv({ VEIL_ALLOW_ANONYMOUS: '0', VEIL_RELOAD_TOKEN: 'from-the-environment-1234' })
    expect(resolveConfig(builtinPlugins, { config, dataDir: dir.path }, env).security).toMatchObject({
      allowAnonymous: false,
      reloadToken: 'from-the-environment-1234',
    })
    expect(
      resolveConfig(builtinPlugins, { config, dataDir: dir.path, allowAnonymous: true }, env).security.allowAnonymous,
    ).toBe(true)
  })

  it('names the file and path of a bad security key', () => {
    const bad = file('bad.yaml', 'auth: { allowAnonymus: true }\nconnections: { maxConnections: 0 }\n')
    expect(() => resolveConfig(builtinPlugins, { config: bad, dataDir: dir.path })).toThrow(
      /bad\.yaml: \/auth: unknown property allowAnonymus/,
    )
    expect(() => resolveConfig(builtinPlugins, { config: bad, dataDir: dir.path })).toThrow(
      /bad\.yaml: \/connections\/maxConnections/,
    )
    const short = file('short.yaml', 'auth: { reloadToken: "short" }\n')
    expect(() => resolveConfig(builtinPlugins, { config: short, dataDir: dir.path })).toThrow(
      /short\.yaml: \/auth\/reloadToken/,
    )
    expect(() => resolveConfig(builtinPlugins, { dataDir: dir.path, tlsCert: 'a.crt' })).toThrow(
      /--tls-cert and --tls-key/,
    )
    expect(() => resolveConfig(builtinPlugins, { dataDir: dir.path, listeners: ['wss://127.0.0.1:1'] })).toThrow(
      /wss:\/\/ needs --tls-cert/,
    )
  })
})
