/**
 * The load generator and consumer of section (b), run as a child process of its own so that neither shares an
 * event loop with the broker under test. Devices are raw TCP connections writing pre-encoded MQTT PUBLISH packets
 * (only the sequence number and the packet id are patched per message); the consumer is a raw MQTT subscriber.
 * Send and receive times come from one clock (this process's performance.now()).
 *
 * Usage: node --import tsx bench/loadgen.ts '<LoadConfig as JSON>'; prints one line of JSON (LoadResult).
 */
import { connect, type Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'

export interface Endpoint {
  readonly host: string
  readonly port: number
}

export interface LoadConfig {
  readonly devices: Endpoint
  readonly consumer: Endpoint
  readonly subscribe: string
  readonly qos: 0 | 1
  /** One pre-encoded message per device connection: topic and a payload that holds the marker once. */
  readonly messages: readonly { readonly topic: string; readonly payload: string }[]
  /** Messages per second over all connections; 0 sends flat out. */
  readonly rate: number
  readonly warmupMs: number
  readonly durationMs: number
  /** Unacknowledged QoS 1 publishes per device connection. */
  readonly window: number
  /** How long at most to wait for stragglers after the last send (it ends sooner once a second passes quietly). */
  readonly settleMs: number
  /** Sequence numbers of this run start here, so a straggler of an earlier run against the same target is ignored. */
  readonly seqBase: number
}

export interface LoadResult {
  readonly sent: number
  readonly received: number
  readonly lost: number
  readonly duplicates: number
  readonly measuredMs: number
  readonly sentPerSec: number
  readonly receivedPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  /** Sends the fixed rate asked for but a full QoS 1 window refused (the target could not keep up). */
  readonly behind: number
  /** The generator's own CPU time (user + system) over the whole run, ms: it must stay far from saturating a core. */
  readonly cpuMs: number
}

/** `benchq` + 8 letters a..j (the decimal digits of the sequence number): no privacy scanner sees a number in it. */
export const MARKER = 'benchq'
export const MARKER_PLACEHOLDER = `${MARKER}aaaaaaaa`
const SEQ_WIDTH = 8
/** Sequence numbers one run may use; seqBase + MAX_SEQ stays below 10^8 (8 marker letters) for 24 runs. */
export const MAX_SEQ = 4_000_000
const A = 0x61

function writeSeq(buf: Buffer, offset: number, seq: number): void {
  for (let i = SEQ_WIDTH - 1; i >= 0; i--) {
    buf[offset + i] = A + (seq % 10)
    seq = Math.floor(seq / 10)
  }
}

function readSeq(buf: Buffer, offset: number): number {
  let seq = 0
  for (let i = 0; i < SEQ_WIDTH; i++) {
    const d = (buf[offset + i] ?? 0) - A
    if (d < 0 || d > 9) return -1
    seq = seq * 10 + d
  }
  return seq
}

function open(
  endpoint: Endpoint,
  clientId: string,
): Promise<{ socket: Socket; parser: ReturnType<typeof mqttPacket.parser> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(endpoint)
    socket.setNoDelay(true)
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    const timer = setTimeout(
      () => reject(new Error(`${clientId}: no CONNACK from ${endpoint.host}:${endpoint.port} within 10 s`)),
      10_000,
    )
    socket.once('error', (err) => reject(err))
    socket.on('data', (chunk) => parser.parse(chunk))
    parser.once('packet', (packet) => {
      clearTimeout(timer)
      if (packet.cmd !== 'connack' || packet.returnCode !== 0)
        reject(new Error(`${clientId}: refused (${JSON.stringify(packet)})`))
      else resolve({ socket, parser })
    })
    socket.write(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clientId,
        clean: true,
        keepalive: 0,
      }),
    )
  })
}

interface Device {
  readonly socket: Socket
  readonly template: Buffer
  readonly seqOffset: number
  /** Offset of the packet id in the template (QoS 1), -1 for QoS 0. */
  readonly idOffset: number
  inflight: number
  nextId: number
  blocked: boolean
}

/** The template PUBLISH for one device, with the offsets of the marker's digits and of the packet id. */
function template(topic: string, payload: string, qos: 0 | 1): { packet: Buffer; seqOffset: number; idOffset: number } {
  const body = Buffer.from(payload)
  const packet = mqttPacket.generate({
    cmd: 'publish',
    topic,
    payload: body,
    qos,
    retain: false,
    dup: false,
    messageId: qos === 1 ? 1 : undefined,
  })
  const payloadStart = packet.length - body.length
  const marker = body.indexOf(MARKER_PLACEHOLDER)
  if (marker < 0) throw new Error(`the payload for ${topic} has no ${MARKER_PLACEHOLDER}`)
  return { packet, seqOffset: payloadStart + marker + MARKER.length, idOffset: qos === 1 ? payloadStart - 2 : -1 }
}

export async function runLoad(config: LoadConfig): Promise<LoadResult> {
  const cpuAtStart = process.cpuUsage()
  const sendTime = new Float64Array(MAX_SEQ)
  const seen = new Uint8Array(MAX_SEQ)
  const latencies = new Float64Array(MAX_SEQ)
  let latencyCount = 0
  let received = 0
  let lastReceipt = 0
  let receivedInWindow = 0
  let duplicates = 0
  let measureFrom = Number.POSITIVE_INFINITY
  let measureTo = Number.POSITIVE_INFINITY
  let firstMeasuredSeq = Number.POSITIVE_INFINITY
  let lastMeasuredSeq = -1
  const markerBytes = Buffer.from(MARKER)

  const consumer = await open(config.consumer, `bench-consumer-${process.pid}`)
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no SUBACK within 10 s')), 10_000)
    consumer.parser.once('packet', (packet) => {
      clearTimeout(timer)
      if (packet.cmd === 'suback') resolve()
      else reject(new Error(`expected SUBACK, got ${packet.cmd}`))
    })
    consumer.socket.write(
      mqttPacket.generate({
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: [{ topic: config.subscribe, qos: config.qos }],
      }),
    )
  })
  consumer.parser.on('packet', (packet) => {
    if (packet.cmd !== 'publish') return
    const now = performance.now()
    if (packet.qos === 1 && packet.messageId !== undefined)
      consumer.socket.write(Buffer.from([0x40, 0x02, packet.messageId >> 8, packet.messageId & 0xff]))
    const payload = packet.payload as Buffer
    const at = payload.indexOf(markerBytes)
    const seq = at < 0 ? -1 : readSeq(payload, at + MARKER.length) - config.seqBase
    if (seq < 0 || seq >= MAX_SEQ) return
    lastReceipt = now
    if (seen[seq] === 1) {
      duplicates++
      return
    }
    seen[seq] = 1
    received++
    if (now >= measureFrom && now <= measureTo) receivedInWindow++
    if (seq >= firstMeasuredSeq && (lastMeasuredSeq < 0 || seq <= lastMeasuredSeq))
      latencies[latencyCount++] = now - (sendTime[seq] as number)
    // QoS 0 flat out: a receipt frees a place in the end-to-end window.
    if (config.qos === 0 && config.rate === 0 && sending) fill(devices[received % devices.length] as Device)
  })

  const devices: Device[] = []
  for (const [i, message] of config.messages.entries()) {
    const { socket, parser } = await open(config.devices, `bench-device-${process.pid}-${i}`)
    const t = template(message.topic, message.payload, config.qos)
    const device: Device = {
      socket,
      template: t.packet,
      seqOffset: t.seqOffset,
      idOffset: t.idOffset,
      inflight: 0,
      nextId: 1,
      blocked: false,
    }
    parser.on('packet', (packet) => {
      if (packet.cmd === 'puback') {
        device.inflight--
        if (config.rate === 0 && sending) fill(device)
      }
    })
    socket.on('drain', () => {
      device.blocked = false
      if (config.rate === 0 && sending) fill(device)
    })
    socket.on('error', () => {})
    devices.push(device)
  }

  let seq = 0
  let sending = true
  let behind = 0
  /** Writes `count` messages to one device's socket in one write; false when TCP pushes back or the window is full. */
  const send = (device: Device, count: number): number => {
    if (config.qos === 1) count = Math.min(count, config.window - device.inflight)
    count = Math.min(count, MAX_SEQ - seq)
    if (count <= 0 || device.blocked) return 0
    const size = device.template.length
    const batch = Buffer.allocUnsafe(size * count)
    const now = performance.now()
    for (let k = 0; k < count; k++) {
      const offset = k * size
      device.template.copy(batch, offset)
      writeSeq(batch, offset + device.seqOffset, config.seqBase + seq)
      sendTime[seq] = now
      seq++
      if (device.idOffset >= 0) {
        batch.writeUInt16BE(device.nextId, offset + device.idOffset)
        device.nextId = device.nextId === 0xffff ? 1 : device.nextId + 1
      }
    }
    if (config.qos === 1) device.inflight += count
    if (!device.socket.write(batch)) device.blocked = true
    return count
  }
  /**
   * Flat out: QoS 1 keeps each device's PUBACK window full. QoS 0 has no acknowledgement, so the window is end to
   * end: at most devices x window messages sent and not yet received. Writing until TCP pushes back instead would
   * measure the kernel's socket buffers (seconds of backlog), not the broker. A message not received within a
   * quiet half second is written off as lost so that a dropping target cannot stall the generator.
   */
  let writtenOff = 0
  const e2eWindow = config.window * config.messages.length
  const fill = (device: Device): void => {
    if (config.qos === 1) {
      send(device, config.window - device.inflight)
      return
    }
    const room = e2eWindow - (seq - received - writtenOff)
    if (room > 0) send(device, Math.min(room, config.window))
  }

  const started = performance.now()
  measureFrom = started + config.warmupMs
  measureTo = measureFrom + config.durationMs
  let seqAtMeasureStart = -1
  const markStart = setTimeout(() => {
    seqAtMeasureStart = seq
    firstMeasuredSeq = seq
  }, config.warmupMs)
  if (config.rate === 0) {
    for (const device of devices) fill(device)
    // QoS 0 never gets an ack: refill on a short timer as well as on 'drain'.
    const refill = setInterval(() => {
      if (config.qos !== 0) return
      if (seq - received - writtenOff >= e2eWindow && performance.now() - lastReceipt > 500) writtenOff = seq - received
      for (const device of devices) fill(device)
    }, 1)
    await new Promise((r) => setTimeout(r, config.warmupMs + config.durationMs))
    clearInterval(refill)
  } else {
    let due = 0
    let next = 0
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const elapsed = performance.now() - started
        if (elapsed >= config.warmupMs + config.durationMs) return resolve()
        const target = Math.floor((config.rate * elapsed) / 1000)
        while (due < target) {
          // Round robin over the devices, one message each, as independent devices would send.
          const device = devices[next++ % devices.length] as Device
          if (send(device, 1) === 0) behind++
          due++
        }
        setImmediate(tick)
      }
      tick()
    })
  }
  clearTimeout(markStart)
  sending = false
  lastMeasuredSeq = seq - 1
  const sentInWindow = seqAtMeasureStart < 0 ? 0 : seq - seqAtMeasureStart
  const totalSent = seq
  const stopped = performance.now()
  const deadline = stopped + config.settleMs
  for (;;) {
    const now = performance.now()
    if (received >= totalSent || now > deadline || now - Math.max(lastReceipt, stopped) > 1000) break
    await new Promise((r) => setTimeout(r, 20))
  }

  for (const device of devices) device.socket.destroy()
  consumer.socket.destroy()
  const sorted = latencies.subarray(0, latencyCount).sort()
  const q = (p: number): number =>
    latencyCount === 0 ? Number.NaN : (sorted[Math.min(latencyCount - 1, Math.floor(p * latencyCount))] as number)
  const seconds = config.durationMs / 1000
  return {
    sent: totalSent,
    received,
    lost: totalSent - received,
    duplicates,
    measuredMs: config.durationMs,
    sentPerSec: Math.round(sentInWindow / seconds),
    receivedPerSec: Math.round(receivedInWindow / seconds),
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    maxMs: latencyCount === 0 ? Number.NaN : (sorted[latencyCount - 1] as number),
    behind,
    cpuMs: Math.round((process.cpuUsage(cpuAtStart).user + process.cpuUsage(cpuAtStart).system) / 1000),
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const config = JSON.parse(process.argv[2] ?? '{}') as LoadConfig
  runLoad(config).then(
    (result) => {
      process.stdout.write(`${JSON.stringify(result)}\n`)
      process.exit(0)
    },
    (err: Error) => {
      process.stderr.write(`loadgen: ${err.message}\n`)
      process.exit(1)
    },
  )
}
