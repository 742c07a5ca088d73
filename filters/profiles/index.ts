import type { ProfileDefinition } from '#veil/sdk'
import canonical from './canonical/index.ts'
import doubletake from './doubletake/index.ts'
import frigate from './frigate/index.ts'
import gpsd from './gpsd/index.ts'
import miscale from './miscale/index.ts'
import omgScale from './omg_scale/index.ts'
import owntracks from './owntracks/index.ts'
import sparkplug, { sparkplugProfiles, type SparkplugProfileOptions } from './sparkplug/index.ts'
import shellyGen1 from './shelly_gen1/index.ts'
import shellyGen2 from './shelly_gen2/index.ts'
import tasmota from './tasmota/index.ts'
import traccar from './traccar/index.ts'
import valetudo from './valetudo/index.ts'
import zigbee2mqtt from './zigbee2mqtt/index.ts'

/** Every device profile Veil recognises out of the box. */
export const builtinProfiles: readonly ProfileDefinition[] = [
  tasmota,
  shellyGen1,
  shellyGen2,
  zigbee2mqtt,
  frigate,
  doubletake,
  valetudo,
  miscale,
  omgScale,
  owntracks,
  gpsd,
  traccar,
  ...canonical,
  ...sparkplug,
]

/** The built-in profiles with Sparkplug B's categories as configured (`sparkplug.category`, `sparkplug.groups`). */
export function withSparkplug(profiles: readonly ProfileDefinition[], options: SparkplugProfileOptions): readonly ProfileDefinition[] {
  return [...profiles.filter((p) => p.name !== 'sparkplug'), ...sparkplugProfiles(options)]
}
