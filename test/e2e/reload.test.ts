import { cpSync, writeFileSync } from 'node:fs'
import { startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { TEST_POLICIES as DEFAULT_POLICIES } from '../helpers/gateway.ts'

const SENSOR = Buffer.from(JSON.stringify({ ENERGY: { Total: 3.2, Yesterday: 0.4, Today: 0.1 } }))

describe('policy hot reload', () => {
  let gw: TestGateway | undefined
  let dir: { path: string; remove(): void } | undefined
  afterEach(async () => {
    await gw?.close()
    dir?.remove()
  })

  it('swaps in a valid set, keeps the old one when the new set is bad, and says why', async () => {
    dir = tempDir('veil-policies-')
    cpSync(DEFAULT_POLICIES, dir.path, { recursive: true })
    gw = await startGateway({ policies: dir.path })
    const before = gw.gateway.policyVersion
    const data = async () => {
      const r = await gw!.gateway.pipeline.process('tele/tasmota_1/SENSOR', SENSOR)
      return r.outputs.map((o) => JSON.parse(o.payload.toString()).data)
    }
    expect(await data()).toEqual([{ ENERGY: { Yesterday: 0.4 } }, { ENERGY: { Yesterday: 0.4 } }])

    writeFileSync(
      join(dir.path, 'smart_plug.yaml'),
      'category: smart_plug\ndomains:\n  svc: { streams: { tasmota/sensor: { allow: [ENERGY.Today] } } }\n',
    )
    const ok = gw.gateway.reloadPolicies()
    expect(ok).toMatchObject({ ok: true })
    expect(gw.gateway.policyVersion).not.toBe(before)
    expect(await data()).toEqual([{ ENERGY: { Today: 0.1 } }])

    const good = gw.gateway.policyVersion
    writeFileSync(
      join(dir.path, 'smart_plug.yaml'),
      'category: smart_plug\ndomains:\n  svc: { streams: { tasmota/sensr: { allow: [ENERGY.Today] } } }\n',
    )
    const bad = gw.gateway.reloadPolicies()
    expect(bad.ok).toBe(false)
    expect(bad.ok === false && bad.error).toMatch(
      /smart_plug\.yaml: \/domains\/svc\/streams\/tasmota~1sensr: no smart_plug profile has the stream tasmota\/sensr/,
    )
    expect(gw.gateway.policyVersion).toBe(good)
    expect(await data()).toEqual([{ ENERGY: { Today: 0.1 } }])
    expect(await gw.gateway.metrics.registry.getSingleMetricAsString('veil_policy_reloads_total')).toMatch(
      /result="rejected"} 1/,
    )
  })

  it('reloads by itself when a policy file changes', async () => {
    dir = tempDir('veil-policies-')
    cpSync(DEFAULT_POLICIES, dir.path, { recursive: true })
    gw = await startGateway({ policies: dir.path })
    gw.gateway.watchPolicies(50)
    const before = gw.gateway.policyVersion
    writeFileSync(
      join(dir.path, 'camera.yaml'),
      'category: camera\ndomains:\n  svc: { streams: { frigate/events: { allow: [type] } } }\n',
    )
    await until(() => gw!.gateway.policyVersion !== before, { timeoutMs: 5000, what: 'the watched reload' })
  })
})
