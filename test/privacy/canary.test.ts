import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { deflateSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { MemoryAuditLog } from '../../gateway/src/audit/audit.ts'
import type { Output } from '../../gateway/src/pipeline/envelope.ts'
import type { Pipeline } from '../../gateway/src/pipeline/pipeline.ts'
import { profiles } from '../../simulators/index.ts'
import { hasImageMagic } from '../../filters/operators/image_gate/magic.ts'
import { findPii } from '../../filters/operators/pii_scan/detect.ts'
import { findCanaries } from '../helpers/canary.ts'
import { tempDir } from '../helpers/gateway.ts'
import { builtinPipeline } from '../helpers/pipeline.ts'

const FIXTURES = join(import.meta.dirname, '../fixtures')
const HOUR = 3_600_000

function pipeline(dataDir: string, optIn: readonly string[] = []): { pipeline: Pipeline; audit: MemoryAuditLog } {
  const variables = { privacy_zones: [{ lat: 52.52, lon: 13.405, name: 'home' }] }
  const audit = new MemoryAuditLog()
  const { pipeline } = builtinPipeline({
    master: Buffer.alloc(32, 3),
    dataDir,
    optIn: new Set(optIn),
    variables,
    audit,
  })
  return { pipeline, audit }
}

/** Keys whose string values describe people, places or devices in the fixtures; each gets a canary. */
const PERSONAL = new Set([
  'camera',
  'sub_label',
  'name',
  'SSID',
  'BSSID',
  'ssid',
  'bssid',
  'tid',
  'desc',
  'inregions',
  'current_zones',
  'entered_zones',
  'zones',
  'plate',
  'recognized_license_plate',
  'description',
  'topic',
  'face',
  'image',
  'imagename',
  'username',
  'deviceId',
  'host',
  'password',
])

/** Replaces every personal string (or string array element) with a numbered canary; returns the canaries. */
function plantCanaries(value: unknown, canaries: string[]): unknown {
  if (Array.isArray(value)) return value.map((v) => plantCanaries(v, canaries))
  if (value === null || typeof value !== 'object') return value
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(value)) {
    const plant = (): string => {
      const canary = `Canary${key.replace(/[^A-Za-z]/g, '')}${canaries.length}X`
      canaries.push(canary)
      return canary
    }
    if (PERSONAL.has(key) && typeof v === 'string') out[key] = plant()
    else if (PERSONAL.has(key) && Array.isArray(v))
      out[key] = v.map((item) => (typeof item === 'string' ? plant() : plantCanaries(item, canaries)))
    else out[key] = plantCanaries(v, canaries)
  }
  return out
}

function outputText(outputs: readonly Output[]): string {
  return outputs.map((o) => `${o.topic}\n${o.payload.toString('utf8')}`).join('\n')
}

/**
 * P2: no forwarded byte holds a MAC, an IPv4 address with a non-zero last octet, an IPv6 address finer than /48,
 * an email, a phone number, a Luhn-valid IMEI, or image or video bytes (raw or base64).
 */
function p2Hits(outputs: readonly Output[]): string[] {
  const hits: string[] = []
  for (const out of outputs) {
    for (const text of [out.topic, out.payload.toString('utf8')]) {
      const found = findPii(text)
      if (found !== undefined) hits.push(`${found} in ${out.topic}`)
    }
    if (hasImageMagic(out.payload)) hits.push(`image bytes in ${out.topic}`)
    const data = (JSON.parse(out.payload.toString('utf8')) as { data: unknown }).data
    for (const s of strings(data))
      if (s.length >= 16 && hasImageMagic(Buffer.from(s, 'base64'))) hits.push(`base64 image in ${out.topic}`)
  }
  return hits
}

function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value]
  if (Array.isArray(value)) return value.flatMap(strings)
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(strings)
  return []
}

describe('P1 and P2: no canary and no identifier pattern leaves the gateway', () => {
  const SILENT_WITHOUT_CONSENT = new Set(['miscale', 'omg_scale'])
  for (const [name, profile] of Object.entries(profiles)) {
    const count = Math.max(2, profile.variants)
    it(`simulator ${name}: ${count} devices (every kind it simulates) over 48 simulated hours`, async () => {
      const dir = tempDir()
      try {
        for (const optIn of [[], ['energy_15min', 'health_consent', 'camera_exact_times']]) {
          const { pipeline: p, audit } = pipeline(dir.path, optIn)
          const devices = profile.createDevices(count, 7)
          const canaries = devices.flatMap((d) => [...d.canaries, d.id])
          const outputs: Output[] = []
          let t = Date.UTC(2026, 2, 1, 6)
          for (const device of devices)
            for (const m of device.start(t)) outputs.push(...(await p.process(m.topic, m.payload, t)).outputs)
          for (let tick = 0; tick < 200; tick++) {
            t += 0.24 * HOUR
            for (const device of devices)
              for (const m of device.tick(t)) outputs.push(...(await p.process(m.topic, m.payload, t)).outputs)
          }
          // Scales send nothing at all without health consent (issue 13 part 8); with it, the canaries are checked.
          if (optIn.length === 0 && SILENT_WITHOUT_CONSENT.has(name)) expect(outputs).toEqual([])
          else expect(outputs.length).toBeGreaterThan(0)
          expect(findCanaries(outputText(outputs), canaries)).toEqual([])
          expect(p2Hits(outputs)).toEqual([])
          expect(findCanaries(JSON.stringify(audit.entries), canaries)).toEqual([])
        }
      } finally {
        dir.remove()
      }
      // CPU-bound (two policy sets, 4 devices, 200 ticks): give it room on a loaded machine.
    }, 120_000)
  }

  const fixtureCases: [string, (file: string) => string | undefined][] = [
    [
      'camera',
      (f) =>
        f.startsWith('frigate_events') && f.endsWith('.json')
          ? 'frigate/events'
          : f.startsWith('frigate_tracked') && f.endsWith('.json')
            ? 'frigate/tracked_object_update'
            : undefined,
    ],
    ['gps', (f) => (f.startsWith('owntracks_') ? 'owntracks/CanaryUser1/CanaryPhone1' : undefined)],
    [
      'valetudo',
      (f) => (f.endsWith('.json') && !f.startsWith('wifi') ? 'valetudo/CanaryRobot1/MapData/map-data' : undefined),
    ],
  ]
  for (const [folder, topicOf] of fixtureCases) {
    it(`fixtures in ${folder}/ with canaries in every personal field`, async () => {
      const dir = tempDir()
      try {
        const { pipeline: p } = pipeline(dir.path)
        let checked = 0
        for (const file of readdirSync(join(FIXTURES, folder))) {
          const topic = topicOf(file)
          if (topic === undefined) continue
          const canaries = ['CanaryUser1', 'CanaryPhone1', 'CanaryRobot1']
          const planted = plantCanaries(JSON.parse(readFileSync(join(FIXTURES, folder, file), 'utf8')), canaries)
          // Valetudo room names are segment metaData.name: plant them too.
          const json = JSON.stringify(planted).replace(/"name":"([^"]*)"/g, (_m, _n: string) => {
            const c = `CanaryRoom${canaries.length}X`
            canaries.push(c)
            return `"name":"${c}"`
          })
          const payload = folder === 'valetudo' ? deflateSync(json) : Buffer.from(json)
          const result = await p.process(topic, payload, Date.UTC(2026, 2, 1, 12))
          expect(findCanaries(outputText(result.outputs), canaries), file).toEqual([])
          expect(p2Hits(result.outputs), file).toEqual([])
          checked++
        }
        expect(checked).toBeGreaterThan(0)
      } finally {
        dir.remove()
      }
    })
  }
})
