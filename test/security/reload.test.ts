/**
 * POST /-/reload: the one HTTP endpoint that changes state. It needs a bearer token; without a configured token it
 * does not exist. It reloads the broker accounts as well as the policies. The HTTP endpoint binds to loopback
 * unless told otherwise.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { CredentialStore } from '../../gateway/src/auth/store.ts'
import { RELOAD_TOKEN_FILE, resolveConfig } from '../../gateway/src/config/config.ts'
import { startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts'
import { builtinPlugins } from '../../gateway/src/builtins.ts'

const TOKEN = 'a-long-enough-test-token-0123456789'
const cleanup: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

async function gateway(options: Parameters<typeof startGateway>[0]): Promise<TestGateway> {
  const gw = await startGateway(options)
  cleanup.push(() => gw.close())
  return gw
}

const reload = (gw: TestGateway, headers: Record<string, string> = {}, method = 'POST'): Promise<Response> =>
  fetch(`${gw.httpUrl}/-/reload`, { method, headers })

describe('POST /-/reload', () => {
  it('is disabled without a token', async () => {
    const gw = await gateway({ security: { reloadToken: undefined } })
    // Without a token the HTTP endpoint takes no POST at all, and knows no such path.
    expect((await reload(gw, { authorization: `Bearer ${TOKEN}` })).status).toBe(405)
    expect((await reload(gw, { authorization: `Bearer ${TOKEN}` }, 'GET')).status).toBe(404)
  })

  it('refuses a missing or wrong token with 401, and only POST', async () => {
    const gw = await gateway({ security: { reloadToken: TOKEN } })
    const missing = await reload(gw)
    expect(missing.status).toBe(401)
    expect(missing.headers.get('www-authenticate')).toBe('Bearer')
    expect((await reload(gw, { authorization: `Bearer ${TOKEN}x` })).status).toBe(401)
    expect((await reload(gw, { authorization: `Bearer ${TOKEN.slice(0, -1)}` })).status).toBe(401)
    expect((await reload(gw, { authorization: TOKEN })).status).toBe(401)
    expect((await reload(gw, { authorization: `Bearer ${TOKEN}` }, 'GET')).status).toBe(405)
    const ok = await reload(gw, { authorization: `Bearer ${TOKEN}` })
    expect(ok.status).toBe(200)
    expect(await ok.json()).toEqual({ status: 'reloaded', policy: gw.gateway.policyVersion })
  })

  it('picks up an account added while running', async () => {
    const dir = tempDir('veil-reload-')
    cleanup.push(() => dir.remove())
    const gw = await gateway({ dataDir: dir.path, security: { reloadToken: TOKEN, allowAnonymous: false } })
    const password = await CredentialStore.open(dir.path).add(
      { name: 'tasmota_A', role: 'device', profile: 'tasmota' },
      { scrypt: { N: 2 ** 12 } },
    )
    const attempt = (): Promise<number> =>
      mqtt
        .connectAsync(gw.url, {
          username: 'tasmota_A',
          password,
          reconnectPeriod: 0,
          connectTimeout: 5000,
          clientId: `r${Date.now()}`,
        })
        .then(
          async (c) => (await c.endAsync(), 0),
          (err: { code?: number }) => err.code ?? -1,
        )
    expect(await attempt()).toBe(4)
    expect((await reload(gw, { authorization: `Bearer ${TOKEN}` })).status).toBe(200)
    expect(await attempt()).toBe(0)
  }, 30_000)

  it('disconnects a connected device once its account is removed and the accounts reloaded', async () => {
    const dir = tempDir('veil-revoke-')
    cleanup.push(() => dir.remove())
    const store = CredentialStore.open(dir.path)
    const pa = await store.add({ name: 'tasmota_A', role: 'device', profile: 'tasmota' }, { scrypt: { N: 2 ** 12 } })
    const pb = await store.add({ name: 'tasmota_B', role: 'device', profile: 'tasmota' }, { scrypt: { N: 2 ** 12 } })
    const gw = await gateway({ dataDir: dir.path, security: { reloadToken: TOKEN, allowAnonymous: false } })
    const a = await mqtt.connectAsync(gw.url, {
      username: 'tasmota_A',
      password: pa,
      reconnectPeriod: 0,
      clientId: 'rev-a',
    })
    const b = await mqtt.connectAsync(gw.url, {
      username: 'tasmota_B',
      password: pb,
      reconnectPeriod: 0,
      clientId: 'rev-b',
    })
    cleanup.push(async () => {
      await a.endAsync(true)
      await b.endAsync(true)
    })
    const aClosed = new Promise<void>((r) => a.once('close', () => r()))
    expect(CredentialStore.open(dir.path).remove('tasmota_A')).toBe(true)
    expect((await reload(gw, { authorization: `Bearer ${TOKEN}` })).status).toBe(200)
    await aClosed
    // A round trip on B's own connection after the reload, instead of a pause: had the reload closed B, it would not be acknowledged.
    await b.subscribeAsync('cmnd/tasmota_B/#', { qos: 1 })
    expect(b.connected).toBe(true)
  }, 30_000)

  it('reads the token from <data-dir>/reload.token when the configuration has none, and binds HTTP to loopback by default', () => {
    const dir = tempDir('veil-token-')
    cleanup.push(() => dir.remove())
    expect(resolveConfig(builtinPlugins, { dataDir: dir.path }).security.reloadToken).toBeUndefined()
    writeFileSync(join(dir.path, RELOAD_TOKEN_FILE), `${TOKEN}\n`, { mode: 0o600 })
    const config = resolveConfig(builtinPlugins, { dataDir: dir.path })
    expect(config.security.reloadToken).toBe(TOKEN)
    expect(config.http.host).toBe('127.0.0.1')
    writeFileSync(join(dir.path, RELOAD_TOKEN_FILE), 'short', { mode: 0o600 })
    expect(() => resolveConfig(builtinPlugins, { dataDir: dir.path })).toThrow(/at least 16 characters/)
  })
})
