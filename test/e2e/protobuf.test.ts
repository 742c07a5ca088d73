/**
 * Protobuf and Sparkplug B through a started gateway: devices publish Sparkplug B and canonical protobuf to Veil's
 * listener; a consumer on an MQTT 5 upstream (a mosquitto process, since aedes 1.x speaks no MQTT 5) receives the
 * svc domain's copies re-encoded as protobuf with their content type, and the local filtered namespace carries the
 * same bytes. Malformed protobuf is counted on /metrics and reaches neither. Needs the `mosquitto` binary: missing,
 * the suite is skipped (test/integration/mosquitto.test.ts makes it mandatory on CI).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { IPublishPacket, MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolveConfig } from '../../gateway/src/config/config.ts'
import { Gateway } from '../../gateway/src/gateway.ts'
import { FILTERED_CONTENT_TYPE } from '../../gateway/src/pipeline/encode.ts'
import { SPARKPLUG_CONTENT_TYPE } from '../../filters/profiles/sparkplug/stream.ts'
import { protoType } from '../../gateway/src/streams/proto.ts'
import { silentLogger } from '../../gateway/src/telemetry/log.ts'
import { sparkplugPayloadType } from '../../filters/profiles/sparkplug/codec.ts'
import { SPARKPLUG_POLICIES } from '../../filters/profiles/sparkplug/testing.ts'
import { connect, tempDir } from '../helpers/gateway.ts'
import { until } from '../helpers/poll.ts'
import { findMosquitto, startMosquitto, type Mosquitto } from '../helpers/mosquitto.ts'
import { builtinPlugins } from '../../gateway/src/builtins.ts'

const binary = findMosquitto()
const FIXTURES = join(import.meta.dirname, '../fixtures/sparkplug')
const fixture = (name: string): Buffer => readFileSync(join(FIXTURES, `benthos_umh_${name}.bin`))

describe.skipIf(binary === undefined)('protobuf and Sparkplug B end to end', () => {
  let mosquitto: Mosquitto
  let gateway: Gateway
  let dir: { path: string; remove(): void }
  const clients: MqttClient[] = []

  beforeAll(async () => {
    mosquitto = await startMosquitto(binary as string)
    dir = tempDir()
    const configFile = join(dir.path, 'veil.yaml')
    writeFileSync(
      configFile,
      [
        `domains: { svc: { upstream: { url: "${mosquitto.url}", protocolVersion: 5 } } }`,
        'encoding: { svc: protobuf }',
        'sparkplug: { category: smart_plug, maxEdgeNodes: 100 }',
        '',
      ].join('\n'),
    )
    const config = resolveConfig(builtinPlugins, {
      config: configFile,
      allowAnonymous: true,
      listen: 'mqtt://127.0.0.1:0',
      http: '127.0.0.1:0',
      dataDir: dir.path,
      policies: SPARKPLUG_POLICIES,
    })
    gateway = await Gateway.start(config, builtinPlugins, silentLogger())
    await until(() => gateway.readiness().ready, { timeoutMs: 10_000, what: 'upstream connected' })
  })

  afterAll(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => {})))
    await gateway?.close(1000)
    await mosquitto?.stop()
    dir?.remove()
  })

  it('forwards re-encoded Sparkplug B and Filtered protobuf with MQTT 5 content types, and drops malformed protobuf', async () => {
    const upstream: IPublishPacket[] = []
    const consumer = await connect(mosquitto.url, { protocolVersion: 5 })
    clients.push(consumer)
    consumer.on('message', (_topic, _payload, packet) => upstream.push(packet))
    await consumer.subscribeAsync('veil/#', { qos: 1 })
    const local: { topic: string; payload: Buffer }[] = []
    const localConsumer = await connect(`mqtt://127.0.0.1:${gateway.broker.address.port}`)
    clients.push(localConsumer)
    localConsumer.on('message', (topic, payload) => local.push({ topic, payload }))
    await localConsumer.subscribeAsync('veil/#', { qos: 1 })

    const device = await connect(`mqtt://127.0.0.1:${gateway.broker.address.port}`)
    clients.push(device)
    await device.publishAsync('spBv1.0/PlantA/NDATA/Edge1', fixture('NDATA_BEFORE_BIRTH'), { qos: 1 })
    await device.publishAsync('spBv1.0/PlantA/NBIRTH/Edge1', fixture('NBIRTH_V1'), { qos: 1 })
    await device.publishAsync('spBv1.0/PlantA/NDATA/Edge1', fixture('NDATA_V1'), { qos: 1 })
    await device.publishAsync('spBv1.0/PlantA/NDATA/Edge1', Buffer.from([0x12, 0xff, 0xff, 0xff, 0xff, 0x07]), {
      qos: 1,
    })
    const energy = protoType('veil.canonical.v1.SmartPlugEnergy')
      .encode({ ts: 1772366400, total_kwh: 3.5, voltage_v: 231 })
      .finish()
    await device.publishAsync('devices/smart_plug/plug-7/energy/pb', Buffer.from(energy), { qos: 1 })

    await until(() => upstream.length >= 3 && local.length >= 3, {
      timeoutMs: 10_000,
      what: 'three forwarded messages',
    })
    const byStream = new Map(upstream.map((p) => [p.topic.split('/').at(-1), p]))
    expect([...byStream.keys()].sort()).toEqual(['energy', 'nbirth', 'ndata'])

    const ndata = byStream.get('ndata') as IPublishPacket
    expect(ndata.properties?.contentType).toBe(SPARKPLUG_CONTENT_TYPE)
    expect(ndata.properties?.userProperties?.['veil-policy']).toBe(gateway.policyVersion)
    const sp = sparkplugPayloadType()
    expect(sp.toObject(sp.decode(ndata.payload as Buffer), { longs: Number, defaults: false })).toMatchObject({
      seq: 1,
      metrics: [{ name: 'Temperature', double_value: 22.5 }],
    })
    // The same bytes on the local filtered namespace; no name of the group or edge node in any topic.
    expect(local.find((m) => m.topic === ndata.topic)?.payload.equals(ndata.payload as Buffer)).toBe(true)
    for (const p of upstream) expect(p.topic).not.toMatch(/PlantA|Edge1|plug-7/i)

    const filtered = byStream.get('energy') as IPublishPacket
    expect(filtered.properties?.contentType).toBe(FILTERED_CONTENT_TYPE)
    const f = protoType('veil.v1.Filtered')
    const decoded = f.toObject(f.decode(filtered.payload as Buffer), { defaults: false }) as {
      policy: string
      data: { structValue: { fields: Record<string, unknown> } }
    }
    expect(decoded.policy).toBe(gateway.policyVersion)
    expect(Object.keys(decoded.data.structValue.fields).sort()).toEqual(['total_kwh', 'ts'])

    const metrics = await (await fetch(`http://127.0.0.1:${gateway.http.address.port}/metrics`)).text()
    expect(metrics).toMatch(/veil_messages_dropped_total\{stage="decode",category="smart_plug",reason="no_birth"\} 1/)
    expect(metrics).toMatch(
      /veil_messages_dropped_total\{stage="decode",category="smart_plug",reason="undecodable"\} 1/,
    )
    expect(metrics).toMatch(/veil_sparkplug_events_total\{event="birth"\} 1/)
  })
})
