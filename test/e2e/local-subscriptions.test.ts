/**
 * Filtered copies are published on the local broker only when a client could receive them (a subscription in the
 * `veil/` namespace held by a connected client or by a persistent session away): no subscriber, no aedes publish;
 * a consumer that subscribes later, and a persistent session that was away, still get their copies. Clients connect
 * over in-memory streams (helpers/duplex.ts); the upstream is a real one on loopback.
 */
import type { PublishPacket } from 'aedes'
import type { MqttClient } from 'mqtt'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { LocalSubscriptions } from '../../gateway/src/ingest/broker.ts'
import { clientOverPair, connectOverPair } from '../helpers/duplex.ts'
import { startGateway, startUpstream, type TestGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'

const TOPIC = 'tele/tasmota_5A1B2C/SENSOR'
const reading = (n: number): string => JSON.stringify({ ENERGY: { Yesterday: n, Power: 3 } })

let gw: TestGateway | undefined
let upstreamClose: (() => Promise<void>) | undefined
const clients: MqttClient[] = []

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => {})))
  await gw?.close()
  gw = undefined
  await upstreamClose?.()
  upstreamClose = undefined
})

async function client(clientId: string, clean = true): Promise<MqttClient> {
  if (gw === undefined) throw new Error('no gateway')
  const c = await connectOverPair(gw.gateway.broker, { clientId, clean })
  clients.push(c)
  return c
}

/** Spies on aedes.publish and counts the calls for filtered topics. */
function spyFiltered(g: TestGateway): { readonly count: number } {
  const aedes = g.gateway.broker.aedes
  const spy = vi.spyOn(aedes, 'publish')
  return {
    get count() {
      return spy.mock.calls.filter(([p]) => (p as PublishPacket).topic.startsWith('veil/')).length
    },
  }
}

describe('local filtered copies', () => {
  it('are not published while no client subscribes, and are once one does; upstream copies flow either way', async () => {
    const upstream = await startUpstream()
    upstreamClose = upstream.close
    gw = await startGateway({ upstreams: { svc: upstream.url } })
    await until(() => gw?.gateway.bridges.get('svc')?.connected === true, { timeoutMs: 5000, what: 'the svc bridge' })
    const published = spyFiltered(gw)
    const device = await client('tasmota_5A1B2C')
    await device.publishAsync(TOPIC, reading(1), { qos: 1 })
    await until(() => upstream.received.length >= 1, { timeoutMs: 5000, what: 'the upstream copy' })
    expect(published.count).toBe(0)
    expect(gw.gateway.broker.localSubscriptions).toBe(0)

    const consumer = await client('late-consumer')
    const got: string[] = []
    consumer.on('message', (topic) => got.push(topic))
    await consumer.subscribeAsync('veil/svc/#', { qos: 1 })
    await device.publishAsync(TOPIC, reading(2), { qos: 1 })
    await until(() => got.length >= 1, { timeoutMs: 5000, what: 'the late consumer to get a copy' })
    expect(got[0]).toMatch(/^veil\/svc\/smart_plug\//)
    // svc's copy only: no one subscribes to ana's.
    expect(published.count).toBe(1)

    // A clean session that ends takes its subscriptions with it.
    await consumer.endAsync()
    await until(() => gw?.gateway.broker.localSubscriptions === 0, { timeoutMs: 5000, what: 'the subscription to go' })
    await device.publishAsync(TOPIC, reading(3), { qos: 1 })
    await until(() => upstream.received.length >= 3, { timeoutMs: 5000, what: 'the third upstream copy' })
    expect(published.count).toBe(1)
  })

  it('counts forwarded{target=local} only for copies actually published', async () => {
    gw = await startGateway()
    const device = await client('tasmota_5A1B2C')
    await device.publishAsync(TOPIC, reading(1), { qos: 1 })
    const consumer = await client('metrics-consumer')
    await consumer.subscribeAsync('veil/+/smart_plug/#', { qos: 0 })
    await device.publishAsync(TOPIC, reading(2), { qos: 1 })
    const text = await (await fetch(`${gw.httpUrl}/metrics`)).text()
    // One message published locally per domain (svc and ana), the one before the subscription not at all.
    expect(text).toMatch(/^veil_messages_forwarded_total\{category="smart_plug",domain="svc",target="local"\} 1$/m)
    expect(text).toMatch(/^veil_messages_forwarded_total\{category="smart_plug",domain="ana",target="local"\} 1$/m)
  })

  it('are queued for a persistent session while it is away and delivered when it returns', async () => {
    gw = await startGateway()
    const first = await client('persistent-consumer', false)
    await first.subscribeAsync('veil/svc/#', { qos: 1 })
    await first.endAsync()
    clients.splice(clients.indexOf(first), 1)
    // The subscription must outlive the disconnect: assert once the broker has seen it, not after a fixed pause.
    await until(() => gw?.gateway.broker.aedes.connectedClients === 0, {
      what: 'the broker to see the persistent consumer go',
    })
    expect(gw.gateway.broker.localSubscriptions).toBe(1)

    const published = spyFiltered(gw)
    const device = await client('tasmota_5A1B2C')
    await device.publishAsync(TOPIC, reading(7), { qos: 1 })
    expect(published.count).toBe(1)

    const got: string[] = []
    // The client connects on the next tick: the handler is in place before the queued copy can arrive.
    const again = clientOverPair(gw.gateway.broker, { clientId: 'persistent-consumer', clean: false })
    clients.push(again)
    again.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`))
    await until(() => got.length >= 1, { timeoutMs: 5000, what: 'the queued copy' })
    expect(got[0]).toMatch(/^veil\/svc\/smart_plug\/\S+ /)
    expect(got[0]).toContain('"Yesterday":7')
  })

  it('a clean session replacing a persistent one under the same id drops its subscriptions', async () => {
    gw = await startGateway()
    const persistent = await client('same-id', false)
    await persistent.subscribeAsync('veil/#', { qos: 1 })
    await persistent.endAsync()
    clients.splice(clients.indexOf(persistent), 1)
    await until(() => gw?.gateway.broker.aedes.connectedClients === 0, {
      what: 'the broker to see the persistent session go',
    })
    expect(gw.gateway.broker.localSubscriptions).toBe(1)
    await client('same-id', true)
    await until(() => gw?.gateway.broker.localSubscriptions === 0, {
      timeoutMs: 5000,
      what: 'the stored subscription to go',
    })
  })
})

describe('LocalSubscriptions', () => {
  it('tracks filters by client and by domain, ignores refused and raw filters, and errs towards publishing', () => {
    const s = new LocalSubscriptions()
    expect(s.mayReceive('svc')).toBe(false)
    s.subscribed('a', [
      { topic: 'veil/svc/#', qos: 1 },
      { topic: 'veil/ana/#', qos: 128 },
      { topic: 'tele/x/SENSOR', qos: 0 },
    ])
    expect([s.mayReceive('svc'), s.mayReceive('ana'), s.count]).toEqual([true, false, 1])
    s.subscribed('a', [{ topic: 'veil/svc/#', qos: 0 }])
    expect(s.count).toBe(1)
    s.subscribed('b', [{ topic: '+/svc/#', qos: 0 }])
    expect([s.mayReceive('ana'), s.count]).toEqual([true, 2])
    s.unsubscribed('b', ['+/svc/#', 'never/subscribed'])
    expect(s.mayReceive('ana')).toBe(false)
    s.cleanSession('a')
    expect([s.mayReceive('svc'), s.count]).toEqual([false, 0])
    s.subscribed('c', [
      { topic: 'veil/+/camera/#', qos: 1 },
      { topic: 'veil', qos: 1 },
    ])
    expect([s.mayReceive('3p'), s.count]).toEqual([true, 2])
  })
})
