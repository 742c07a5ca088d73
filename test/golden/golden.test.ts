import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { deflateSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { seededRandom } from '../../filters/operators/testing.ts'
import { tempDir } from '../helpers/gateway.ts'
import { goldenCaseFiles } from './cases.ts'
import { builtinPipeline } from '../helpers/pipeline.ts'

/**
 * Golden tests: each case file is plain data, a sequence of raw inputs (a fixture file, an inline JSON
 * payload or base64 bytes, with a topic and a clock) and every message the shipped default policies forward
 * for it, with a fixed test master key. A case lives in the testdata/ folder of the profile its inputs' topics are
 * (filters/profiles/<name>/testdata/), or in cases/ here when it spans several profiles or none; one runner picks
 * every file up in both places (cases.ts), each test named by where its file lives. `UPDATE_GOLDEN=1 npx vitest run
 * test/golden` rewrites the expected outputs; review the diff before committing it.
 */
interface GoldenInput {
  ts: number
  topic: string
  fixture?: string
  payload?: unknown
  payloadBase64?: string
  deflate?: boolean
}

interface GoldenCase {
  description: string
  optIn?: string[]
  privacyZones?: { lat: number; lon: number }[]
  inputs: GoldenInput[]
  expected: { ts: number; domain: string; topic: string; payload: unknown }[] | { drop: string }[]
}

const FIXTURES = join(import.meta.dirname, '../fixtures')
const MASTER = Buffer.alloc(32, 0x5e)

function bytesOf(input: GoldenInput): Buffer {
  let bytes: Buffer
  if (input.fixture !== undefined) bytes = readFileSync(join(FIXTURES, input.fixture))
  else if (input.payloadBase64 !== undefined) bytes = Buffer.from(input.payloadBase64, 'base64')
  else if (typeof input.payload === 'string') bytes = Buffer.from(input.payload)
  else bytes = Buffer.from(JSON.stringify(input.payload))
  return input.deflate === true ? deflateSync(bytes) : bytes
}

async function run(golden: GoldenCase, dataDir: string): Promise<GoldenCase['expected']> {
  const { pipeline } = builtinPipeline({
    master: MASTER,
    dataDir,
    optIn: new Set(golden.optIn ?? []),
    // Golden cases are single messages; learned stay zones would withhold every first fix (see stay_zone).
    variables: { privacy_zones: golden.privacyZones ?? [], stay_zones: false },
    // Noise operators draw from a seeded generator so that the golden output is reproducible.
    random: seededRandom(1),
  })
  const outputs: { ts: number; domain: string; topic: string; payload: unknown }[] = []
  const collect = (
    ts: number,
    result: { outputs: readonly { payload: Buffer; domain: string; topic: string }[] },
  ): void => {
    for (const out of result.outputs) {
      const payload = JSON.parse(out.payload.toString('utf8')) as { policy: string; data: unknown }
      // The policy version changes with every policy edit; the data is what the golden file pins.
      outputs.push({ ts, domain: out.domain, topic: out.topic, payload: payload.data })
    }
  }
  // The inputs' clock is the gateway's: scheduled records (energy windows, aggregates) leave as it passes them, and
  // whatever window is still open when the inputs end is closed at the last input's time.
  for (const input of golden.inputs) {
    for (const scheduled of await pipeline.tick(input.ts)) collect(input.ts, scheduled)
    collect(input.ts, await pipeline.process(input.topic, bytesOf(input), input.ts))
  }
  const last = golden.inputs.at(-1)
  if (last !== undefined) for (const scheduled of await pipeline.tick(last.ts, true)) collect(last.ts, scheduled)
  return outputs
}

describe('golden outputs of the default policies', () => {
  const files = goldenCaseFiles()
  it('has cases', () => expect(files.length).toBeGreaterThan(0))
  for (const { path, where } of files) {
    it(where, async () => {
      const golden = JSON.parse(readFileSync(path, 'utf8')) as GoldenCase
      const dir = tempDir()
      try {
        const actual = await run(golden, dir.path)
        if (process.env.UPDATE_GOLDEN === '1') {
          writeFileSync(path, `${JSON.stringify({ ...golden, expected: actual }, null, 2)}\n`)
          return
        }
        expect(actual).toEqual(golden.expected)
      } finally {
        dir.remove()
      }
    })
  }
})
