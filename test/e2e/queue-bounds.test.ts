/**
 * The durable queue's bounds seen from outside: with the upstream down, a small byte bound evicts the oldest
 * messages and a short TTL expires them; both are counted in veil_messages_dropped_total and written to the audit
 * log with their reason and count, never with a value.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { DEFAULT_QUEUE } from '../../gateway/src/forward/queue/upstream-queue.ts'
import { connect, startGateway, type TestGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'
import { freePort } from '../helpers/mosquitto.ts'

let gw: TestGateway | undefined
let device: MqttClient | undefined
afterEach(async () => {
  await device?.endAsync(true).catch(() => {})
  await gw?.close()
  gw = undefined
})

function auditLines(dataDir: string): { reason: string; count?: number; domain?: string; stage: string }[] {
  let text = ''
  try {
    text = readFileSync(join(dataDir, 'audit.jsonl'), 'utf8')
  } catch {
    return []
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { reason: string; count?: number; domain?: string; stage: string })
}

async function dropped(httpUrl: string, reason: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text()
  let n = 0
  for (const m of text.matchAll(
    new RegExp(
      `^veil_messages_dropped_total\\{stage="forward",category="smart_plug",reason="${reason}"\\} (\\d+)$`,
      'gm',
    ),
  ))
    n += Number(m[1])
  return n
}

describe('durable queue bounds', () => {
  it('evicts the oldest at the byte bound: counted, audited with a count, the queue stays within the bound', async () => {
    const maxBytes = 65536
    gw = await startGateway({
      upstreams: { svc: `mqtt://127.0.0.1:${await freePort()}` },
      overrides: { queue: { ...DEFAULT_QUEUE, maxBytes, segmentBytes: 4096 } },
    })
    device = await connect(gw.url, { clientId: 'DVES_B0B0B0' })
    const pad = 'p'.repeat(200)
    for (let k = 1; k <= 1500; k++)
      await device.publishAsync('tele/tasmota_B0B0B0/SENSOR', `{"ENERGY":{"Yesterday":${k}},"Pad":"${pad}"}`, {
        qos: 1,
      })
    const bridge = gw.gateway.bridges.get('svc')
    expect(bridge?.queuedBytes).toBeLessThanOrEqual(maxBytes)
    const evicted = await dropped(gw.httpUrl, 'evicted')
    expect(evicted).toBeGreaterThan(0)
    expect(evicted + (bridge?.pending ?? 0)).toBe(1500)
    await until(() => auditLines((gw as TestGateway).dataDir).some((l) => l.reason === 'evicted'), {
      timeoutMs: 5000,
      what: 'an eviction in the audit log',
    })
    const lines = auditLines(gw.dataDir).filter((l) => l.reason === 'evicted')
    expect(lines.reduce((n, l) => n + (l.count ?? 1), 0)).toBe(evicted)
    for (const l of lines) expect(l).toMatchObject({ stage: 'forward', domain: 'svc' })
    expect(readFileSync(join(gw.dataDir, 'audit.jsonl'), 'utf8')).not.toContain('Yesterday')
  })

  it('expires messages past their category TTL: never sent, counted and audited', async () => {
    gw = await startGateway({
      upstreams: { svc: `mqtt://127.0.0.1:${await freePort()}` },
      overrides: { queue: { ...DEFAULT_QUEUE, ttlSeconds: { ...DEFAULT_QUEUE.ttlSeconds, smart_plug: 1 } } },
    })
    device = await connect(gw.url, { clientId: 'DVES_B0B0B1' })
    for (let k = 1; k <= 20; k++)
      await device.publishAsync('tele/tasmota_B0B0B1/SENSOR', `{"ENERGY":{"Yesterday":${k}}}`, { qos: 1 })
    const bridge = gw.gateway.bridges.get('svc')
    expect(bridge?.pending).toBe(20)
    // The sweep runs every second for a 1 s TTL.
    await until(() => bridge?.pending === 0, { timeoutMs: 5000, what: 'the queue to expire' })
    expect(await dropped(gw.httpUrl, 'expired')).toBe(20)
    await until(() => auditLines((gw as TestGateway).dataDir).some((l) => l.reason === 'expired'), {
      timeoutMs: 5000,
      what: 'an expiry in the audit log',
    })
    expect(
      auditLines(gw.dataDir)
        .filter((l) => l.reason === 'expired')
        .reduce((n, l) => n + (l.count ?? 1), 0),
    ).toBe(20)
  })
})
