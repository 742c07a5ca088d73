import { accessSync, constants, readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { createReadStream } from 'node:fs'
import type { ParseArgsConfig } from 'node:util'
import { randomBytes } from 'node:crypto'
import { overridesFromEnv, profilesOf, resolveConfig, type ConfigOverrides } from '../config/config.ts'
import { Keyring } from '../keys/keyring.ts'
import { VeilError } from '../errors.ts'
import { builtinPlugins } from '../builtins.ts'
import { Gateway } from '../gateway.ts'
import { loadPolicySet } from '../policy/load.ts'
import { Classifier } from '../streams/classifier.ts'
import { createLogger } from '../telemetry/log.ts'
import { parse } from './args.ts'
import { describePolicies, describeSubject } from './describe.ts'
import { loadConsentBook } from '../consent/live.ts'
import { SUBJECTS_FILE, SubjectRegistry } from '../consent/registry.ts'
import { join } from 'node:path'
import { dropLines, offlinePipeline, outputLines } from './offline.ts'

const HELP = `veil: an edge privacy gateway for IoT telemetry

Usage:
  veil start [--listen URL] [--upstream DOMAIN=URL]... [--http HOST:PORT] [--data-dir DIR]
             [--policies DIR] [--config FILE] [--log-level LEVEL] [--allow-anonymous]
             [--listener mqtts://|ws://|wss://HOST:PORT]... [--tls-cert FILE --tls-key FILE [--tls-ca FILE]]
  veil device add DEVICE_ID --profile NAME | veil device list | veil device remove DEVICE_ID
  veil user add NAME --role consumer --domain DOMAIN | --role local|admin | veil user list | veil user remove NAME
  veil subject add NAME --device PROFILE:ID [--device ...] [--minor] [--regions EU[,US]] [--replace]
  veil subject list | veil subject show NAME | veil subject remove NAME | veil subject forget NAME
  veil consent grant|withdraw SUBJECT PURPOSE [--domain DOMAIN] [--by subject|guardian|admin]
  veil consent show SUBJECT
  veil filter --topic TOPIC [--file PATH|-] [--config FILE]
  veil replay FILE.jsonl [--config FILE]
  veil policy check [DIR] [--config FILE] [--subject NAME [--data-dir DIR]]
  veil simulate --profile NAME [--devices N] [--rate R] [--url URL] [--duration SECONDS] [--username U]
  veil audit verify [DIR] [--data-dir DIR] [--config FILE]
  veil demo

Environment: VEIL_LISTEN, VEIL_UPSTREAM (comma-separated DOMAIN=URL), VEIL_HTTP, VEIL_DATA_DIR, VEIL_POLICIES,
VEIL_CONFIG, VEIL_LOG_LEVEL, VEIL_ALLOW_ANONYMOUS, VEIL_LISTENERS, VEIL_TLS_CERT, VEIL_TLS_KEY, VEIL_TLS_CA,
VEIL_RELOAD_TOKEN. Flags win over the environment, the environment over the configuration file.
Exit codes: 0 success; 2 bad usage, configuration or policy; 1 anything else.
`

const COMMON = {
  config: { type: 'string' },
  'data-dir': { type: 'string' },
  policies: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options']

/** Runs one command and returns its exit code; errors never escape as stack traces. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'start':
        return await start(rest)
      case 'filter':
        return await filter(rest)
      case 'replay':
        return await replay(rest)
      case 'policy':
        return policy(rest)
      case 'simulate':
        return await (await import('./simulate.ts')).simulate(rest)
      case 'device':
      case 'user':
        return await (await import('./accounts.ts')).accounts(command, rest)
      case 'subject':
        return await (await import('./subjects.ts')).subject(rest)
      case 'consent':
        return await (await import('./subjects.ts')).consent(rest)
      case 'audit':
        return await (await import('./audit.ts')).audit(rest)
      case 'demo':
        return await (await import('./demo.ts')).demo(rest)
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(HELP)
        return command === undefined ? 2 : 0
      default:
        throw new VeilError('VEIL_ERR_USAGE', `unknown command ${command}; run veil --help`)
    }
  } catch (err) {
    if (err instanceof VeilError) {
      process.stderr.write(`veil: ${err.message}\n`)
      return err.exitCode
    }
    const e = err as Error & { code?: string }
    if (e.code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`veil: ${e.message}\nRun veil --help for usage.\n`)
      return 2
    }
    process.stderr.write(`veil: ${e.message}\n`)
    return 1
  }
}

function overrides(values: Record<string, unknown>): ConfigOverrides {
  const str = (key: string): string | undefined =>
    typeof values[key] === 'string' ? (values[key] as string) : undefined
  return {
    config: str('config'),
    listen: str('listen'),
    http: str('http'),
    dataDir: str('data-dir'),
    policies: str('policies'),
    logLevel: str('log-level'),
    upstreams: Array.isArray(values.upstream) ? (values.upstream as string[]) : undefined,
    allowAnonymous: values['allow-anonymous'] === true ? true : undefined,
    listeners: Array.isArray(values.listener) ? (values.listener as string[]) : undefined,
    tlsCert: str('tls-cert'),
    tlsKey: str('tls-key'),
    tlsCa: str('tls-ca'),
  }
}

async function start(args: readonly string[]): Promise<number> {
  const { values } = parse(args, {
    ...COMMON,
    listen: { type: 'string' },
    upstream: { type: 'string', multiple: true },
    http: { type: 'string' },
    'log-level': { type: 'string' },
    'allow-anonymous': { type: 'boolean' },
    listener: { type: 'string', multiple: true },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'tls-ca': { type: 'string' },
  })
  if (values.help) return usageOf('start')
  const config = resolveConfig(builtinPlugins, overrides(values), overridesFromEnv(process.env))
  const logger = createLogger(config.logLevel)
  const gateway = await Gateway.start(config, builtinPlugins, logger)
  gateway.watchPolicies()
  gateway.watchConsent()
  process.on('SIGHUP', () => gateway.reload())
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ event: 'signal', signal }, 'stopping')
      gateway.close().then(resolve, resolve)
    }
    process.once('SIGINT', () => stop('SIGINT'))
    process.once('SIGTERM', () => stop('SIGTERM'))
  })
  return 0
}

async function filter(args: readonly string[]): Promise<number> {
  const { values } = parse(args, { ...COMMON, topic: { type: 'string' }, file: { type: 'string' } })
  if (values.help) return usageOf('filter')
  if (values.topic === undefined) throw new VeilError('VEIL_ERR_USAGE', 'filter: --topic TOPIC is required')
  const config = resolveConfig(builtinPlugins, overrides(values), overridesFromEnv(process.env))
  const pipeline = offlinePipeline(config, builtinPlugins)
  const payload = values.file === undefined || values.file === '-' ? await readStdin() : readInput(values.file)
  const result = await pipeline.process(values.topic, payload)
  for (const line of outputLines(result)) process.stdout.write(`${line}\n`)
  for (const line of dropLines(result)) process.stderr.write(`${line}\n`)
  // What a scheduled stream (energy windows, aggregates) releases for this one message once its window closes.
  for (const scheduled of await pipeline.tick(Date.now(), true))
    for (const line of outputLines(scheduled)) process.stdout.write(`${line}\n`)
  return 0
}

async function replay(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...COMMON }, true)
  if (values.help) return usageOf('replay')
  const file = positionals[0]
  if (file === undefined || positionals.length > 1)
    throw new VeilError('VEIL_ERR_USAGE', 'replay: expected one FILE.jsonl')
  const config = resolveConfig(builtinPlugins, overrides(values), overridesFromEnv(process.env))
  const pipeline = offlinePipeline(config, builtinPlugins)
  if (file !== '-') readableOrUsage(file)
  const lines = createInterface({ input: file === '-' ? process.stdin : createReadStream(file), crlfDelay: Infinity })
  let n = 0
  let lastTs: number | undefined
  // The input's clock is the gateway's: what scheduled operators release before each input leaves at that time.
  const tick = async (ts: number, drain = false): Promise<void> => {
    for (const result of await pipeline.tick(ts, drain))
      for (const out of outputLines(result, ts)) process.stdout.write(`${out}\n`)
  }
  for await (const line of lines) {
    n++
    if (line.trim() === '') continue
    const input = parseReplayLine(line, n)
    if (typeof input === 'string') {
      process.stderr.write(`${file}:${n}: ${input}\n`)
      continue
    }
    await tick(input.ts)
    lastTs = input.ts
    const result = await pipeline.process(input.topic, input.payload, input.ts)
    for (const out of outputLines(result, input.ts)) process.stdout.write(`${out}\n`)
    for (const drop of dropLines(result)) process.stderr.write(`${file}:${n}: ${drop}\n`)
  }
  // The input has ended: every open window is closed and released, stamped with the last input's time.
  if (lastTs !== undefined) await tick(lastTs, true)
  return 0
}

/** A replay line: `{"ts":ms,"topic":"...","payload":<JSON>}` or with `payloadBase64`. Returns a problem as text. */
export function parseReplayLine(line: string, n: number): { ts: number; topic: string; payload: Buffer } | string {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return `line ${n} is not JSON`
  }
  if (typeof value !== 'object' || value === null) return 'expected an object'
  const record = value as Record<string, unknown>
  if (typeof record.ts !== 'number' || !Number.isFinite(record.ts)) return 'ts must be epoch milliseconds'
  if (typeof record.topic !== 'string' || record.topic === '') return 'topic must be a non-empty string'
  let payload: Buffer
  if (typeof record.payloadBase64 === 'string') payload = Buffer.from(record.payloadBase64, 'base64')
  else if (typeof record.payload === 'string') payload = Buffer.from(record.payload)
  else if ('payload' in record) payload = Buffer.from(JSON.stringify(record.payload))
  else return 'payload or payloadBase64 is required'
  return { ts: record.ts, topic: record.topic, payload }
}

function policy(args: readonly string[]): number {
  const [sub, ...rest] = args
  if (sub !== 'check') throw new VeilError('VEIL_ERR_USAGE', 'policy: expected "policy check [DIR]"')
  const { values, positionals } = parse(
    rest,
    {
      help: { type: 'boolean', short: 'h' },
      config: { type: 'string' },
      subject: { type: 'string' },
      'data-dir': { type: 'string' },
    },
    true,
  )
  if (values.help) return usageOf('policy check')
  const config = resolveConfig(
    builtinPlugins,
    { config: values.config, policies: positionals[0], dataDir: values['data-dir'] },
    overridesFromEnv(process.env),
  )
  const classifier = new Classifier(profilesOf(config))
  // A throwaway key: checking compiles every operator but must not create or read the gateway's master key.
  const keyring = new Keyring(randomBytes(32), new Map())
  const set = loadPolicySet(config.policies, {
    classifier,
    operators: builtinPlugins.operators,
    keyring,
    dataDir: config.dataDir,
    variables: config.variables,
  })
  if (values.subject !== undefined) {
    const profiles = profilesOf(config)
    const subject = SubjectRegistry.open(config.dataDir, profiles).get(values.subject)
    if (subject === undefined)
      throw new VeilError(
        'VEIL_ERR_USAGE',
        `policy check: no subject ${values.subject} in ${join(config.dataDir, SUBJECTS_FILE)}; veil subject list shows them`,
      )
    process.stdout.write(describeSubject(set, classifier, loadConsentBook(config.dataDir, profiles, config), subject))
    return 0
  }
  process.stdout.write(describePolicies(set, classifier, config.optIn))
  return 0
}

function usageOf(command: string): number {
  const line = HELP.split('\n').find((l) => l.trim().startsWith(`veil ${command}`))
  process.stdout.write(`Usage: ${line?.trim() ?? `veil ${command}`}\n`)
  return 0
}

function readableOrUsage(path: string): void {
  try {
    accessSync(path, constants.R_OK)
  } catch (err) {
    throw new VeilError('VEIL_ERR_USAGE', `replay: ${path}: ${(err as Error).message}`)
  }
}

function readInput(path: string): Buffer {
  try {
    return readFileSync(path)
  } catch (err) {
    throw new VeilError('VEIL_ERR_USAGE', `--file ${path}: ${(err as Error).message}`)
  }
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}
