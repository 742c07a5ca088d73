/**
 * The gateway's clock, end to end (issue 13 parts 2 and 3): a copy whose stream is batched waits for its boundary
 * before it reaches the upstream, an energy window's record leaves from the gateway's tick with no device message,
 * and a clean shutdown hands held copies to the durable queue instead of losing them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { DEFAULT_POLICIES } from '../../gateway/src/config/config.ts'
import { connect, startGateway, startUpstream, type TestGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'
import { throughSentinel } from '../helpers/sentinel.ts'

/**
 * A camera policy whose svc events are batched every minute (the shipped one releases them at once: alerts), and
 * frigate/available released at once: the sentinel that shows nothing batched left early.
 */
function batchedPolicies(): string {
  const dir = mkdtempSync(join(tmpdir(), 'veil-release-policies-'))
  writeFileSync(
    join(dir, 'camera.yaml'),
    'version: 1\ncategory: camera\ndomains:\n  svc:\n    streams:\n      frigate/events:\n        release: { every_s: 60 }\n        allow: [type, after.top_score]\n      frigate/available:\n        allow: [$]\n',
  )
  dirs.push(dir)
  return dir
}
const dirs: string[] = []
const event = (id: string) =>
  JSON.stringify({ type: 'new', after: { id, label: 'person', camera: 'door', top_score: Number(id.slice(1)) / 10 } })

let gw: TestGateway | undefined
let upstream: Awaited<ReturnType<typeof startUpstream>> | undefined
let device: MqttClient | undefined

afterEach(async () => {
  await device?.endAsync()
  await gw?.close()
  await upstream?.close()
  device = gw = upstream = undefined
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

describe('release on the gateway clock', () => {
  it('holds batched copies until the next minute boundary, then forwards them in order', async () => {
    upstream = await startUpstream()
    gw = await startGateway({ policies: batchedPolicies(), upstreams: { svc: upstream.url } })
    device = await connect(gw.url)
    for (const id of ['e1', 'e2', 'e3']) await device.publishAsync('frigate/events', event(id), { qos: 1 })
    await until(() => gw?.gateway.held === 3, { timeoutMs: 2000, what: 'the copies to be held' })
    const events = () => upstream?.received.filter((p) => p.topic.endsWith('/events')) ?? []
    await throughSentinel(
      () => device!.publishAsync('frigate/available', 'online', { qos: 1 }),
      () => upstream?.received.some((p) => p.topic.endsWith('/available')) === true,
      'frigate/available, released at once',
    )
    expect(events()).toHaveLength(0)
    // The next minute boundary, plus its jitter.
    await gw.gateway.tick(Date.now() + 62_000)
    await until(() => events().length === 3, { timeoutMs: 3000, what: 'the released events' })
    expect(gw.gateway.held).toBe(0)
    expect(upstream.received.every((p) => p.topic.startsWith('veil/svc/camera/'))).toBe(true)
    expect(
      events().map(
        (p) => (JSON.parse(String(p.payload)) as { data: { after: { top_score: number } } }).data.after.top_score,
      ),
    ).toEqual([0.1, 0.2, 0.3])
  })

  it('releases an energy window from the tick, with no message from the plug', async () => {
    upstream = await startUpstream()
    gw = await startGateway({ policies: DEFAULT_POLICIES, upstreams: { svc: upstream.url } })
    device = await connect(gw.url)
    await device.publishAsync('tele/kettle/SENSOR', JSON.stringify({ ENERGY: { Total: 10.5, Power: 1800 } }), {
      qos: 1,
    })
    // tasmota/lwt is released at once: once it is upstream, a record the reading let out early would be too.
    await throughSentinel(
      () => device!.publishAsync('tele/kettle/LWT', 'Online', { qos: 1 }),
      () => upstream?.received.some((p) => p.topic.endsWith('/lwt')) === true,
      "the plug's LWT, released at once",
    )
    expect(upstream.received.filter((p) => p.topic.endsWith('/sensor'))).toHaveLength(0)
    await gw.gateway.tick(Date.now() + 2 * 3_600_000)
    await until(() => upstream?.received.some((p) => p.topic.endsWith('/sensor')) === true, {
      timeoutMs: 3000,
      what: 'the energy record',
    })
    const record = upstream.received.find((p) => p.topic.endsWith('/sensor'))
    expect(JSON.parse(String(record?.payload)).data).toMatchObject({ window_s: 3600, energy_wh: 0 })
  })

  it('a clean shutdown queues held copies instead of dropping them', async () => {
    upstream = await startUpstream()
    gw = await startGateway({ policies: batchedPolicies(), upstreams: { svc: upstream.url } })
    device = await connect(gw.url)
    await device.publishAsync('frigate/events', event('e1'), { qos: 1 })
    await until(() => gw?.gateway.held === 1, { timeoutMs: 2000, what: 'the copy to be held' })
    await device.endAsync()
    device = undefined
    await gw.gateway.close(2000)
    expect(upstream.received.some((p) => p.topic.endsWith('/events'))).toBe(true)
  })
})
