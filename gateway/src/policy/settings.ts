import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import type { OperatorDefinition } from '../sdk/operator.ts'

/**
 * Operator settings are checked with `useDefaults`, so the `default` of each property in an operator's configSchema
 * is the one place that default lives: compile receives the settings with every default filled in and repeats none
 * of them. Otherwise the options are the policy documents' (the same error texts). ajv fills defaults only where
 * the object exists and not inside oneOf/anyOf, so a nested object needs `default: {}` on its parent property.
 */
const settingsAjv = new Ajv({ allErrors: true, allowUnionTypes: true, strict: false, useDefaults: true })
const validators = new WeakMap<OperatorDefinition, ValidateFunction>()

/** On errors, `settings` still has the defaults filled in wherever the schema has them (for the time-floor check). */
export type OperatorSettings =
  | { readonly ok: true; readonly settings: unknown }
  | { readonly ok: false; readonly errors: readonly ErrorObject[]; readonly settings: unknown }

/**
 * An operator item's settings (after variable substitution) validated and completed with the schema's defaults.
 * No settings (`- downsample:` is null) are `{}`, which still gets every default.
 */
export function operatorSettings(definition: OperatorDefinition, config: unknown): OperatorSettings {
  let validate = validators.get(definition)
  if (validate === undefined) {
    validate = settingsAjv.compile(definition.configSchema)
    validators.set(definition, validate)
  }
  // ajv writes the defaults into what it checks: a copy keeps the policy document (which `veil policy check`
  // describes) and the configuration's variables as they were written.
  const settings = config === undefined || config === null ? {} : structuredClone(config)
  if (!validate(settings)) return { ok: false, errors: validate.errors ?? [], settings }
  return { ok: true, settings }
}
