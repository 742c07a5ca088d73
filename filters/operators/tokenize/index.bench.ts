import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bench, describe } from 'vitest'
import { compileEnv, opContext } from '../testing.ts'
import tokenize from './index.ts'

const dataDir = mkdtempSync(join(tmpdir(), 'veil-vault-bench-'))
const env = compileEnv({ category: 'body_scale', dataDir })
const ctx = opContext({ category: 'body_scale' })
const fn = tokenize.compile({ paths: ['user.email'] }, env)
let i = 0

describe('tokenize', () => {
  bench('a known value (vault lookup)', () => {
    fn({ user: { email: 'ana.silva@example.org' }, weight: 61.2 }, ctx)
  })
  bench(
    'a new value (random token + one append to the vault file)',
    () => {
      fn({ user: { email: `user${i++}@example.org` }, weight: 61.2 }, ctx)
    },
    { iterations: 2000, time: 0 },
  )
})
