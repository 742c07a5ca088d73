import type { OperatorDefinition } from './sdk/operator.ts'
import type { ProfileDefinition } from './sdk/profile.ts'
import type { ConfigSectionDeclaration, ProfileSettingsDeclaration } from './sdk/settings.ts'

/**
 * The operator and profile registries the core runs with. The core never imports a plug-in: the composition root
 * (gateway/src/builtins.ts for the shipped ones, a test for its own) hands them to the config loader and
 * Gateway.start, so a new operator or profile is added there and nowhere in the core.
 */
export interface Plugins {
  /** Operators a policy may name after its allowlist (`allow` is the core's own first step, never listed). */
  readonly operators: readonly OperatorDefinition[]
  /** Device profiles, with their default settings. */
  readonly profiles: readonly ProfileDefinition[]
  /** The profiles the configuration's `profiles` section can rebuild, in the order their settings are checked. */
  readonly configurableProfiles: readonly ProfileSettingsDeclaration[]
  /** Top-level configuration sections that profiles declare (`sparkplug:`), applied to the profile set at load. */
  readonly configSections: readonly ConfigSectionDeclaration[]
}
