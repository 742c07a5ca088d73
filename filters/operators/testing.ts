/**
 * Test helpers for operators: a seeded PRNG and the compile env / message context the brief describes. Tests only:
 * production randomness is a CSPRNG supplied by the loader.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Keyring } from '../../gateway/src/keys/keyring.ts'
import type { CompileEnv, OperatorContext } from '#veil/sdk'
import { mulberry32 } from '../../simulators/random.ts'

/** mulberry32, uniform in [0, 1): the simulators' PRNG. Reproducible statistics, never for production noise. */
export { mulberry32 as seededRandom }

// One keyring for the whole test process, so an env and a ctx built separately derive the same secrets.
const sharedKeyring = new Keyring(Buffer.alloc(32, 1), new Map())
let sharedDataDir: string | undefined

/** A compile env with a fixed master key, a PRNG seeded with 42 and a per-process temporary data directory. */
export function compileEnv(overrides: Partial<CompileEnv> = {}): CompileEnv {
  return {
    category: 'gps_tracker',
    domain: 'svc',
    streamKey: 'x/y',
    keyring: sharedKeyring,
    random: mulberry32(42),
    get dataDir() {
      sharedDataDir ??= mkdtempSync(join(tmpdir(), 'veil-operator-test-'))
      return sharedDataDir
    },
    ...overrides,
  }
}

/** A message context for device `dev-1` in `svc` at 2025-01-01T00:00:00Z, with the same keyring as compileEnv. */
export function opContext(overrides: Partial<OperatorContext> = {}): OperatorContext {
  return {
    domain: 'svc',
    category: 'gps_tracker',
    deviceId: 'dev-1',
    nowMs: Date.UTC(2025, 0, 1),
    keyring: sharedKeyring,
    ...overrides,
  }
}
