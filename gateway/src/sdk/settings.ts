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

/**
 * A profile's top-level configuration section (Sparkplug B's `sparkplug:`, at the top level so that existing
 * configurations keep working): its settings with the defaults filled in, and the profile set as they configure it.
 * Its JSON Schema stays in schemas/gateway.config.schema.json, where its place keeps the order of load errors.
 */
export interface ConfigSectionDeclaration<Settings = unknown> {
  /** The top-level configuration key; also the key under which codecs get the settings (StreamCodec.settingsKey). */
  readonly key: string
  /** The settings for the (schema-valid) section, or for none: every default filled in. */
  resolve(section: unknown): Settings
  /** The profile set with this profile as the settings configure it, in place of the built-in one. */
  profiles(profiles: readonly ProfileDefinition[], settings: Settings): readonly ProfileDefinition[]
}

export function defineConfigSection<Settings>(
  declaration: ConfigSectionDeclaration<Settings>,
): ConfigSectionDeclaration<Settings> {
  return declaration
}
