/**
 * `npm run bench [-- --quick] [--json[=PATH]] [--only=inprocess,e2e,map,idle,protobuf,consent]`: Veil side by side with its
 * baselines, in one run (BENCHMARKS.md). Prints Markdown tables; --json writes the figures as JSON (default
 * bench/results/latest.json) and the tables beside it (latest.md).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { CONSENT_FULL, CONSENT_QUICK, runConsent } from './consent.ts'
import { E2E_FULL, E2E_QUICK, runE2e } from './e2e.ts'
import { IDLE_FULL, IDLE_QUICK, runIdle } from './idle.ts'
import { INPROCESS_FULL, INPROCESS_QUICK, runInProcess } from './inprocess.ts'
import { MAP_FULL, MAP_QUICK, runMap } from './map.ts'
import { PROTOBUF_FULL, PROTOBUF_QUICK, runProtobuf } from './protobuf.ts'
import { machine, toMarkdown, type Results } from './report.ts'

export const SECTIONS = ['inprocess', 'e2e', 'map', 'idle', 'protobuf', 'consent'] as const
type Section = (typeof SECTIONS)[number]
/** Letters of the list, accepted as well: --only=a,c */
const LETTERS: Record<string, Section> = { a: 'inprocess', b: 'e2e', c: 'map', d: 'idle', e: 'protobuf', f: 'consent' }

export interface Args {
  quick: boolean
  json: string | undefined
  only: Section[]
}

export function parseArgs(argv: readonly string[]): Args {
  const args: Args = { quick: false, json: undefined, only: [...SECTIONS] }
  for (const arg of argv) {
    if (arg === '--quick') args.quick = true
    else if (arg === '--json') args.json = join(import.meta.dirname, 'results/latest.json')
    else if (arg.startsWith('--json=')) args.json = resolve(arg.slice('--json='.length))
    else if (arg.startsWith('--only=')) {
      args.only = arg
        .slice('--only='.length)
        .split(',')
        .map((s) => {
          const section = LETTERS[s] ?? (SECTIONS as readonly string[]).find((x) => x === s)
          if (section === undefined)
            throw new Error(`--only: unknown section ${s}; known: ${SECTIONS.join(', ')} (or a, b, c, d, e, f)`)
          return section as Section
        })
    } else
      throw new Error(
        `unknown argument ${arg}; usage: npm run bench -- [--quick] [--json[=PATH]] [--only=${SECTIONS.join(',')}]`,
      )
  }
  return args
}

async function main(argv: readonly string[]): Promise<number> {
  let args: Args
  try {
    args = parseArgs(argv)
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`)
    return 2
  }
  const results: Results = {
    date: new Date().toISOString(),
    mode: args.quick ? 'quick' : 'full',
    machine: machine(),
    errors: [],
  }
  const log = (line: string): void => void process.stderr.write(`${line}\n`)
  const started = performance.now()
  const section = async (name: Section, work: () => Promise<void>): Promise<void> => {
    if (!args.only.includes(name)) return
    const t = performance.now()
    log(`${name}...`)
    try {
      await work()
    } catch (err) {
      results.errors.push({ section: name, error: (err as Error).message })
      log(`${name} failed: ${(err as Error).message}`)
    }
    log(`${name}: ${((performance.now() - t) / 1000).toFixed(1)} s`)
  }
  await section(
    'inprocess',
    async () => void (results.inprocess = await runInProcess(args.quick ? INPROCESS_QUICK : INPROCESS_FULL)),
  )
  await section(
    'protobuf',
    async () => void (results.protobuf = await runProtobuf(args.quick ? PROTOBUF_QUICK : PROTOBUF_FULL)),
  )
  await section(
    'consent',
    async () => void (results.consent = await runConsent(args.quick ? CONSENT_QUICK : CONSENT_FULL)),
  )
  await section('map', async () => void (results.map = await runMap(args.quick ? MAP_QUICK : MAP_FULL)))
  await section('e2e', async () => void (results.e2e = await runE2e(args.quick ? E2E_QUICK : E2E_FULL, log)))
  await section('idle', async () => void (results.idle = await runIdle(args.quick ? IDLE_QUICK : IDLE_FULL)))
  results.machine.loadEnd = Math.round((loadavg()[0] ?? 0) * 100) / 100
  const markdown = toMarkdown(results)
  process.stdout.write(markdown)
  if (args.json !== undefined) {
    mkdirSync(dirname(args.json), { recursive: true })
    writeFileSync(args.json, `${JSON.stringify(results, null, 2)}\n`)
    writeFileSync(`${args.json.replace(/\.json$/, '')}.md`, markdown)
    log(`wrote ${args.json} and ${args.json.replace(/\.json$/, '')}.md`)
  }
  log(`total: ${((performance.now() - started) / 1000).toFixed(1)} s`)
  return results.errors.length === 0 ? 0 : 1
}

if (import.meta.url === `file://${process.argv[1]}`) process.exit(await main(process.argv.slice(2)))
