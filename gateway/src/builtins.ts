/**
 * The composition root: the one place the gateway names its shipped plug-ins. The CLI passes these to the core;
 * tests and benchmarks may pass these or their own.
 */
import { builtinOperators } from '../../filters/operators/index.ts'
import { builtinProfiles, configSections, configurableProfiles } from '../../filters/profiles/index.ts'
import type { Plugins } from './plugins.ts'

export const builtinPlugins: Plugins = {
  operators: builtinOperators,
  profiles: builtinProfiles,
  configurableProfiles,
  configSections,
}
