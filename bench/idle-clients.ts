/**
 * Section (d)'s clients, in a child process: opens `count` MQTT connections (raw CONNECT, keepalive 0, so the
 * broker has no timer per connection to serve), prints one JSON line once all are acknowledged, then holds them
 * idle until it is killed.
 *
 * Usage: node --import tsx bench/idle-clients.ts '{"host":"127.0.0.1","port":1884,"count":10000}'
 */
import { connect, type Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'

interface IdleConfig {
  readonly host: string
  readonly port: number
  readonly count: number
}

const CONCURRENCY = 200
const config = JSON.parse(process.argv[2] ?? '{}') as IdleConfig
const sockets: Socket[] = []
let connected = 0
let failed = 0

function one(i: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host: config.host, port: config.port })
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    const timer = setTimeout(() => done(false), 20_000)
    let settled = false
    function done(ok: boolean): void {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (ok) connected++
      else {
        failed++
        socket.destroy()
      }
      resolve()
    }
    socket.on('data', (chunk) => parser.parse(chunk))
    socket.on('error', () => done(false))
    parser.once('packet', (packet) => done(packet.cmd === 'connack' && packet.returnCode === 0))
    socket.write(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clientId: `bench-idle-${process.pid}-${i}`,
        clean: true,
        keepalive: 0,
      }),
    )
    sockets.push(socket)
  })
}

const started = performance.now()
let next = 0
await Promise.all(
  Array.from({ length: Math.min(CONCURRENCY, config.count) }, async () => {
    while (next < config.count) await one(next++)
  }),
)
process.stdout.write(`${JSON.stringify({ connected, failed, ms: Math.round(performance.now() - started) })}\n`)
// Held open until the suite kills this process.
setInterval(() => {}, 60_000)
