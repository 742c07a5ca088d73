/**
 * A CONNECT written by hand on a plain socket, for what mqtt.js refuses to send (an empty client id with a
 * persistent session; its encoder mqtt-packet refuses too) and for timing the CONNACK exactly.
 */
import { connect as netConnect } from 'node:net'

export interface RawConnectResult {
  /** The CONNACK return code, or undefined when the broker closed (or timed out) without one. */
  returnCode: number | undefined
  closed: boolean
  ms: number
}

export function rawConnect(
  port: number,
  options: { clientId: string; clean: boolean; username?: string; password?: string },
  timeoutMs = 5000,
): Promise<RawConnectResult> {
  const packet = connectPacket(options)
  const t0 = Date.now()
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port })
    let data = Buffer.alloc(0)
    let returnCode: number | undefined
    let done = false
    const finish = (closed: boolean): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ returnCode, closed, ms: Date.now() - t0 })
    }
    const timer = setTimeout(() => finish(false), timeoutMs)
    socket.on('connect', () => socket.write(packet))
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk])
      if (returnCode === undefined && data.length >= 4 && data[0] === 0x20 && data[1] === 0x02) {
        returnCode = data[3] as number
        if (returnCode === 0) finish(false)
      }
    })
    socket.on('error', () => {})
    socket.on('close', () => finish(true))
  })
}

/** MQTT 3.1.1 CONNECT (section 3.1): flags for user name, password and clean session; keep-alive 30 s. */
export function connectPacket(o: { clientId: string; clean: boolean; username?: string; password?: string }): Buffer {
  const str = (text: string): Buffer => {
    const b = Buffer.from(text, 'utf8')
    return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b])
  }
  const flags = (o.username === undefined ? 0 : 0x80) | (o.password === undefined ? 0 : 0x40) | (o.clean ? 0x02 : 0)
  const body = Buffer.concat([
    str('MQTT'),
    Buffer.from([0x04, flags, 0x00, 0x1e]),
    str(o.clientId),
    ...(o.username === undefined ? [] : [str(o.username)]),
    ...(o.password === undefined ? [] : [str(o.password)]),
  ])
  return Buffer.concat([Buffer.from([0x10, ...varint(body.length)]), body])
}

/** MQTT's variable byte integer (the remaining length of a fixed header). */
export function varint(n: number): number[] {
  const out: number[] = []
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    out.push(byte)
  } while (n > 0)
  return out
}
