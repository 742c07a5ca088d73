/**
 * The failed-login delay on the clock, end to end: each further wrong password from an address is answered later
 * (the delay doubles), and the right password resets it. The CONNACK's timing is the thing under test, so these
 * elapsed-time bounds run in the slow project; gateway/src/auth tests the doubling on an injected clock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CredentialStore } from '../../gateway/src/auth/store.ts'
import { builtinPlugins } from '../../gateway/src/builtins.ts'
import { resolveConfig } from '../../gateway/src/config/config.ts'
import { Gateway } from '../../gateway/src/gateway.ts'
import { createLogger } from '../../gateway/src/telemetry/log.ts'
import { TEST_POLICIES, tempDir } from '../helpers/gateway.ts'
import { rawConnect } from '../helpers/raw.ts'

let dir: { path: string; remove(): void }
let gateway: Gateway
let password = ''

beforeAll(async () => {
  dir = tempDir('veil-roles-slow-')
  password = await CredentialStore.open(dir.path).add(
    { name: 'tasmota_A', role: 'device', profile: 'tasmota' },
    { scrypt: { N: 2 ** 12 } },
  )
  const base = resolveConfig(builtinPlugins, {
    listen: 'mqtt://127.0.0.1:0',
    http: '127.0.0.1:0',
    dataDir: dir.path,
    policies: TEST_POLICIES,
  })
  const connections = { ...base.security.connections, failedLoginDelayMs: 150, failedLoginMaxDelayMs: 5000 }
  gateway = await Gateway.start(
    { ...base, security: { ...base.security, connections } },
    builtinPlugins,
    createLogger('silent'),
  )
}, 60_000)

afterAll(async () => {
  await gateway?.close(500)
  dir?.remove()
})

describe('failed logins on the clock', () => {
  it('answers each further failed login from an address later: the delay doubles', async () => {
    const port = gateway.broker.address.port
    const times: number[] = []
    for (let i = 0; i < 3; i++) {
      const r = await rawConnect(port, {
        clientId: `guess${i}`,
        clean: true,
        username: 'tasmota_A',
        password: `guess-${i}`,
      })
      expect(r.returnCode).toBe(4)
      times.push(r.ms)
    }
    expect(times[0]).toBeGreaterThanOrEqual(140)
    expect(times[1]).toBeGreaterThanOrEqual(290)
    expect(times[2]).toBeGreaterThanOrEqual(590)
    // The right password still works, and resets the delay for the address.
    expect(
      (await rawConnect(port, { clientId: 'right', clean: true, username: 'tasmota_A', password })).returnCode,
    ).toBe(0)
    const after = await rawConnect(port, {
      clientId: 'guess9',
      clean: true,
      username: 'tasmota_A',
      password: 'guess-9',
    })
    expect(after.ms).toBeLessThan(590)
  }, 30_000)
})
