import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { connect as netConnect } from 'node:net'
import { join } from 'node:path'
import { findMosquitto, freePort } from '../test/helpers/mosquitto.ts'
import { tempDir } from '../test/helpers/gateway.ts'

export const ROOT = join(import.meta.dirname, '..')

/**
 * Flags added to every `veil start` of the suite. Kept in one place: when the gateway gains authentication and
 * refuses anonymous devices by default, the flag that lets the suite's anonymous devices in goes here.
 */
export const VEIL_EXTRA_FLAGS: readonly string[] = ['--allow-anonymous']

/**
 * Connection limits lifted for the benchmark: every load-generator connection and the 10k idle devices come from
 * 127.0.0.1, which the default per-address rate (10/s, burst 50) is there to slow. Nothing else differs from a
 * default `veil start`.
 */
const BENCH_CONFIG = 'connections:\n  maxConnections: 100000\n  ratePerSecond: 100000\n  burst: 100000\n'

/** A process the suite started: its PID (for /proc) and a stop that kills it by that PID and waits for it. */
export interface Started {
  readonly name: string
  readonly pid: number
  readonly port: number
  output(): string
  stop(): Promise<void>
}

function track(name: string, child: ChildProcess, port: number, cleanup: () => void): Started {
  let output = ''
  child.stdout?.on('data', (c: Buffer) => (output = (output + c.toString('utf8')).slice(-8000)))
  child.stderr?.on('data', (c: Buffer) => (output = (output + c.toString('utf8')).slice(-8000)))
  let exited = child.exitCode !== null
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())))
  return {
    name,
    pid: child.pid as number,
    port,
    output: () => output,
    stop: async () => {
      if (!exited && child.pid !== undefined) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => !exited && child.kill('SIGKILL'), 5000)
        await exit
        clearTimeout(timer)
      }
      cleanup()
    },
  }
}

export async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port })
    socket.once('connect', () => (socket.destroy(), resolve(true)))
    socket.once('error', () => resolve(false))
  })
}

async function until(what: string, started: Started, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) {
      await started.stop()
      throw new Error(`${started.name}: ${what} not within ${timeoutMs} ms: ${started.output().trim()}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
}

/**
 * A private mosquitto on a free loopback port. Its per-client queue is raised so that a consumer briefly behind
 * the flat-out generator is not dropped (mosquitto's default keeps 1000 QoS 1 messages per client).
 */
export async function startMosquitto(): Promise<Started> {
  const binary = findMosquitto()
  if (binary === undefined) throw new Error('mosquitto is not installed (set $MOSQUITTO or install it)')
  const dir = tempDir('veil-bench-mosquitto-')
  const port = await freePort()
  const config = join(dir.path, 'mosquitto.conf')
  writeFileSync(
    config,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'max_queued_messages 1000000',
      'max_connections -1',
      'log_dest stderr',
      'log_type error',
      '',
    ].join('\n'),
  )
  const child = spawnWithFiles([binary, '-c', config])
  const started = track('mosquitto', child, port, dir.remove)
  await until('listening', started, () => accepts(port))
  return started
}

/**
 * A command whose open-file limit is raised as far as the hard limit allows: section (d) holds 10k sockets on each
 * side, and a usual soft limit is 1024. `exec` keeps the PID the command's own, for /proc.
 */
function spawnWithFiles(
  command: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = ROOT,
): ChildProcess {
  const quoted = command.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ')
  return spawn(
    'sh',
    ['-c', `ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; exec ${quoted}`],
    { cwd, stdio: ['ignore', 'pipe', 'pipe'], env },
  )
}

/** Node with tsx's loader, as bin/veil.js registers it, with the open-file limit raised. */
export function node(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  nodeFlags: readonly string[] = [],
  cwd: string = ROOT,
): ChildProcess {
  return spawnWithFiles(['node', ...nodeFlags, '--import', 'tsx', ...args], env, cwd)
}

export async function startAedesBridge(upstreamPort: number): Promise<Started> {
  const port = await freePort()
  const child = node([join(ROOT, 'bench/aedes-bridge.ts'), String(port), `mqtt://127.0.0.1:${upstreamPort}`])
  const started = track('aedes bridge', child, port, () => {})
  await until('ready', started, async () => started.output().includes('ready'))
  return started
}

/** `veil start` in its own process with a temporary data directory, ready (readyz 200: listener and upstream up). */
/**
 * `root`: another Veil source tree to run (bench/veil-ab.ts compares a baseline checkout with this one);
 * `nodeFlags`: flags for node itself (V8 heap settings, for instance).
 */
export async function startVeil(options: {
  upstreamPort?: number
  policies?: string
  root?: string
  nodeFlags?: readonly string[]
}): Promise<Started> {
  const dir = tempDir('veil-bench-data-')
  const port = await freePort()
  const http = await freePort()
  const config = join(dir.path, 'bench.yaml')
  writeFileSync(config, BENCH_CONFIG)
  const flags = [
    'start',
    '--config',
    config,
    '--listen',
    `mqtt://127.0.0.1:${port}`,
    '--http',
    `127.0.0.1:${http}`,
    '--data-dir',
    dir.path,
    '--log-level',
    'warn',
    ...VEIL_EXTRA_FLAGS,
  ]
  if (options.upstreamPort !== undefined) flags.push('--upstream', `svc=mqtt://127.0.0.1:${options.upstreamPort}`)
  if (options.policies !== undefined) flags.push('--policies', options.policies)
  // VEIL_BENCH_PROFILE_DIR=/tmp/p writes a CPU profile of the gateway under load (on exit) for tuning.
  const profile = process.env.VEIL_BENCH_PROFILE_DIR
  const root = options.root ?? ROOT
  const nodeFlags = [
    ...(options.nodeFlags ?? []),
    ...(profile === undefined || profile === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${profile}`]),
  ]
  const child = node([join(root, 'bin/veil.js'), ...flags], process.env, nodeFlags, root)
  const started = track('veil', child, port, dir.remove)
  await until('ready', started, async () => {
    try {
      return (await fetch(`http://127.0.0.1:${http}/readyz`)).status === 200
    } catch {
      return false
    }
  })
  return started
}

/** Runs a TypeScript module of the suite in a child process and parses the JSON line it prints last. */
export function runChild<T>(module: string, arg: unknown, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = node([join(ROOT, module), JSON.stringify(arg)])
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString('utf8')))
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('exit', (code) => {
      clearTimeout(timer)
      const last = stdout.trim().split('\n').at(-1) ?? ''
      if (code !== 0) return reject(new Error(`${module} exited ${code}: ${stderr.trim().slice(-2000)}`))
      try {
        resolve(JSON.parse(last) as T)
      } catch {
        reject(new Error(`${module} printed no result: ${stdout.slice(-500)} ${stderr.slice(-500)}`))
      }
    })
  })
}

/** Resident set size of a process in MB, from /proc/<pid>/status (Linux). */
export function rssMb(pid: number): number {
  const status = readProc(pid)
  const match = /VmRSS:\s+(\d+) kB/.exec(status)
  if (match === null) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(match[1]) / 1024
}

/** utime + stime of a process in clock ticks (100 per second on Linux). */
export function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  return Number(fields[11]) + Number(fields[12])
}

/** Clock ticks per second of /proc's utime and stime (USER_HZ, 100 on every Linux this runs on). */
export const TICKS_PER_SECOND = 100

function readProc(pid: number): string {
  return readFileSync(`/proc/${pid}/status`, 'utf8')
}
