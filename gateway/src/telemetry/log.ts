import { pino, type Logger, type LevelWithSilent } from 'pino'

export type { Logger }

/**
 * The root logger. Bindings carry stage and category names only: payload values and raw device identifiers never
 * reach a log line, so no redaction pass is needed on the hot path.
 */
export function createLogger(level: LevelWithSilent = 'info', destination: NodeJS.WritableStream = process.stdout): Logger {
  return pino(
    {
      name: 'veil',
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  )
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
