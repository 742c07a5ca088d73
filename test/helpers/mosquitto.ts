import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { accessSync, constants, writeFileSync } from 'node:fs'
import { connect as netConnect, createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { tempDir } from './gateway.ts'
import { until } from './poll.ts'

/** A real mosquitto broker on a loopback port, started by {@link startMosquitto}. */
export interface Mosquitto {
  readonly url: string
  readonly port: number
  readonly pid: number
  /** What mosquitto wrote to stdout and stderr so far (for failure messages). */
  output(): string
  /**
   * Sends `signal` (SIGTERM unless given) to the process by its PID, waits for it to exit (SIGKILL after 3 s) and
   * removes the temporary directory. Idempotent.
   */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>
  /** How the process ended (code or signal), undefined while it runs. */
  exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | undefined
}

export interface MosquittoOptions {
  /** Listen on this port (a restart on the same port); a free one when absent. */
  readonly port?: number
  /** More mosquitto.conf lines, e.g. `persistence true` with a `persistence_location` that outlives the process. */
  readonly config?: readonly string[]
  readonly timeoutMs?: number
}

const CANDIDATES = [
  '/usr/sbin/mosquitto',
  '/usr/local/sbin/mosquitto',
  '/usr/bin/mosquitto',
  '/usr/local/bin/mosquitto',
  '/opt/homebrew/sbin/mosquitto',
]

/**
 * The mosquitto binary: `$MOSQUITTO` when set (undefined if that is not an executable, so `MOSQUITTO=none`
 * simulates a machine without it), else `which mosquitto`, else a usual install path; undefined when there is none.
 */
export function findMosquitto(): string | undefined {
  const fromEnv = process.env.MOSQUITTO
  if (fromEnv !== undefined && fromEnv !== '') return isExecutable(fromEnv) ? fromEnv : undefined
  const which = spawnSync('which', ['mosquitto'], { encoding: 'utf8' })
  const found = which.status === 0 ? which.stdout.trim() : ''
  if (found !== '' && isExecutable(found)) return found
  return CANDIDATES.find(isExecutable)
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** A port that was free a moment ago on 127.0.0.1 (the kernel picks it; the small race is retried by the caller). */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/**
 * Starts mosquitto with a generated configuration (`listener <port> 127.0.0.1`, `allow_anonymous true`, no
 * persistence) in a temporary directory and resolves once the port accepts TCP connections. Rejects if the
 * process exits or the port does not open within `timeoutMs`; a port taken in the meantime is retried.
 */
export async function startMosquitto(binary: string, options: number | MosquittoOptions = {}): Promise<Mosquitto> {
  const { port, config = [], timeoutMs = 10_000 } = typeof options === 'number' ? { timeoutMs: options } : options
  let lastError: Error | undefined
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(binary, port ?? (await freePort()), timeoutMs, config)
    } catch (err) {
      lastError = err as Error
    }
  }
  throw lastError ?? new Error('mosquitto did not start')
}

async function startOnce(
  binary: string,
  port: number,
  timeoutMs: number,
  extra: readonly string[],
): Promise<Mosquitto> {
  const dir = tempDir('veil-mosquitto-')
  const configFile = join(dir.path, 'mosquitto.conf')
  writeFileSync(
    configFile,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      ...(extra.some((l) => l.startsWith('persistence ')) ? [] : ['persistence false']),
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      ...extra,
      '',
    ].join('\n'),
  )
  const child: ChildProcess = spawn(binary, ['-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined
  let spawnError: Error | undefined
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal }
      resolve()
    })
    child.once('error', (err) => {
      spawnError = err
      exited ??= { code: null, signal: null }
      resolve()
    })
  })

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', graceMs = 3000): Promise<void> => {
    if (exited === undefined && child.pid !== undefined) {
      process.kill(child.pid, signal)
      const killTimer = setTimeout(() => {
        if (exited === undefined && child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
      }, graceMs)
      await exit
      clearTimeout(killTimer)
    }
    dir.remove()
  }

  try {
    await until(async () => exited !== undefined || (await accepts(port)), {
      timeoutMs,
      what: `mosquitto on 127.0.0.1:${port}`,
      intervalMs: 25,
    })
  } catch {
    await stop()
    throw new Error(
      `mosquitto did not accept connections on 127.0.0.1:${port} within ${timeoutMs} ms: ${output.trim()}`,
    )
  }
  if (exited !== undefined) {
    dir.remove()
    throw new Error(
      `mosquitto exited before accepting connections (${spawnError?.message ?? `code ${exited.code}, signal ${exited.signal}`}): ${output.trim()}`,
    )
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    pid: child.pid as number,
    output: () => output,
    stop,
    exitStatus: () => exited,
  }
}
