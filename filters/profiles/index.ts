import type { ConfigSectionDeclaration, ProfileDefinition, ProfileSettingsDeclaration } from '#veil/sdk'
import canonical from './canonical/index.ts'
import doubletake from './doubletake/index.ts'
import frigate from './frigate/index.ts'
import gpsd, { settings as gpsdSettings } from './gpsd/index.ts'
import miscale from './miscale/index.ts'
import omgScale from './omg_scale/index.ts'
import owntracks from './owntracks/index.ts'
import sparkplug from './sparkplug/index.ts'
import { sparkplugSettings } from './sparkplug/settings.ts'
import shellyGen1 from './shelly_gen1/index.ts'
import shellyGen2 from './shelly_gen2/index.ts'
import tasmota from './tasmota/index.ts'
import traccar, { settings as traccarSettings } from './traccar/index.ts'
import valetudo from './valetudo/index.ts'
import zigbee2mqtt, { settings as zigbee2mqttSettings } from './zigbee2mqtt/index.ts'

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

/** The profiles the configuration's `profiles` section can rebuild, in the order their settings are checked. */
export const configurableProfiles: readonly ProfileSettingsDeclaration[] = [
  gpsdSettings,
  traccarSettings,
  zigbee2mqttSettings,
]

/** Profiles with a top-level configuration section of their own (`sparkplug:`), applied in this order. */
export const configSections: readonly ConfigSectionDeclaration[] = [sparkplugSettings]
