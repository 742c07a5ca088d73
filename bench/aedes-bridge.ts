/**
 * The unfiltered baseline of section (b): a plain aedes 1.x broker whose every device publish is bridged to the
 * upstream by an mqtt.js client, at the device's QoS, with no classification or filtering. Veil minus Veil.
 *
 * Usage: node --import tsx bench/aedes-bridge.ts <port> <upstream url>; prints `ready` once both sides are up.
 */
import { createServer } from 'node:net'
import { Aedes } from 'aedes'
import mqtt from 'mqtt'

const port = Number(process.argv[2])
const upstreamUrl = process.argv[3] ?? ''
const upstream = mqtt.connect(upstreamUrl, {
  protocolVersion: 5,
  clientId: `bench-aedes-bridge-${process.pid}`,
  clean: true,
  reconnectPeriod: 1000,
})
const aedes = await Aedes.createBroker({ id: 'bench-aedes' })
aedes.on('publish', (packet, client) => {
  // Only device publishes (aedes' own $SYS heartbeats have no client).
  if (client === null) return
  upstream.publish(packet.topic, packet.payload as Buffer, { qos: packet.qos === 0 ? 0 : 1, retain: false })
})
const server = createServer(aedes.handle)
await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
await new Promise<void>((resolve) => (upstream.connected ? resolve() : upstream.once('connect', () => resolve())))
process.stdout.write('ready\n')
process.on('SIGTERM', () => {
  server.close()
  upstream.end(true)
  aedes.close(() => process.exit(0))
})
