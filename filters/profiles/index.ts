import type { ProfileDefinition } from '../../gateway/src/profiles/types.ts'
import canonical from './canonical/index.ts'
import doubletake from './doubletake/index.ts'
import frigate from './frigate/index.ts'
import gpsd from './gpsd/index.ts'
import miscale from './miscale/index.ts'
import omgScale from './omg_scale/index.ts'
import owntracks from './owntracks/index.ts'
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
]
