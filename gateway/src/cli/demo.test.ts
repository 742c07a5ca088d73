import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../../../test/helpers/gateway.ts'
import { DEMO_MARKER, prepareDemoDataDir } from './demo.ts'

describe('the demo data directory', () => {
  it("discards the last run's queue in a directory the demo made, whose stand-in cloud is gone", () => {
    const dir = tempDir()
    try {
      const data = join(dir.path, 'demo')
      prepareDemoDataDir(data, false)
      expect(existsSync(join(data, DEMO_MARKER))).toBe(true)
      mkdirSync(join(data, 'queue', 'svc', 'camera'), { recursive: true })
      writeFileSync(join(data, 'queue', 'svc', 'camera', '00000001.seg'), 'leftover')
      prepareDemoDataDir(data, false)
      expect(existsSync(join(data, 'queue'))).toBe(false)
    } finally {
      dir.remove()
    }
  })

  it("refuses a directory it did not make that is not empty, so a real gateway's backlog is never thrown away", () => {
    const dir = tempDir()
    try {
      mkdirSync(join(dir.path, 'queue', 'svc'), { recursive: true })
      writeFileSync(join(dir.path, 'queue', 'svc', 'cursor'), 'x')
      expect(() => prepareDemoDataDir(dir.path, false)).toThrow(/is not empty and not a demo data directory/)
      expect(existsSync(join(dir.path, 'queue', 'svc', 'cursor'))).toBe(true)
      // A gateway's data directory before its first queue (keys and accounts only) is refused too.
      const keysOnly = join(dir.path, 'gateway')
      mkdirSync(keysOnly)
      writeFileSync(join(keysOnly, 'master.key'), 'k')
      expect(() => prepareDemoDataDir(keysOnly, false)).toThrow(/not a demo data directory/)
      expect(existsSync(join(keysOnly, DEMO_MARKER))).toBe(false)
      // The default .veil-demo is the demo's whatever an older version left in it.
      prepareDemoDataDir(dir.path, true)
      expect(existsSync(join(dir.path, 'queue'))).toBe(false)
    } finally {
      dir.remove()
    }
  })
})
