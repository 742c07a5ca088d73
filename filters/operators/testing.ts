/**
 * Test helpers for operators: a seeded PRNG and the compile env / message context the brief describes. Tests only:
 * production randomness is a CSPRNG supplied by the loader.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describeAjvError } from '../../gateway/src/config/yaml.ts'
import { Keyring } from '../../gateway/src/keys/keyring.ts'
import { operatorSettings } from '../../gateway/src/policy/settings.ts'
import type { CompileEnv, OperatorContext, OperatorDefinition, OperatorFn } from '#veil/sdk'
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

/**
 * Compiles an operator as the policy loader does: its settings checked against configSchema and completed with the
 * schema's defaults, which compile relies on. Invalid settings throw the loader's problems, `/path: problem`.
 */
export function compileOperator(
  definition: OperatorDefinition,
  config: unknown = {},
  env: CompileEnv = compileEnv(),
): OperatorFn {
  const checked = operatorSettings(definition, config)
  if (!checked.ok)
    throw new Error(checked.errors.map((e) => `${e.instancePath || '/'}: ${describeAjvError(e)}`).join('; '))
  return definition.compile(checked.settings, env)
}

/** The top-level `default` of each setting in an operator's configSchema: the settings an empty policy item gets. */
export function schemaDefaults(definition: OperatorDefinition): Record<string, unknown> {
  const properties = (definition.configSchema.properties ?? {}) as Record<string, { default?: unknown }>
  const defaults: Record<string, unknown> = {}
  for (const [key, property] of Object.entries(properties))
    if (property.default !== undefined) defaults[key] = structuredClone(property.default)
  return defaults
}

/**
 * Compiles with the schema's top-level defaults but without the schema check, for compile's own checks: it must
 * not trust a caller that skipped validation.
 */
export function compileUnchecked(
  definition: OperatorDefinition,
  config: Record<string, unknown>,
  env: CompileEnv = compileEnv(),
): OperatorFn {
  return definition.compile({ ...schemaDefaults(definition), ...config }, env)
}
