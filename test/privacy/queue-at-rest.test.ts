/**
 * The durable queue at rest (issue 16 part 1): a copy waiting for an upstream that is down is on disk only sealed.
 * A unique value in a device's payload is queued through a real gateway, then looked for in every file under the
 * data directory, in the clear and in the encodings a careless writer would use; the queue opened with the keys
 * afterwards shows the value was there to find.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { UpstreamQueue, DEFAULT_QUEUE } from '../../gateway/src/forward/queue/upstream-queue.ts'
import { loadOrCreateMasterKey } from '../../gateway/src/keys/keyring.ts'
import { SUBJECT_KEYS_FILE, SubjectKeys } from '../../gateway/src/keys/subject-keys.ts'
import { connect, startGateway, tempDir } from '../helpers/gateway.ts'
import { freePort } from '../helpers/mosquitto.ts'
import { until } from '../helpers/poll.ts'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesUnder(path) : [path]
  })
}

/** The value as plain bytes, hex (either case), URL-encoded, and base64 at each of the three alignments. */
function encodingsOf(value: string): string[] {
  const bytes = Buffer.from(value)
  const out = [value, encodeURIComponent(value), bytes.toString('hex'), bytes.toString('hex').toUpperCase()]
  for (let k = 0; k < 3; k++) {
    const enc = Buffer.concat([Buffer.alloc(k), bytes]).toString('base64')
    out.push(enc.slice(Math.ceil(k / 3) * 4, Math.floor((k + bytes.length) / 3) * 4))
  }
  return out
}

describe('the upstream queue at rest', () => {
  it('holds a queued copy only sealed: its unique payload value is in no file under the data directory', async () => {
    const data = tempDir('veil-at-rest-')
    cleanups.push(() => data.remove())
    // An upstream nobody listens on: the copy waits in the queue.
    const gw = await startGateway({ upstreams: { svc: `mqtt://127.0.0.1:${await freePort()}` }, dataDir: data.path })
    let closed = false
    cleanups.push(() => (closed ? undefined : gw.close()))
    const device = await connect(gw.url)
    cleanups.push(() => device.endAsync(true).catch(() => {}))
    const unique = '7395031864219'
    await device.publishAsync(
      'tele/tasmota_5a1e70/SENSOR',
      Buffer.from(`{"ENERGY":{"Total":12.5,"Yesterday":${unique},"Today":0.4}}`),
      { qos: 1 },
    )
    // The PUBACK came after the append reached the kernel: the copy is in a segment file now.
    await until(() => (gw.gateway.bridges.get('svc')?.pending ?? 0) >= 1, { timeoutMs: 5000, what: 'the copy queued' })
    const files = filesUnder(data.path)
    expect(files.some((f) => f.endsWith('.seg'))).toBe(true)
    for (const file of files) {
      const text = readFileSync(file).toString('latin1')
      for (const e of encodingsOf(unique)) expect(text.includes(e), `${e} in ${file}`).toBe(false)
      expect(text.includes('veil/svc/smart_plug/'), `the filtered topic in ${file}`).toBe(false)
    }
    await gw.close()
    closed = true

    // Opened with the keys, the queue hands the value out: the absence above is the encryption's, not a lost copy.
    const keys = SubjectKeys.open(data.path, loadOrCreateMasterKey(data.path))
    const queue = new UpstreamQueue(join(data.path, 'queue', 'svc'), DEFAULT_QUEUE, () => {}, Date.now, {
      keys,
      domain: 'svc',
    })
    cleanups.push(() => queue.close())
    const taken = queue.take()
    expect(taken?.message.topic).toMatch(/^veil\/svc\/smart_plug\//)
    expect(taken?.message.payload.toString()).toContain(unique)
  })

  it('a damaged subject key file stops the gateway’s start, naming the file and the entry', async () => {
    const data = tempDir('veil-at-rest-')
    cleanups.push(() => data.remove())
    const file = join(data.path, SUBJECT_KEYS_FILE)
    writeFileSync(file, '{"version":1,"keys":[{"subject":"household","id":7,"created":"x","wrapped":"AAAA"}]}', {
      mode: 0o600,
    })
    await expect(startGateway({ upstreams: { svc: 'mqtt://127.0.0.1:1' }, dataDir: data.path })).rejects.toThrow(
      `${file}: keys[0] (subject household): the wrapped key is not base64 of the expected length`,
    )
  })
})
