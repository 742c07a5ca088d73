/**
 * Running bin/veil.js as a child process, for the tests in test/cli: a clean environment, temporary directories
 * removed after the file's tests, and a per-file limit on how many CLI processes run at once.
 */
import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll } from 'vitest'

export const ROOT = resolve(import.meta.dirname, '../..')
export const VEIL = join(ROOT, 'bin/veil.js')
export const TESTDATA = join(ROOT, 'test/cli/testdata')
/**
 * A fixed allowlist-only smart plug policy (svc and ana: ENERGY.Yesterday of tasmota/sensor; svc: the LWT text), so
 * that what the tests expect does not change when the shipped policies do.
 */
export const PLUG = join(TESTDATA, 'policies-plug')

export interface Run {
  code: number | null
  signal: string | null
  stdout: string
  stderr: string
}

/**
 * At most `size` tasks of the returned limiter at once. For CLI processes (each costs about a second of CPU to
 * start): on a busy machine every process then finishes well inside its own timeout instead of all of them
 * crawling together.
 */
export function pool(size: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0
  const waiting: (() => void)[] = []
  return async (task) => {
    if (active < size) active++
    else await new Promise<void>((handOver) => waiting.push(handOver))
    try {
      return await task()
    } finally {
      const next = waiting.shift()
      if (next === undefined) active--
      else next()
    }
  }
}

export interface VeilOptions {
  /** Written to stdin, which is then closed (closed empty without it). */
  input?: string
  /** Added to the child's environment, over everything else. */
  env?: Record<string, string>
  /** Killed with SIGKILL after this long; 60 s by default. */
  timeoutMs?: number
}

/** One run of a `runAll` table: the arguments and the options of `veil`. */
export type VeilSpec = [readonly string[], VeilOptions?]

export interface CliHarness {
  /** A new temporary directory (named after the harness's prefix unless `prefix` is given), removed afterAll. */
  tempDir(prefix?: string): string
  /**
   * The parent's environment without VEIL_* (so a developer's settings cannot change a result), with a temporary
   * data directory and, if the harness has them, fixed VEIL_POLICIES (so a change to the shipped policies cannot
   * either) and VEIL_CONFIG, plus `extra`.
   */
  childEnv(extra?: Record<string, string>): NodeJS.ProcessEnv
  /** Runs `veil ...args` to completion in a temporary working directory with `childEnv(options.env)`. */
  veil(args: readonly string[], options?: VeilOptions): Promise<Run>
  /** Starts every run of a table (the pool lets its `concurrency` run at a time) and collects the results by name. */
  runAll<K extends string>(table: Record<K, VeilSpec>): Promise<Record<K, Run>>
}

/**
 * The CLI helpers of one test file: call it once, at the top level, so that its afterAll removes the file's
 * temporary directories and its pool limits that file's processes (`concurrency`, 3 by default).
 */
export function cliHarness(options: {
  tempPrefix: string
  policies?: string
  config?: string
  concurrency?: number
}): CliHarness {
  const temps: string[] = []
  afterAll(() => {
    for (const dir of temps) rmSync(dir, { recursive: true, force: true })
  })
  const slot = pool(options.concurrency ?? 3)

  const tempDir = (prefix = options.tempPrefix): string => {
    const dir = mkdtempSync(join(tmpdir(), prefix))
    temps.push(dir)
    return dir
  }

  const childEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = {}
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('VEIL_')) env[k] = v
    const policies = options.policies === undefined ? {} : { VEIL_POLICIES: options.policies }
    const config = options.config === undefined ? {} : { VEIL_CONFIG: options.config }
    return { ...env, VEIL_DATA_DIR: tempDir(), ...policies, ...config, ...extra }
  }

  const veil = (args: readonly string[], run: VeilOptions = {}): Promise<Run> =>
    slot(
      () =>
        new Promise<Run>((done) => {
          const child = execFile(
            process.execPath,
            [VEIL, ...args],
            {
              cwd: tempDir(),
              env: childEnv(run.env),
              timeout: run.timeoutMs ?? 60_000,
              killSignal: 'SIGKILL',
              encoding: 'utf8',
            },
            (_err, stdout, stderr) => done({ code: child.exitCode, signal: child.signalCode, stdout, stderr }),
          )
          child.stdin?.end(run.input ?? '')
        }),
    )

  const runAll = async <K extends string>(table: Record<K, VeilSpec>): Promise<Record<K, Run>> => {
    const entries = Object.entries(table) as [K, VeilSpec][]
    const runs = await Promise.all(entries.map(([, [args, run]]) => veil(args, run)))
    return Object.fromEntries(entries.map(([key], i) => [key, runs[i] as Run])) as Record<K, Run>
  }

  return { tempDir, childEnv, veil, runAll }
}

/** A `veil start` child process (startVeil), its output so far, its start event and its exit. */
export interface Started {
  child: ReturnType<typeof spawn>
  stdout: () => string
  stderr: () => string
  started: Record<string, unknown>
  exited: Promise<{ code: number | null; signal: string | null }>
}

/**
 * Spawns `veil start` with the harness's working directory and environment, and resolves once its pino log says
 * "started" (rejects if it exits or times out first). A child left running is killed after a minute.
 */
export async function startVeil(
  harness: Pick<CliHarness, 'tempDir' | 'childEnv'>,
  args: readonly string[],
  timeoutMs = 30_000,
): Promise<Started> {
  const child = spawn(process.execPath, [VEIL, 'start', ...args], {
    cwd: harness.tempDir(),
    env: harness.childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk))
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  )
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  void exited.then(() => clearTimeout(killer))
  const started = await new Promise<Record<string, unknown>>((resolveStarted, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`veil start did not log "started" within ${timeoutMs} ms: ${out}${err}`)),
      timeoutMs,
    )
    const check = (): void => {
      for (const line of out.split('\n')) {
        if (!line.includes('"event":"started"')) continue
        clearTimeout(timer)
        resolveStarted(JSON.parse(line) as Record<string, unknown>)
        return
      }
    }
    child.stdout.on('data', check)
    void exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`veil start exited (${code ?? signal}) before starting: ${out}${err}`))
    })
  })
  return { child, stdout: () => out, stderr: () => err, started, exited }
}

/**
 * Sends SIGTERM and waits for the exit. `withinMs` is a watchdog, not the assertion: a child still running then is
 * killed and reported as signal 'timeout'. How long the stop took (`ms`) is for the slow project's bounds.
 */
export async function stopVeil(
  run: Started,
  withinMs = 30_000,
): Promise<{ code: number | null; signal: string | null; ms: number }> {
  const t0 = Date.now()
  run.child.kill('SIGTERM')
  let timer: NodeJS.Timeout | undefined
  const result = await Promise.race([
    run.exited,
    new Promise<{ code: null; signal: 'timeout' }>(
      (r) => (timer = setTimeout(() => r({ code: null, signal: 'timeout' }), withinMs)),
    ),
  ])
  clearTimeout(timer)
  if (result.signal === 'timeout') run.child.kill('SIGKILL')
  return { ...result, ms: Date.now() - t0 }
}
