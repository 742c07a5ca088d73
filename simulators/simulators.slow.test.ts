/**
 * The simulators' pacing on the real clock: a run at a given rate for a given duration publishes about that many
 * messages in about that time. A busy machine stretches both, so this runs in the slow project.
 */
import { createServer, type AddressInfo, type Server } from 'node:net'
import { Aedes } from 'aedes'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { runSimulators } from './index.ts'
import { until } from '../test/helpers/poll.ts'

describe('runSimulators on the clock', () => {
  let broker: Aedes
  let server: Server
  let url: string
  const received: string[] = []

  beforeEach(async () => {
    received.length = 0
    broker = await Aedes.createBroker()
    broker.on('publish', (packet, client) => {
      if (client !== null) received.push(packet.topic)
    })
    server = createServer(broker.handle)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  afterEach(async () => {
    await new Promise<void>((resolve) => broker.close(() => resolve()))
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })

  it('paces publishes to the requested rate and stops after durationMs', async () => {
    const started = performance.now()
    const { published } = await runSimulators({
      url,
      profiles: ['tasmota', 'owntracks'],
      devices: 2,
      ratePerSecond: 40,
      durationMs: 600,
    }).done
    const elapsed = performance.now() - started
    expect(elapsed).toBeGreaterThanOrEqual(550)
    expect(elapsed).toBeLessThan(5_000)
    expect(published).toBeGreaterThan(5)
    // 40/s over at most ~0.6 s of publishing, plus the first immediate slot
    expect(published).toBeLessThanOrEqual(26)
    await until(() => received.length >= published, {
      timeoutMs: 2_000,
      what: `the broker to see all ${published} publishes`,
    })
    expect(received).toHaveLength(published)
  })
})
