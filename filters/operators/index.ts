import type { OperatorDefinition } from '#veil/sdk'
import aggregate from './aggregate/index.ts'
import bucket from './bucket/index.ts'
import downsample from './downsample/index.ts'
import energyWindow from './energy_window/index.ts'
import eventSuppress from './event_suppress/index.ts'
import geoInd from './geo_ind/index.ts'
import geohashSnap from './geohash_snap/index.ts'
import hmacPseudo from './hmac_pseudo/index.ts'
import imageGate from './image_gate/index.ts'
import jobArea from './job_area/index.ts'
import kinematics from './kinematics/index.ts'
import mapMinimize from './map_minimize/index.ts'
import piiScan from './pii_scan/index.ts'
import privacyZone from './privacy_zone/index.ts'
import round from './round/index.ts'
import stayZone from './stay_zone/index.ts'
import textDrop from './text_drop/index.ts'
import timeFloor from './time_floor/index.ts'
import tokenize from './tokenize/index.ts'
import truncateIp from './truncate_ip/index.ts'
import wifiStrip from './wifi_strip/index.ts'

/**
 * Operators that a policy may name after its allowlist. `allow` itself is not listed: it is the mandatory first
 * step of every stream policy.
 */
export const builtinOperators: readonly OperatorDefinition[] = [
  aggregate,
  bucket,
  downsample,
  energyWindow,
  eventSuppress,
  geoInd,
  geohashSnap,
  hmacPseudo,
  imageGate,
  jobArea,
  kinematics,
  mapMinimize,
  piiScan,
  privacyZone,
  round,
  stayZone,
  textDrop,
  timeFloor,
  tokenize,
  truncateIp,
  wifiStrip,
]
