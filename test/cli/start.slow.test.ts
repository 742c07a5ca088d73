// `veil start`'s stop on the clock: SIGTERM with a device still connected ends the process within 5 s (the broker
// does not wait for the device to leave). A busy machine can stretch a process's exit, so this is in the slow
// project; start.test.ts proves the clean stop itself.
import mqtt from 'mqtt'
import { describe, expect, it } from 'vitest'
import { PLUG, cliHarness, startVeil, stopVeil } from '../helpers/cli.ts'

const harness = cliHarness({ tempPrefix: 'veil-cli-start-slow-', policies: PLUG })

describe('veil start on the clock', () => {
  it('stops within 5 s on SIGTERM while a device is still connected', async () => {
    const run = await startVeil(harness, [
      '--listen',
      'mqtt://127.0.0.1:0',
      '--http',
      '127.0.0.1:0',
      '--allow-anonymous',
    ])
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${(run.started.listen as { port: number }).port}`, {
      reconnectPeriod: 0,
      connectTimeout: 5000,
    })
    try {
      const stopped = await stopVeil(run)
      expect(stopped.signal).toBeNull()
      expect(stopped.code).toBe(0)
      expect(stopped.ms).toBeLessThan(5000)
    } finally {
      client.end(true)
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL')
    }
  }, 60_000)
})
