/**
 * The profiles by name, each with the way its firmware identifies itself to the broker (client id, will).
 */
import { frigateIdentity, frigateProfile } from './frigate/index.ts'
import { miscaleIdentity, miscaleProfile } from './miscale/index.ts'
import { owntracksIdentity, owntracksProfile } from './owntracks/index.ts'
import { tasmotaIdentity, tasmotaProfile } from './tasmota/index.ts'
import type { ClientIdentity, SimDevice, SimulatorProfile } from './types.ts'
import { valetudoIdentity, valetudoProfile } from './valetudo/index.ts'

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
}
