/**
 * The profiles by name (the same names as `filters/profiles/`), each with the way its firmware identifies itself to the broker (client id, will).
 */
import { canonicalIdentity, canonicalProfile } from './canonical/index.ts'
import { doubletakeIdentity, doubletakeProfile } from './doubletake/index.ts'
import { frigateIdentity, frigateProfile } from './frigate/index.ts'
import { gpsdIdentity, gpsdProfile } from './gpsd/index.ts'
import { miscaleIdentity, miscaleProfile } from './miscale/index.ts'
import { omgScaleIdentity, omgScaleProfile } from './omg_scale/index.ts'
import { owntracksIdentity, owntracksProfile } from './owntracks/index.ts'
import { shellyGen1Identity, shellyGen1Profile } from './shelly_gen1/index.ts'
import { shellyGen2Identity, shellyGen2Profile } from './shelly_gen2/index.ts'
import { sparkplugIdentity, sparkplugProfile } from './sparkplug/index.ts'
import { tasmotaIdentity, tasmotaProfile } from './tasmota/index.ts'
import { traccarIdentity, traccarProfile } from './traccar/index.ts'
import type { ClientIdentity, SimDevice, SimulatorProfile } from './types.ts'
import { valetudoIdentity, valetudoProfile } from './valetudo/index.ts'
import { zigbee2mqttIdentity, zigbee2mqttProfile } from './zigbee2mqtt/index.ts'

export interface ProfileEntry {
  readonly profile: SimulatorProfile
  /** `nowMs` is the connect time, for wills that carry a timestamp (OwnTracks). */
  readonly identity: (device: SimDevice, nowMs: number) => ClientIdentity
}

export const registry: Readonly<Record<string, ProfileEntry>> = {
  tasmota: { profile: tasmotaProfile, identity: tasmotaIdentity },
  frigate: { profile: frigateProfile, identity: frigateIdentity },
  valetudo: { profile: valetudoProfile, identity: valetudoIdentity },
  miscale: { profile: miscaleProfile, identity: miscaleIdentity },
  owntracks: { profile: owntracksProfile, identity: owntracksIdentity },
  shelly_gen1: { profile: shellyGen1Profile, identity: shellyGen1Identity },
  shelly_gen2: { profile: shellyGen2Profile, identity: shellyGen2Identity },
  zigbee2mqtt: { profile: zigbee2mqttProfile, identity: zigbee2mqttIdentity },
  doubletake: { profile: doubletakeProfile, identity: doubletakeIdentity },
  omg_scale: { profile: omgScaleProfile, identity: omgScaleIdentity },
  gpsd: { profile: gpsdProfile, identity: gpsdIdentity },
  traccar: { profile: traccarProfile, identity: traccarIdentity },
  sparkplug: { profile: sparkplugProfile, identity: sparkplugIdentity },
  canonical: { profile: canonicalProfile, identity: canonicalIdentity },
}

/** The first five: one firmware per category, what the demo runs (see gateway/src/cli/demo.ts). */
export const DEMO_PROFILES: readonly string[] = ['tasmota', 'frigate', 'valetudo', 'miscale', 'owntracks']
