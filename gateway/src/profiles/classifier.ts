import type { ValidateFunction } from 'ajv'
import { VeilError } from '../errors.ts'
import type { Category } from '../model.ts'
import { createPayloadAjv } from './ajv.ts'
import { compileGetter, type Getter } from './path.ts'
import type { Decoding, ProfileDefinition } from './types.ts'

/** A profile's stream with everything the pipeline needs, built once at load. */
export interface CompiledStream {
  /** `<profile>/<stream>`: the key policies use. */
  readonly key: string
  readonly profile: string
  readonly name: string
  readonly category: Category
  readonly decoding: Decoding
  readonly validate: ValidateFunction | undefined
  readonly deviceIdFrom: Getter | undefined
}

export interface Classification {
  readonly stream: CompiledStream
  /** Undefined when the device id is in the payload (`deviceIdFrom`). */
  readonly deviceId: string | undefined
}

const ID = Symbol('id')
const ANY = Symbol('any')
type Level = string | typeof ID | typeof ANY

interface Route {
  readonly levels: readonly Level[]
  readonly stream: CompiledStream
}

/**
 * Maps a raw topic to its profile stream. Routes are grouped by their first level, which every built-in profile
 * fixes (`tele`, `frigate`, `owntracks`, ...), so a message is checked against a handful of routes at most.
 */
export class Classifier {
  readonly streams: readonly CompiledStream[]
  readonly #byRoot = new Map<string, Route[]>()

  constructor(profiles: readonly ProfileDefinition[]) {
    const ajv = createPayloadAjv()
    const streams: CompiledStream[] = []
    for (const profile of profiles) {
      for (const [name, def] of Object.entries(profile.streams)) {
        const key = `${profile.name}/${name}`
        let validate: ValidateFunction | undefined
        try {
          validate = def.schema === undefined ? undefined : ajv.compile(def.schema)
        } catch (err) {
          throw new VeilError('VEIL_ERR_CONFIG', `profile ${profile.name}: stream ${name}: bad schema: ${(err as Error).message}`)
        }
        const stream: CompiledStream = {
          key,
          profile: profile.name,
          name,
          category: profile.category,
          decoding: def.decoding,
          validate,
          deviceIdFrom: def.deviceIdPath === undefined ? undefined : compileGetter(def.deviceIdPath),
        }
        streams.push(stream)
        for (const pattern of def.topics) this.#addRoute(pattern, stream)
      }
    }
    this.streams = streams
  }

  #addRoute(pattern: string, stream: CompiledStream): void {
    const levels: Level[] = pattern.split('/').map((level) => (level === '{id}' ? ID : level === '+' ? ANY : level))
    const root = levels[0]
    if (typeof root !== 'string') {
      throw new VeilError('VEIL_ERR_CONFIG', `profile ${stream.profile}: topic ${pattern} must start with a literal level`)
    }
    if (!levels.includes(ID) && stream.deviceIdFrom === undefined) {
      throw new VeilError('VEIL_ERR_CONFIG', `profile ${stream.profile}: topic ${pattern} names no device id`)
    }
    let routes = this.#byRoot.get(root)
    if (routes === undefined) {
      routes = []
      this.#byRoot.set(root, routes)
    }
    routes.push({ levels, stream })
  }

  classify(topic: string): Classification | undefined {
    const levels = topic.split('/')
    const routes = this.#byRoot.get(levels[0] ?? '')
    if (routes === undefined) return undefined
    for (const route of routes) {
      const deviceId = matchRoute(route.levels, levels)
      if (deviceId !== null) return { stream: route.stream, deviceId }
    }
    return undefined
  }

  streamsOf(category: Category): CompiledStream[] {
    return this.streams.filter((s) => s.category === category)
  }
}

/** The device id the route captures, undefined if it captures none, or null when the topic does not match. */
function matchRoute(pattern: readonly Level[], levels: readonly string[]): string | undefined | null {
  if (pattern.length !== levels.length) return null
  let id: string | undefined
  for (let i = 0; i < pattern.length; i++) {
    const want = pattern[i]
    const got = levels[i] as string
    if (want === ANY) {
      if (got === '') return null
    } else if (want === ID) {
      if (got === '') return null
      id = id === undefined ? got : `${id}/${got}`
    } else if (want !== got) {
      return null
    }
  }
  return id
}
