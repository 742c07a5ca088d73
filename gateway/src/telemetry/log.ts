import { pino, type Logger, type LevelWithSilent } from 'pino'

export type { Logger }

/**
 * The root logger. Bindings carry stage and category names only: payload values and raw device identifiers never
 * reach a log line, so no redaction pass is needed on the hot path.
 */
/** Keys that hold secrets, at the top level and one or two levels down. */
export const REDACTED_PATHS = ['password', 'token', 'reloadToken', 'authorization', 'key', 'passphrase'].flatMap(
  (k) => [k, `*.${k}`, `*.*.${k}`],
)

export function createLogger(
  level: LevelWithSilent = 'info',
  destination: NodeJS.WritableStream = process.stdout,
): Logger {
  return pino(
    {
      name: 'veil',
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Defence in depth: no code path logs a secret, but an object that carries one (an upstream's options, an
      // account) must not print it if it is ever logged whole. Paths are compiled once by pino.
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    destination,
  )
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
