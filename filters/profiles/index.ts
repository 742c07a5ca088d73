import type { ProfileDefinition } from '../../gateway/src/profiles/types.ts'
import canonical from './canonical/index.ts'
import frigate from './frigate/index.ts'
import miscale from './miscale/index.ts'
import owntracks from './owntracks/index.ts'
import tasmota from './tasmota/index.ts'
import valetudo from './valetudo/index.ts'

/** Every device profile Veil recognises out of the box. */
export const builtinProfiles: readonly ProfileDefinition[] = [tasmota, frigate, valetudo, miscale, owntracks, ...canonical]
