/**
 * Test helpers for profiles: the real pipeline (builtin profiles and operators, the shipped policies in
 * `filters/policies/`, a fixed master key) and the leak checks the privacy tests use. Tests only.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findPii } from '../operators/pii_scan/detect.ts'
import { MemoryAuditLog } from '../../gateway/src/audit/audit.ts'
import type { PipelineResult } from '../../gateway/src/pipeline/envelope.ts'
import { findCanaries } from '../../test/helpers/canary.ts'
import { builtinPipeline } from '../../test/helpers/pipeline.ts'

export const FIXTURES = join(import.meta.dirname, '../../test/fixtures')
export const HOUR_MS = 3_600_000

export function fixture<T = Record<string, unknown>>(path: string): T {
  return JSON.parse(readFileSync(join(FIXTURES, path), 'utf8')) as T
}

/** One forwarded message, its payload parsed: `{policy, data}`. */
export interface Forwarded {
  readonly ts: number
  readonly domain: string
  readonly topic: string
  readonly stream: string
  readonly data: unknown
  readonly text: string
}

export interface ProfilePipeline {
  readonly forwarded: Forwarded[]
  readonly results: PipelineResult[]
  readonly audit: MemoryAuditLog
  /** Runs the gateway's clock to `ts` (scheduled records), then processes the message at `ts`. */
  send(ts: number, topic: string, payload: string | Buffer | Record<string, unknown>): Promise<PipelineResult>
  /** Runs the gateway's clock to `ts`, or with `drain` closes every open window (the end of the input). */
  tick(ts: number, drain?: boolean): Promise<void>
  close(): void
}

/**
 * A pipeline over the shipped default policies; every forwarded copy is collected with its clock. Learned stay zones
 * are off (they withhold first and stationary fixes; stay_zone and test/privacy/home-inference test them).
 */
export function shippedPipeline(optIn: readonly string[] = []): ProfilePipeline {
  const dataDir = mkdtempSync(join(tmpdir(), 'veil-profile-'))
  const audit = new MemoryAuditLog()
  const { pipeline } = builtinPipeline({
    dataDir,
    optIn: new Set(optIn),
    variables: { privacy_zones: [], stay_zones: false },
    audit,
  })
  const forwarded: Forwarded[] = []
  const results: PipelineResult[] = []
  const collect = (ts: number, result: PipelineResult): void => {
    for (const out of result.outputs) {
      const text = out.payload.toString('utf8')
      const parsed = JSON.parse(text) as { policy: string; data: unknown }
      forwarded.push({
        ts,
        domain: out.domain,
        topic: out.topic,
        stream: out.topic.split('/').at(-1) ?? '',
        data: parsed.data,
        text,
      })
    }
  }
  const tick = async (ts: number, drain = false): Promise<void> => {
    for (const result of await pipeline.tick(ts, drain)) collect(ts, result)
  }
  return {
    forwarded,
    results,
    audit,
    async send(ts, topic, payload) {
      await tick(ts)
      const bytes = Buffer.isBuffer(payload)
        ? payload
        : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload))
      const result = await pipeline.process(topic, bytes, ts)
      results.push(result)
      collect(ts, result)
      return result
    },
    tick,
    close: () => rmSync(dataDir, { recursive: true, force: true }),
  }
}

/**
 * Identifiers from the input found in any output topic or payload, in any form the canary check knows (plain,
 * case variants, hex, base64, URL-encoded, hashed, bare alphanumerics), and any MAC, IP address, email or other
 * identifier pattern the P2 scanner finds.
 */
export function leaks(
  forwarded: readonly Forwarded[],
  identifiers: readonly string[],
  audit?: MemoryAuditLog,
): string[] {
  const text = forwarded.map((f) => `${f.topic}\n${f.text}`).join('\n')
  const hits = findCanaries(
    text,
    identifiers.filter((id) => id.length >= 4),
  )
  for (const f of forwarded) {
    for (const part of [f.topic, f.text]) {
      const found = findPii(part)
      if (found !== undefined) hits.push(`${found} in ${f.topic}`)
    }
  }
  if (audit !== undefined)
    hits.push(
      ...findCanaries(
        JSON.stringify(audit.entries),
        identifiers.filter((id) => id.length >= 4),
      ).map((h) => `audit: ${h}`),
    )
  return hits
}

/** Hourly energy records forwarded to a domain on a stream, in order. */
export function energyRecords(
  forwarded: readonly Forwarded[],
  domain: string,
  stream: string,
): { window_start: number; window_s: number; energy_wh: number }[] {
  return forwarded
    .filter((f) => f.domain === domain && f.stream === stream)
    .map((f) => f.data as { window_start: number; window_s: number; energy_wh: number })
}

/** What a domain received on a stream, one array per device (output topic), in order of first appearance. */
export function perDevice(forwarded: readonly Forwarded[], domain: string, stream: string): unknown[][] {
  const groups = new Map<string, unknown[]>()
  for (const f of forwarded) {
    if (f.domain !== domain || f.stream !== stream) continue
    let list = groups.get(f.topic)
    if (list === undefined) groups.set(f.topic, (list = []))
    list.push(f.data)
  }
  return [...groups.values()]
}
