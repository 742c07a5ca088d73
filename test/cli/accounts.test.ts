// `veil device` and `veil user` as an operator runs them, and `veil start` refusing anonymous clients by default:
// the password is printed once and stored only as a scrypt hash in a 0600 file; a started gateway lets the device
// in with it, refuses everyone else, and never logs it.
import { spawn } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { describe, expect, it } from 'vitest'
import { PLUG, VEIL, cliHarness } from '../helpers/cli.ts'
import { until } from '../helpers/poll.ts'

const { tempDir, childEnv, veil, runAll } = cliHarness({ tempPrefix: 'veil-cli-accounts-', policies: PLUG })

function passwordOf(stdout: string): string {
  const m = /^password: (\S+)$/m.exec(stdout)
  if (m === null) throw new Error(`no password in ${stdout}`)
  return m[1] as string
}

describe('veil device and veil user', () => {
  it('adds, lists and removes accounts; the password appears once, on stdout, and never in the file or a listing', async () => {
    const data = tempDir()
    const add = await veil(['device', 'add', 'tasmota_CA11A7', '--profile', 'tasmota', '--data-dir', data])
    expect(add.code).toBe(0)
    const password = passwordOf(add.stdout)
    expect(add.stdout).toContain('username: tasmota_CA11A7')
    const file = join(data, 'credentials.json')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(readFileSync(file, 'utf8')).not.toContain(password)
    expect(JSON.parse(readFileSync(file, 'utf8')).accounts[0].password).toMatchObject({ N: 32768, r: 8, p: 1 })

    const r = await runAll({
      again: [['device', 'add', 'tasmota_CA11A7', '--profile', 'tasmota', '--data-dir', data]],
      user: [['user', 'add', 'cloud', '--role', 'consumer', '--domain', 'svc', '--data-dir', data]],
    })
    expect(r.again.code).toBe(2)
    expect(r.again.stderr).toMatch(/already exists/)
    expect(r.user.code).toBe(0)
    const lists = await runAll({
      devices: [['device', 'list', '--data-dir', data]],
      users: [['user', 'list', '--data-dir', data]],
    })
    expect(lists.devices.stdout).toMatch(/^tasmota_CA11A7\tdevice\tprofile=tasmota\t/)
    expect(lists.users.stdout).toMatch(/^cloud\tconsumer\tdomain=svc\t/)
    for (const run of Object.values(lists)) {
      expect(run.stdout).not.toContain(password)
      expect(run.stdout).not.toMatch(/salt|hash/)
    }
    expect((await veil(['device', 'remove', 'tasmota_CA11A7', '--data-dir', data])).code).toBe(0)
    expect((await veil(['device', 'list', '--data-dir', data])).stdout).toBe('')
  }, 180_000)

  it('refuses unknown profiles, ids that do not fit, a consumer without a domain and an unknown role, with exit 2', async () => {
    const data = tempDir()
    const r = await runAll({
      profile: [['device', 'add', 'x', '--profile', 'nosuch', '--data-dir', data]],
      levels: [['device', 'add', 'alice', '--profile', 'owntracks', '--data-dir', data]],
      wildcard: [['device', 'add', 'a/#', '--profile', 'tasmota', '--data-dir', data]],
      domain: [['user', 'add', 'c', '--role', 'consumer', '--data-dir', data]],
      role: [['user', 'add', 'c', '--role', 'root', '--data-dir', data]],
    })
    for (const [name, run] of Object.entries(r)) expect({ name, code: run.code }).toEqual({ name, code: 2 })
    expect(r.profile.stderr).toMatch(/unknown profile nosuch/)
    expect(r.levels.stderr).toMatch(/does not fit/)
    expect(r.domain.stderr).toMatch(/--domain/)
  }, 120_000)
})

describe('veil start is secure by default', () => {
  it('refuses anonymous clients, lets a device in with its password, and logs neither the password nor the name', async () => {
    const data = tempDir()
    const add = await veil(['device', 'add', 'tasmota_CA11A7', '--profile', 'tasmota', '--data-dir', data])
    const password = passwordOf(add.stdout)
    const child = spawn(
      process.execPath,
      [
        VEIL,
        'start',
        '--listen',
        'mqtt://127.0.0.1:0',
        '--http',
        '127.0.0.1:0',
        '--data-dir',
        data,
        '--log-level',
        'trace',
      ],
      { cwd: tempDir(), env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c))
    child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c))
    const killer = setTimeout(() => child.kill('SIGKILL'), 150_000)
    try {
      await until(() => out.includes('"event":"started"') || child.exitCode !== null, {
        timeoutMs: 90_000,
        what: 'veil start to log "started" or exit',
        intervalMs: 50,
      })
      const started = JSON.parse(out.split('\n').find((l) => l.includes('"event":"started"')) ?? '{}') as {
        listen?: { port: number }
        allowAnonymous?: boolean
        accounts?: number
      }
      expect(started).toMatchObject({ allowAnonymous: false, accounts: 1 })
      const url = `mqtt://127.0.0.1:${started.listen?.port}`
      const anon = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000 }).then(
        () => 0,
        (err: { code?: number }) => err.code,
      )
      expect(anon).toBe(5)
      const device = await mqtt.connectAsync(url, {
        reconnectPeriod: 0,
        connectTimeout: 5000,
        clientId: 'DVES_CA11A7',
        username: 'tasmota_CA11A7',
        password,
      })
      await device.publishAsync('tele/tasmota_CA11A7/SENSOR', '{"ENERGY":{"Yesterday":1.2}}', { qos: 1 })
      await device.endAsync()
      child.kill('SIGTERM')
      await new Promise((r) => child.once('exit', r))
    } finally {
      clearTimeout(killer)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
    expect(out).toMatch(/"event":"login_refused","reason":"anonymous_refused"/)
    expect(out).not.toContain(password)
    expect(out.toLowerCase()).not.toContain('ca11a7')
  }, 180_000)
})

describe('veil demo', () => {
  it('gives each simulated device its own account, so the demo runs with anonymous clients refused', async () => {
    const data = tempDir()
    const run = await veil(['demo', '--duration', '6', '--data-dir', data], { timeoutMs: 150_000 })
    expect(run.code).toBe(0)
    // On a loaded machine not every simulator gets to publish in six seconds; any that does has logged in, and a
    // refused login would show on stderr.
    expect(run.stdout).toMatch(/^out {2}veil\/svc\//m)
    const accounts = JSON.parse(readFileSync(join(data, 'credentials.json'), 'utf8')).accounts as {
      role: string
      profile: string
    }[]
    expect(accounts.map((a) => a.profile).sort()).toEqual(['frigate', 'miscale', 'owntracks', 'tasmota', 'valetudo'])
    expect(run.stderr).not.toMatch(/Not authorized|Bad username/i)
  }, 180_000)
})
