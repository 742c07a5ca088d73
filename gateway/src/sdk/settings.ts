/**
 * Profile-declared settings: a profile whose topics are a local convention declares its key under the
 * configuration's `profiles` section, the JSON Schema of that section and how one setting becomes its definition,
 * so that the core's configuration reader and profiles/configured.ts name no profile.
 */
import type { PatternRules } from './topics.ts'
import type { JsonSchema, ProfileDefinition } from './profile.ts'

export interface ProfileSettingsDeclaration {
  /** The profile it rebuilds, and its key under `profiles` (`gpsd`, `traccar`, `zigbee2mqtt`). */
  readonly name: string
  /** The JSON Schema of `profiles.<name>`, merged into schemas/gateway.config.schema.json when it is compiled. */
  readonly schema: JsonSchema
  /** The one setting that rebuilds the profile (`topics`, `baseTopic`); problems are reported at its path. */
  readonly setting: string
  /** For a list of topic patterns: the rules each must follow, checked one by one so a problem names its index. */
  readonly topicRules?: PatternRules
  /** The profile for that setting's (schema-valid) value; throws with the problem. */
  build(value: unknown): ProfileDefinition
}

export function defineProfileSettings(declaration: ProfileSettingsDeclaration): ProfileSettingsDeclaration {
  return declaration
}
