import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { tempDir } from '../../test/helpers/gateway.ts'
import { builtinPlugins } from './builtins.ts'
import { DEFAULT_POLICIES, resolveConfig } from './config/config.ts'
import { Gateway } from './gateway.ts'
import type { Plugins } from './plugins.ts'
import { silentLogger } from './telemetry/log.ts'

const dirs: { remove(): void }[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) dir.remove()
})

function dataDir(): string {
  const dir = tempDir()
  dirs.push(dir)
  return dir.path
}

// The core knows only the registries it is handed: these show it uses them, and no builtin default behind them.
describe('the registries passed in', () => {
  it('are the profiles a configuration starts from, and the only ones its profiles section may configure', () => {
    const dir = dataDir()
    const tasmotaOnly: Plugins = {
      ...builtinPlugins,
      profiles: builtinPlugins.profiles.filter((p) => p.name === 'tasmota'),
      configurableProfiles: [],
      configSections: [],
    }
    expect(resolveConfig(tasmotaOnly, { dataDir: dir }).profiles).toBe(tasmotaOnly.profiles)
    const file = join(dir, 'veil.yaml')
    writeFileSync(file, "profiles: { gpsd: { topics: ['fleet/{id}/tpv'] } }\n")
    expect(
      resolveConfig(builtinPlugins, { config: file, dataDir: dir }).profiles.find((p) => p.name === 'gpsd')?.streams.tpv
        ?.topics,
    ).toEqual(['fleet/{id}/tpv'])
    expect(() => resolveConfig(tasmotaOnly, { config: file, dataDir: dir })).toThrow(/veil\.yaml: \/profiles: .*gpsd/)
  })

  it('are the operators the policies may name: without them the shipped policies are refused at start', async () => {
    const config = resolveConfig(builtinPlugins, {
      listen: 'mqtt://127.0.0.1:0',
      http: '127.0.0.1:0',
      dataDir: dataDir(),
      policies: DEFAULT_POLICIES,
    })
    await expect(Gateway.start(config, { operators: [] }, silentLogger())).rejects.toThrow(
      /unknown operator \w+; known: none/,
    )
  })
})
