/**
 * Device simulators for Veil: five real firmware profiles publishing realistic topics and payloads with planted
 * canary identifiers. `profiles` gives direct access for tests; `runSimulators` drives them against a broker.
 */
import { registry } from './registry.ts'
import type { SimulatorProfile } from './types.ts'

export { runSimulators } from './runner.ts'
export type { RunOptions, RunResult, SimulatorRun } from './runner.ts'
export type { Category, ClientIdentity, SimDevice, SimMessage, SimulatorProfile } from './types.ts'

/** By name: tasmota, frigate, valetudo, miscale, owntracks. */
export const profiles: Record<string, SimulatorProfile> = Object.fromEntries(
  Object.entries(registry).map(([name, entry]) => [name, entry.profile]),
)
