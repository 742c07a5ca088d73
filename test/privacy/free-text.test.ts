/**
 * Issue 13 part 6, "Free text carries identifiers": a generated matrix of identifier kinds × encodings, injected
 * into every allowlisted field of every shipped stream (every domain, every policy variant: default and all
 * opt-ins on), through the shipped pipeline. No output may carry the identifier in any of its forms: plain, case
 * variants, without separators, hex, base64, URL-encoded, hashed (canaryForms), decimal, normalised (NFKC, no
 * zero-width characters), nor anything the P2 scanner finds.
 *
 * Strings go into string fields, numbers (a MAC's or an IPv4 address's integer, an IMEI or phone number as a
 * number) into numeric ones, and each field also gets the other kind once (a type change must not leak either).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { normalizeText, findPii } from '../../filters/operators/pii_scan/detect.ts'
import { builtinOperators } from '../../filters/operators/index.ts'
import { builtinProfiles } from '../../filters/profiles/index.ts'
import { shippedPipeline, type Forwarded } from '../../filters/profiles/testing.ts'
import { DEFAULT_POLICIES } from '../../gateway/src/config/config.ts'
import { Keyring } from '../../gateway/src/keys/keyring.ts'
import { effectiveStreamPolicy, loadPolicySet } from '../../gateway/src/policy/load.ts'
import { Classifier } from '../../gateway/src/streams/classifier.ts'
import type { JsonSchema } from '../../gateway/src/sdk/profile.ts'
import { DOMAINS } from '../../gateway/src/sdk/model.ts'
import { findCanaries } from '../helpers/canary.ts'

const OPT_INS = ['health_consent', 'precise_location', 'camera_exact_times', 'energy_15min']
const T0 = Date.UTC(2026, 2, 1, 8, 0, 0)
const HOUR = 3_600_000

// ---------------------------------------------------------------------------------------------------------------
// Identifiers and their encodings.

interface Identifier {
  readonly kind: string
  /** The canonical written form. */
  readonly plain: string
  /** Other ways of writing the same identifier that must not appear in output either. */
  readonly needles: readonly string[]
  /** Encoded string forms injected into string fields. */
  readonly strings: readonly string[]
  /** Number forms injected into numeric fields. */
  readonly numbers: readonly number[]
}

const fullwidth = (s: string): string =>
  [...s]
    .map((c) => (c >= '!' && c <= '~' ? String.fromCharCode(c.charCodeAt(0) + 0xfee0) : c === ' ' ? '\u3000' : c))
    .join('')
const zeroWidth = (s: string): string => [...s].join('\u200b')
const softHyphens = (s: string): string => [...s].join('\u00ad')
const b64 = (s: string): string => Buffer.from(s).toString('base64')
const b64url = (s: string): string => Buffer.from(s).toString('base64url')
const hex = (s: string): string => Buffer.from(s).toString('hex')
const percentAll = (s: string): string =>
  [...Buffer.from(s)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('')
const inSentence = (s: string): string => `seen ${s} today`

/** Encodings every kind gets. */
function common(plain: string): string[] {
  return [
    plain,
    plain.toLowerCase(),
    plain.toUpperCase(),
    fullwidth(plain),
    zeroWidth(plain),
    softHyphens(plain),
    b64(plain),
    b64url(plain),
    hex(plain),
    percentAll(plain),
    encodeURIComponent(plain),
    inSentence(plain),
    `id=${b64(plain)}`,
  ]
}

function mac(plain: string): Identifier {
  const bytes = plain.split(':')
  const bare = bytes.join('')
  const value = parseInt(bare, 16)
  return {
    kind: 'mac',
    plain,
    needles: [plain, bare, bytes.join('-'), String(value), `${bare.slice(0, 4)}.${bare.slice(4, 8)}.${bare.slice(8)}`],
    strings: [
      ...common(plain),
      bare,
      bare.toLowerCase(),
      bytes.join('-'),
      `${bare.slice(0, 4)}.${bare.slice(4, 8)}.${bare.slice(8)}`,
      String(value),
      `mac${bare}`,
      `SN${bare}`,
      fullwidth(bare),
      zeroWidth(bare),
      b64(bare),
    ],
    numbers: [value],
  }
}

function ipv4(plain: string): Identifier {
  const octets = plain.split('.').map(Number)
  const value = octets.reduce((a, o) => a * 256 + o, 0)
  const hexValue = value.toString(16).padStart(8, '0')
  return {
    kind: 'ipv4',
    plain,
    needles: [plain, String(value), `0x${hexValue}`],
    strings: [
      ...common(plain),
      String(value),
      `0x${hexValue}`,
      `0x${hexValue.toUpperCase()}`,
      octets.map((o) => `0x${o.toString(16)}`).join('.'),
      octets.map((o) => `0${o.toString(8)}`).join('.'),
      `http://${plain}:8080/`,
    ],
    numbers: [value],
  }
}

function email(plain: string): Identifier {
  const [local, domain] = plain.split('@') as [string, string]
  const spelled = domain.replaceAll('.', ' dot ')
  return {
    kind: 'email',
    plain,
    needles: [plain, `${local}(at)${domain}`],
    strings: [
      ...common(plain),
      `${local}(at)${domain}`,
      `${local} [at] ${domain}`,
      `${local} (at) ${domain.replaceAll('.', ' (dot) ')}`,
      `${local} at ${spelled}`,
      `${local}%40${domain}`,
      `${local}&#64;${domain}`,
      `${local}＠${domain}`,
      `mailto:${plain}`,
    ],
    numbers: [],
  }
}

function phone(international: string, national: string, number: number): Identifier {
  const digits = international.replace(/\D/g, '')
  return {
    kind: 'phone',
    plain: international,
    needles: [international, digits, national, national.replace(/\D/g, '')],
    strings: [
      ...common(international),
      ...common(national),
      `+${digits}`,
      `00${digits}`,
      national.replace(' ', '/'),
      national.replace(' ', '-'),
      `(${national.replace(' ', ') ')}`,
    ],
    numbers: [number],
  }
}

function imei(plain: string): Identifier {
  const dashed = `${plain.slice(0, 2)}-${plain.slice(2, 8)}-${plain.slice(8, 14)}-${plain.slice(14)}`
  return {
    kind: 'imei',
    plain,
    needles: [plain],
    strings: [
      ...common(plain),
      dashed,
      dashed.replaceAll('-', ' '),
      `${plain.slice(0, 6)} ${plain.slice(6)}`,
      `IMEI ${plain}`,
    ],
    numbers: [Number(plain)],
  }
}

function plate(plain: string): Identifier {
  const bare = plain.replace(/[^A-Za-z0-9]/g, '')
  return {
    kind: 'plate',
    plain,
    needles: [plain, bare],
    strings: [...common(plain), bare, bare.toLowerCase(), plain.replace(/[ -]/g, ' ')],
    numbers: [],
  }
}

function ipv6(plain: string): Identifier {
  return { kind: 'ipv6', plain, needles: [plain], strings: [...common(plain), `[${plain}]:443`], numbers: [] }
}

const IDENTIFIERS: readonly Identifier[] = [
  mac('2C:3A:E8:4F:91:D7'),
  // Only letters a-f: fits a words-only pattern (Frigate's labels) unless pii_scan sees it.
  mac('DE:AD:BE:EF:FA:CE'),
  ipv4('192.168.178.23'),
  ipv6('2001:db8:85a3:8d3:1319:8a2e:370:7348'),
  email('yvonne.canary@example.org'),
  phone('+49 151 23456789', '0151 23456789', 4915123456789),
  phone('+44 7700 900123', '07700 900123', 447700900123),
  phone('+49 30 123456', '030 123456', 4930123456),
  imei('356938035643809'),
  plate('B-MW 1234'),
  plate('AB12 CDE'),
  plate('CAN4RY1'),
  // Serial-like: a device serial carrying the MAC (`shellyplug-s-4022D88349C4`).
  {
    kind: 'serial',
    plain: 'shellyplug-s-4022D88349C4',
    needles: ['4022D88349C4'],
    strings: common('shellyplug-s-4022D88349C4'),
    numbers: [0x4022d88349c4],
  },
]

// ---------------------------------------------------------------------------------------------------------------
// One valid message per shipped stream; the matrix sets one allowlisted path at a time.

type Payload = string | number | Record<string, unknown>
interface Base {
  readonly topic: string
  /** The payload at a time (ms); a fresh object each call. */
  readonly payload: (ms: number) => Payload
}

const s = (ms: number): number => Math.floor(ms / 1000)
const iso = (ms: number): string => new Date(ms).toISOString()

/** Meters grow by one unit an hour, so windows have energy. */
const meter = (ms: number, perHour: number, start = 100): number => start + ((ms - T0) / HOUR) * perHour

const frigateObject = (ms: number) => ({
  id: '1607123955.475377-mxklsc',
  camera: 'front_door',
  label: 'person',
  top_score: 0.84,
  score: 0.8,
  start_time: s(ms) - 5,
  end_time: null,
  has_clip: true,
  active: true,
  false_positive: false,
})

const BASES: Readonly<Record<string, Base>> = {
  'frigate/events': {
    topic: 'frigate/events',
    payload: (ms) => ({ type: 'update', before: frigateObject(ms), after: frigateObject(ms) }),
  },
  'frigate/reviews': {
    topic: 'frigate/reviews',
    payload: (ms) => ({
      type: 'new',
      before: null,
      after: {
        id: 'r1',
        camera: 'front_door',
        start_time: s(ms) - 5,
        end_time: null,
        severity: 'alert',
        data: { detections: [], objects: ['person'], zones: [], audio: [] },
      },
    }),
  },
  'frigate/available': { topic: 'frigate/available', payload: () => 'online' },
  'doubletake/available': { topic: 'double-take/available', payload: () => 'online' },
  'frigate/stats': {
    topic: 'frigate/stats',
    payload: () => ({ service: { uptime: 90_000, version: '0.14.1-f4f3cfa' } }),
  },
  'doubletake/cameras': {
    topic: 'double-take/cameras/back-door',
    payload: () => ({
      id: 'e1',
      camera: 'back-door',
      counts: { person: 1, match: 0, miss: 1, unknown: 0 },
      matches: [],
      misses: [],
      unknowns: [],
    }),
  },
  'canonical/event': {
    topic: 'devices/camera/cam-1/event',
    payload: (ms) => ({ ts: s(ms), type: 'start', label: 'person', score: 0.7 }),
  },
  'valetudo/statistics_area': {
    topic: 'valetudo/vac1/CurrentStatisticsCapability/area',
    payload: (ms) => Math.round(meter(ms, 50_000, 0)),
  },
  'valetudo/battery_level': { topic: 'valetudo/vac1/BatteryStateAttribute/level', payload: () => 80 },
  'valetudo/battery_status': { topic: 'valetudo/vac1/BatteryStateAttribute/status', payload: () => 'charging' },
  'valetudo/status': { topic: 'valetudo/vac1/StatusStateAttribute/status', payload: () => 'docked' },
  'valetudo/error': {
    topic: 'valetudo/vac1/StatusStateAttribute/error_description',
    payload: () => 'Main brush jammed',
  },
  'valetudo/homie_state': { topic: 'valetudo/vac1/$state', payload: () => 'ready' },
  'canonical/status': {
    topic: 'devices/robot_vacuum/vac-1/status',
    payload: (ms) => ({ ts: s(ms), battery_pct: 80, state: 'docked', error: 'Main brush jammed' }),
  },
  'tasmota/sensor': {
    topic: 'tele/tasmota_ABC123/SENSOR',
    payload: (ms) => ({ Time: iso(ms).slice(0, 19), ENERGY: { Total: meter(ms, 0.5), Power: 40 } }),
  },
  'tasmota/lwt': { topic: 'tele/tasmota_ABC123/LWT', payload: () => 'Online' },
  'tasmota/state': {
    topic: 'tele/tasmota_ABC123/STATE',
    payload: (ms) => ({ Time: iso(ms).slice(0, 19), UptimeSec: 90_000, POWER: 'ON', Wifi: { RSSI: 70, Signal: -65 } }),
  },
  'canonical/energy': {
    topic: 'devices/smart_plug/plug-1/energy',
    payload: (ms) => ({ ts: s(ms), total_kwh: meter(ms, 0.5) }),
  },
  'shelly_gen1/energy': {
    topic: 'shellies/shellyplug-s-AABBCC/relay/0/energy',
    payload: (ms) => Math.round(meter(ms, 30_000)),
  },
  'shelly_gen1/emeter_total': { topic: 'shellies/shellyem-AABBCC/emeter/0/total', payload: (ms) => meter(ms, 500) },
  'shelly_gen1/online': { topic: 'shellies/shellyplug-s-AABBCC/online', payload: () => 'true' },
  'shelly_gen1/info': {
    topic: 'shellies/shellyplug-s-AABBCC/info',
    payload: () => ({ wifi_sta: { connected: true, rssi: -60 }, uptime: 90_000 }),
  },
  'shelly_gen2/rpc': {
    topic: 'shellyplus1pm-aabbcc/events/rpc',
    payload: (ms) => ({
      src: 'shellyplus1pm-aabbcc',
      dst: 'x',
      method: 'NotifyStatus',
      params: { ts: s(ms), 'switch:0': { id: 0, aenergy: { total: meter(ms, 500) } } },
    }),
  },
  'shelly_gen2/switch': {
    topic: 'shellyplus1pm-aabbcc/status/switch:0',
    payload: (ms) => ({ id: 0, output: true, aenergy: { total: meter(ms, 500) } }),
  },
  'shelly_gen2/online': { topic: 'shellyplus1pm-aabbcc/online', payload: () => 'true' },
  'zigbee2mqtt/state': { topic: 'zigbee2mqtt/plug1', payload: (ms) => ({ state: 'ON', energy: meter(ms, 0.5) }) },
  'zigbee2mqtt/availability': { topic: 'zigbee2mqtt/plug1/availability', payload: () => ({ state: 'online' }) },
  'sparkplug/state': { topic: 'spBv1.0/STATE/scada-host-1', payload: (ms) => ({ online: true, timestamp: ms }) },
  'miscale/weight': {
    topic: 'miscale/alice/weight',
    payload: (ms) => ({
      weight: 71.3,
      weight_unit: 'kg',
      bmi: 22.1,
      body_fat: 18.2,
      water: 55.1,
      bone_mass: 3.1,
      muscle_mass: 52.3,
      visceral_fat: 6.2,
      basal_metabolism: 1650,
      timestamp: iso(ms),
    }),
  },
  'omg_scale/weight': {
    topic: 'home/OpenMQTTGateway/BTtoMQTT/C8478C0A5CFF',
    payload: () => ({
      id: 'C8:47:8C:0A:5C:FF',
      model: 'MiScale2',
      model_id: 'XMTZC05HM',
      type: 'SCALE',
      weighing_mode: 'person',
      unit: 'kg',
      weight: 71.3,
    }),
  },
  'canonical/measurement': {
    topic: 'devices/body_scale/scale-1/measurement',
    payload: (ms) => ({ ts: s(ms), weight_kg: 71.3, bmi: 22.1, body_fat_pct: 18.2, battery_pct: 80 }),
  },
  'owntracks/location': {
    topic: 'owntracks/alice/phone',
    payload: (ms) => ({
      _type: 'location',
      lat: 48.1 + (ms - T0) / HOUR / 100,
      lon: 11.5,
      tst: s(ms),
      vel: 30,
      batt: 80,
      tid: 'ph',
    }),
  },
  'canonical/location': {
    topic: 'devices/gps_tracker/trk-1/location',
    payload: (ms) => ({ ts: s(ms), lat: 48.1 + (ms - T0) / HOUR / 100, lon: 11.5, speed_kmh: 30, battery_pct: 80 }),
  },
  'gpsd/tpv': {
    topic: 'gpsd/trk1/tpv',
    payload: (ms) => ({
      class: 'TPV',
      mode: 3,
      time: iso(ms),
      lat: 48.1 + (ms - T0) / HOUR / 100,
      lon: 11.5,
      speed: 8,
    }),
  },
  'traccar/location': {
    topic: 'traccar/osmand',
    payload: (ms) => ({
      device_id: 'trk-2',
      location: {
        timestamp: iso(ms),
        coords: { latitude: 48.1 + (ms - T0) / HOUR / 100, longitude: 11.5, speed: 8 },
        battery: { level: 0.8 },
      },
    }),
  },
}

/** Streams the matrix cannot reach with JSON: Sparkplug B births and data (their string metric values are always scanned). */
const NOT_JSON = new Set(['sparkplug/node', 'sparkplug/device', 'frigate/snapshot'])

function withValue(payload: Payload, path: string, value: unknown): unknown {
  if (path === '$') return value
  const doc = structuredClone(payload) as Record<string, unknown>
  const keys = path.split('.')
  let node = doc
  for (const key of keys.slice(0, -1)) {
    const next = node[key]
    if (typeof next !== 'object' || next === null) node[key] = {}
    node = node[key] as Record<string, unknown>
  }
  node[keys.at(-1) as string] = value
  return doc
}

// ---------------------------------------------------------------------------------------------------------------
// The allowlisted paths of the shipped policies, and whether each may hold a string or a number.

const classifier = new Classifier(builtinProfiles)
const dataDir = mkdtempSync(join(tmpdir(), 'veil-free-text-'))
const policySet = loadPolicySet(DEFAULT_POLICIES, {
  classifier,
  operators: builtinOperators,
  keyring: new Keyring(Buffer.alloc(32, 7), new Map()),
  dataDir,
})
rmSync(dataDir, { recursive: true, force: true })

function schemaOf(key: string): JsonSchema | undefined {
  return classifier.streams.find((st) => st.key === key && st.decoding !== 'protobuf')?.schema
}

/** Every (stream, path) some domain's allowlist names, in any variant. */
function allowlisted(): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>()
  for (const doc of policySet.documents.values()) {
    for (const domain of DOMAINS) {
      for (const [key, stream] of Object.entries(doc.domains[domain]?.streams ?? {})) {
        const variants = [
          effectiveStreamPolicy(stream, new Set()),
          ...OPT_INS.map((o) => effectiveStreamPolicy(stream, new Set([o]))),
        ]
        for (const v of variants)
          for (const path of v.allow) (out.get(key) ?? out.set(key, new Set()).get(key))?.add(path)
      }
    }
  }
  return out
}

/** Roughly what the schema admits at a path: whether a string and whether a number may be there. */
function kinds(schema: JsonSchema | undefined, path: string): { string: boolean; number: boolean } {
  let node: unknown = schema
  const resolve = (n: unknown): Record<string, unknown> | undefined => {
    const o = n as Record<string, unknown> | undefined
    if (o?.$ref !== undefined)
      return (schema?.$defs as Record<string, Record<string, unknown>> | undefined)?.[
        (o.$ref as string).slice('#/$defs/'.length)
      ]
    return o
  }
  if (path !== '$') {
    for (const key of path.split('.')) {
      const n = resolve(node)
      const props = (n?.properties ??
        (n?.anyOf as Record<string, unknown>[] | undefined)?.map(resolve).find((b) => b?.properties !== undefined)
          ?.properties) as Record<string, unknown> | undefined
      node = props?.[key]
      if (node === undefined) return { string: true, number: true }
    }
  }
  const text = JSON.stringify(resolve(node) ?? {})
  return {
    string: /"string"|"enum"|"pattern"/.test(text) || text === '{}',
    number: /"number"|"integer"/.test(text) || text === '{}',
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The leak check.

function stringLeaves(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value)
  else if (Array.isArray(value)) for (const v of value) stringLeaves(v, out)
  else if (typeof value === 'object' && value !== null)
    for (const [k, v] of Object.entries(value)) out.push(k, ...stringLeaves(v))
  return out
}

/** The forms of `id` found in the outputs, or the P2 scanner's finding. */
function leaksOf(forwarded: readonly Forwarded[], id: Identifier): string[] {
  const hits: string[] = []
  for (const f of forwarded) {
    const texts = [f.topic, f.text, ...stringLeaves(f.data).map(normalizeText)]
    for (const text of texts) {
      hits.push(
        ...findCanaries(
          text,
          id.needles.filter((n) => n.length >= 4),
        ).map((h) => `${f.topic}: ${h}`),
      )
      const flat = text.toLowerCase().replace(/[^a-z0-9]/g, '')
      for (const needle of id.needles) {
        const bare = needle.toLowerCase().replace(/[^a-z0-9]/g, '')
        if (bare.length >= 6 && flat.includes(bare))
          hits.push(`${f.topic}: ${id.plain} (as ${needle}, separators removed) in ${text}`)
      }
      const p2 = findPii(text)
      if (p2 !== undefined) hits.push(`${f.topic}: ${p2} in ${text}`)
    }
  }
  return hits
}

interface Injection {
  readonly id: Identifier
  readonly value: string | number
}

/**
 * Epoch seconds of 2100-01-01: the declared maximum of time fields. A number below it is a time to the schema, and
 * where an opt-in sends exact times (camera_exact_times, precise_location, health_consent's timestamps) it leaves as
 * it came: an IPv4 address's 32 bits (`3232281111` is 2072-06-04) are the one number form a time field cannot
 * refuse. Every other number form is past the maximum (MACs, phone numbers, IMEIs) and dropped at validation.
 */
const TIME_MAX = 4_102_444_800
const isTimeField = (schema: JsonSchema | undefined, path: string): boolean =>
  JSON.stringify(schemaAt(schema, path) ?? {}).includes(`"maximum":${TIME_MAX}`)

function schemaAt(schema: JsonSchema | undefined, path: string): unknown {
  let node: unknown = schema
  for (const key of path === '$' ? [] : path.split('.')) {
    let n = node as Record<string, unknown> | undefined
    if (typeof n?.$ref === 'string')
      n = (schema?.$defs as Record<string, Record<string, unknown>> | undefined)?.[n.$ref.slice('#/$defs/'.length)]
    node = (n?.properties as Record<string, unknown> | undefined)?.[key]
  }
  return node
}

function injectionsFor(allowed: { string: boolean; number: boolean }, time: boolean): Injection[] {
  const out: Injection[] = []
  for (const id of IDENTIFIERS) {
    const strings = allowed.string ? id.strings : id.strings.slice(0, 1)
    const numbers = (allowed.number ? id.numbers : id.numbers.slice(0, 1)).filter((n) => !(time && n < TIME_MAX))
    for (const value of strings) out.push({ id, value })
    for (const value of numbers) out.push({ id, value })
  }
  return out
}

/**
 * Sends each injection into (stream, path) an hour apart, then the untouched message a few minutes later (stateful
 * operators emit then: energy windows, job areas), collecting what leaves after each injection.
 */
async function runMatrix(optIn: readonly string[], key: string, path: string): Promise<string[]> {
  const base = BASES[key] as Base
  const p = shippedPipeline(optIn)
  const problems: string[] = []
  try {
    let ms = T0
    await p.send(ms, base.topic, payloadBytes(base.payload(ms)))
    for (const injection of injectionsFor(kinds(schemaOf(key), path), isTimeField(schemaOf(key), path))) {
      ms += HOUR
      const before = p.forwarded.length
      await p.send(ms, base.topic, payloadBytes(withValue(base.payload(ms), path, injection.value) as Payload))
      await p.send(ms + 20 * 60_000, base.topic, payloadBytes(base.payload(ms + 20 * 60_000)))
      const hits = leaksOf(p.forwarded.slice(before), injection.id)
      if (hits.length > 0)
        problems.push(
          `${key} ${path} <- ${JSON.stringify(injection.value)} [${optIn.join(',') || 'defaults'}]: ${hits.slice(0, 3).join('; ')}`,
        )
    }
    return problems
  } finally {
    p.close()
  }
}

function payloadBytes(payload: unknown): string | Record<string, unknown> {
  return typeof payload === 'object' && payload !== null ? (payload as Record<string, unknown>) : String(payload)
}

const MATRIX = [...allowlisted()]
  .filter(([key]) => !NOT_JSON.has(key))
  .flatMap(([key, paths]) => [...paths].map((path) => [key, path] as const))

describe('free text carries no identifier (issue 13 part 6)', () => {
  it('has a base message for every shipped stream with an allowlist, and each base message leaves', async () => {
    const missing = [...allowlisted().keys()].filter((k) => !NOT_JSON.has(k) && BASES[k] === undefined)
    expect(missing).toEqual([])
    for (const optIn of [[], OPT_INS]) {
      const p = shippedPipeline(optIn)
      try {
        let ms = T0
        for (const [key, base] of Object.entries(BASES)) {
          const before = p.forwarded.length
          for (let i = 0; i < 3; i++, ms += HOUR) await p.send(ms, base.topic, payloadBytes(base.payload(ms)))
          const dropped = p.results
            .slice(-3)
            .map((r) => r.dropped)
            .filter((d) => d !== undefined && d.stage === 'validate')
          expect(dropped, `${key}: the base message must be valid`).toEqual([])
          // Scales leave nothing without consent, and Frigate's stats and available only svc: enough that some do.
          if (optIn.length > 0 && p.forwarded.length === before && !['valetudo/statistics_area'].includes(key))
            expect.fail(`${key}: nothing left with every opt-in on`)
        }
      } finally {
        p.close()
      }
    }
  })

  for (const optIn of [[], OPT_INS]) {
    it.each(MATRIX)(
      `%s %s: no identifier in any encoding leaves (${optIn.length === 0 ? 'defaults' : 'all opt-ins'})`,
      async (key, path) => {
        expect(await runMatrix(optIn, key, path)).toEqual([])
      },
    )
  }

  it('random text around identifiers in every free string field leaves no identifier (property)', async () => {
    const free = MATRIX.filter(([key, path]) => kinds(schemaOf(key), path).string)
    const p = shippedPipeline(OPT_INS)
    let ms = T0
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...free),
          fc.constantFrom(...IDENTIFIERS),
          fc.nat(),
          fc.string({ maxLength: 8 }),
          fc.string({ maxLength: 8 }),
          async ([key, path], id, pick, pre, post) => {
            const base = BASES[key] as Base
            ms += HOUR
            const before = p.forwarded.length
            const value = `${pre} ${id.strings[pick % id.strings.length] as string} ${post}`
            await p.send(ms, base.topic, payloadBytes(withValue(base.payload(ms), path, value) as Payload))
            expect(leaksOf(p.forwarded.slice(before), id), `${key} ${path} <- ${JSON.stringify(value)}`).toEqual([])
          },
        ),
        { seed: Number(process.env.FUZZ_SEED ?? 13), numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
      )
    } finally {
      p.close()
    }
  })
})
