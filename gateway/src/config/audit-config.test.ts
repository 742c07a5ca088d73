import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { builtinPlugins } from '../builtins.ts'
import { resolveConfig } from './config.ts'

const dir = mkdtempSync(join(tmpdir(), 'veil-audit-config-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function fileWith(name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

describe('audit configuration', () => {
  it('keeps rotated audit files 180 days by default; a file sets audit.retentionDays', () => {
    expect(resolveConfig(builtinPlugins, {}).audit).toEqual({ retentionDays: 180 })
    const config = resolveConfig(builtinPlugins, { config: fileWith('ok.yaml', 'audit:\n  retentionDays: 30\n') })
    expect(config.audit.retentionDays).toBe(30)
  })

  it('refuses a retention that is not a whole number of days from 1, or an unknown key, naming the file and path', () => {
    for (const [name, text, path] of [
      ['zero.yaml', 'audit: { retentionDays: 0 }\n', '/audit/retentionDays'],
      ['half.yaml', 'audit: { retentionDays: 1.5 }\n', '/audit/retentionDays'],
      ['text.yaml', 'audit: { retentionDays: "180" }\n', '/audit/retentionDays'],
      ['key.yaml', 'audit: { keepDays: 3 }\n', '/audit'],
    ] as const) {
      const file = fileWith(name, text)
      expect(() => resolveConfig(builtinPlugins, { config: file }), name).toThrow(file)
      expect(() => resolveConfig(builtinPlugins, { config: file }), name).toThrow(path)
    }
  })
})
