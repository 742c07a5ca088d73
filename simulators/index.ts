/**
 * Device simulators for Veil: one per device profile (twelve firmwares, Sparkplug B and the canonical layout), publishing
 * realistic topics and payloads with planted canary identifiers. `profiles` gives direct access for tests; `runSimulators` drives them against a broker.
 */
import { registry } from './registry.ts'
export { DEMO_PROFILES } from './registry.ts'
import type { SimulatorProfile } from './types.ts'

export { runSimulators } from './runner.ts'
export type { RunOptions, RunResult, SimulatorRun } from './runner.ts'
export type { Category, ClientIdentity, SimDevice, SimMessage, SimulatorProfile } from './types.ts'

/** By name, the same names as the device profiles in `filters/profiles/`. */
export const profiles: Record<string, SimulatorProfile> = Object.fromEntries(
  Object.entries(registry).map(([name, entry]) => [name, entry.profile]),
)
