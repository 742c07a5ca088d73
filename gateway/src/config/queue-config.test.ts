import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { resolveConfig } from './config.ts'
import { builtinPlugins } from '../builtins.ts'

const dir = mkdtempSync(join(tmpdir(), 'veil-queue-config-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function fileWith(name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

describe('queue and reconnect configuration', () => {
  it('defaults: 256 MiB per upstream, camera 72 h and the other categories 24 h, fsync every second, backoff 0.5 to 30 s', () => {
    const config = resolveConfig(builtinPlugins, {})
    expect(config.queue).toEqual({
      maxBytes: 256 * 1024 * 1024,
      segmentBytes: 4 * 1024 * 1024,
      ttlSeconds: { smart_plug: 86400, camera: 259200, robot_vacuum: 86400, body_scale: 86400, gps_tracker: 86400 },
      fsync: 'interval',
      fsyncIntervalMs: 1000,
      flowControl: true,
    })
    expect(config.reconnect).toEqual({ minMs: 500, maxMs: 30000 })
  })

  it('a file overrides single keys and keeps the other defaults', () => {
    const config = resolveConfig(builtinPlugins, {
      config: fileWith(
        'ok.yaml',
        'queue:\n  fsync: always\n  flowControl: false\n  ttlSeconds: { camera: 3600 }\nreconnect: { maxMs: 5000 }\n',
      ),
    })
    expect(config.queue.fsync).toBe('always')
    expect(config.queue.flowControl).toBe(false)
    expect(config.queue.ttlSeconds).toEqual({
      smart_plug: 86400,
      camera: 3600,
      robot_vacuum: 86400,
      body_scale: 86400,
      gps_tracker: 86400,
    })
    expect(config.reconnect).toEqual({ minMs: 500, maxMs: 5000 })
  })

  it('names the file and the path of a bad value', () => {
    const bad = fileWith('bad.yaml', 'queue:\n  fsync: sometimes\n  ttlSeconds: { lamp: 10 }\n')
    expect(() => resolveConfig(builtinPlugins, { config: bad })).toThrow(new RegExp(`${bad}: /queue/fsync: `))
    expect(() => resolveConfig(builtinPlugins, { config: bad })).toThrow(/\/queue\/ttlSeconds/)
    const inverted = fileWith('inverted.yaml', 'reconnect: { minMs: 9000, maxMs: 1000 }\n')
    expect(() => resolveConfig(builtinPlugins, { config: inverted })).toThrow(
      `${inverted}: /reconnect: minMs (9000) must not exceed maxMs (1000)`,
    )
  })
})
