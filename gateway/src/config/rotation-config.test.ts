import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { keyPoliciesOf, resolveConfig } from './config.ts'
import { builtinPlugins } from '../builtins.ts'

const dir = mkdtempSync(join(tmpdir(), 'veil-rotation-config-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function configFile(name: string, text: string): string {
  const file = join(dir, name)
  writeFileSync(file, text)
  return file
}

describe('rotation in the configuration', () => {
  it('defaults to ana and 3p every 30 days and svc never', () => {
    const config = resolveConfig(builtinPlugins, { dataDir: dir })
    expect([...config.domains].map(([d, c]) => [d, c.epochSeconds])).toEqual([
      ['svc', 0],
      ['ana', 2_592_000],
      ['3p', 2_592_000],
    ])
  })

  it('passes the gap and per-category settings to the keyring, and keeps them beside an --upstream flag', () => {
    const file = configFile(
      'ok.yaml',
      'domains:\n  ana:\n    epochSeconds: 604800\n    rotationGapSeconds: 3600\n    categories:\n      camera: { epochSeconds: 86400, rotationGapSeconds: 600 }\n',
    )
    const config = resolveConfig(builtinPlugins, { config: file, dataDir: dir, upstreams: ['ana=mqtt://127.0.0.1:1'] })
    expect(keyPoliciesOf(config).get('ana')).toEqual({
      epochSeconds: 604_800,
      rotationGapSeconds: 3600,
      categories: { camera: { epochSeconds: 86_400, rotationGapSeconds: 600 } },
    })
  })

  it('refuses a gap over half the epoch, naming the file and the JSON path', () => {
    const file = configFile(
      'bad.yaml',
      'domains:\n  3p:\n    categories:\n      gps_tracker: { rotationGapSeconds: 50000 }\n',
    )
    expect(() => resolveConfig(builtinPlugins, { config: file, dataDir: dir })).toThrow(
      new RegExp(`${file}.*/domains/3p/categories/gps_tracker/rotationGapSeconds.*half of the epoch \\(86400 s\\)`),
    )
    const unknown = configFile(
      'unknown.yaml',
      'domains:\n  ana:\n    categories:\n      toaster: { epochSeconds: 60 }\n',
    )
    expect(() => resolveConfig(builtinPlugins, { config: unknown, dataDir: dir })).toThrow(
      /toaster|propertyName|categories/,
    )
  })
})
