import { inflate } from 'node:zlib'
import type { DropReason } from '../model.ts'
import type { Stage } from './stage.ts'

/** `fatal` makes invalid UTF-8 an error instead of U+FFFD, so malformed text is dropped rather than rewritten. */
const utf8 = new TextDecoder('utf-8', { fatal: true })
const NUMBER = /^-?\d+(\.\d+)?$/

/**
 * Bytes to a value, per the stream's decoding. zlib payloads are inflated on libuv's thread pool with an output
 * cap, so a map of several MB does not block the event loop and a zlib bomb stops at the cap.
 */
export function decodeStage(limits: { decompressedBytes: number }): Stage {
  const inflateCapped = (payload: Buffer): Promise<Buffer | DropReason> =>
    new Promise((resolve) => {
      inflate(payload, { maxOutputLength: limits.decompressedBytes }, (err, out) => {
        if (err === null) resolve(out)
        else resolve((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError ? 'decompressed_too_large' : 'undecodable')
      })
    })

  return {
    name: 'decode',
    run(env) {
      const stream = env.stream
      if (stream === undefined) return 'internal_error'
      try {
        switch (stream.decoding) {
          case 'json':
            env.doc = JSON.parse(utf8.decode(env.payload))
            return undefined
          case 'text':
            env.doc = utf8.decode(env.payload).trim()
            return undefined
          case 'number': {
            const text = utf8.decode(env.payload).trim()
            if (!NUMBER.test(text)) return 'undecodable'
            env.doc = Number(text)
            return undefined
          }
          case 'binary':
            env.doc = env.payload
            return undefined
          case 'zlib-json':
            return inflateCapped(env.payload).then((out) => {
              if (typeof out === 'string') return out
              try {
                env.doc = JSON.parse(utf8.decode(out))
                return undefined
              } catch {
                return 'undecodable'
              }
            })
        }
      } catch {
        return 'undecodable'
      }
    },
  }
}
