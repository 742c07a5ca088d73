/**
 * The profile set a configuration asks for: the built-in profiles, with gpsd, Traccar and Zigbee2MQTT built for
 * the topics of the configuration's `profiles` section. Problems come back with the path of the setting, so the
 * start can name file, path and problem.
 */
import { builtinProfiles } from '../../../filters/profiles/index.ts'
import { createGpsdProfile } from '../../../filters/profiles/gpsd/index.ts'
import { createTraccarProfile } from '../../../filters/profiles/traccar/index.ts'
import { createZigbee2mqttProfile } from '../../../filters/profiles/zigbee2mqtt/index.ts'
import { patternCovers, patternProblem, type PatternRules } from '../sdk/topics.ts'
import type { ProfileDefinition } from '../sdk/profile.ts'

/** The `profiles` section of the configuration file. */
export interface ProfileSettings {
  readonly gpsd?: { readonly topics?: readonly string[] }
  readonly traccar?: { readonly topics?: readonly string[] }
  readonly zigbee2mqtt?: { readonly baseTopic?: string }
}

export interface SettingProblem {
  readonly path: string
  readonly problem: string
}

export function configuredProfiles(settings: ProfileSettings | undefined): { profiles: readonly ProfileDefinition[]; problems: SettingProblem[] } {
  if (settings === undefined) return { profiles: builtinProfiles, problems: [] }
  const problems: SettingProblem[] = []
  const replacements = new Map<string, { profile: ProfileDefinition; path: string }>()
  const build = (name: string, path: string, make: () => ProfileDefinition): void => {
    try {
      replacements.set(name, { profile: make(), path })
    } catch (err) {
      problems.push({ path, problem: (err as Error).message })
    }
  }
  /** Each topic checked on its own first, so a problem names its index. */
  const checked = (path: string, topics: readonly string[], rules: PatternRules): boolean => {
    const before = problems.length
    topics.forEach((topic, i) => {
      const problem = patternProblem(topic, rules)
      if (problem !== undefined) problems.push({ path: `${path}/${i}`, problem })
    })
    return problems.length === before
  }
  const { gpsd, traccar, zigbee2mqtt } = settings
  if (gpsd?.topics !== undefined && checked('/profiles/gpsd/topics', gpsd.topics, { idLevels: 1, plus: false })) {
    build('gpsd', '/profiles/gpsd/topics', () => createGpsdProfile(gpsd.topics))
  }
  if (traccar?.topics !== undefined && checked('/profiles/traccar/topics', traccar.topics, { idLevels: 0, plus: true })) {
    build('traccar', '/profiles/traccar/topics', () => createTraccarProfile(traccar.topics))
  }
  if (zigbee2mqtt?.baseTopic !== undefined) {
    const base = zigbee2mqtt.baseTopic
    build('zigbee2mqtt', '/profiles/zigbee2mqtt/baseTopic', () => createZigbee2mqttProfile(base))
  }
  const profiles = builtinProfiles.map((p) => replacements.get(p.name)?.profile ?? p)
  // A configured topic that takes all of another profile's topics, or whose topics another profile takes, would
  // make one of the two silently lose its devices: refuse it rather than read a plug's STATE as a GPS fix.
  for (const [name, { path, profile }] of replacements) {
    const mine = Object.values(profile.streams).flatMap((s) => s.topics)
    for (const other of profiles) {
      if (other.name === name) continue
      for (const [stream, def] of Object.entries(other.streams)) {
        const clash = def.topics.find((theirs) => mine.some((m) => rootsClash(m, theirs) && (patternCovers(m, theirs) || patternCovers(theirs, m))))
        if (clash !== undefined) problems.push({ path, problem: `can match the same topics as ${other.name}/${stream} (${clash})` })
      }
    }
  }
  return { profiles, problems: dedupe(problems) }
}

/** Routes starting with `{id}` (Shelly gen2) only see topics whose first level no profile owns: no clash there. */
function rootsClash(a: string, b: string): boolean {
  return !a.startsWith('{id}/') && !b.startsWith('{id}/')
}

function dedupe(problems: SettingProblem[]): SettingProblem[] {
  const seen = new Set<string>()
  return problems.filter((p) => {
    const key = `${p.path}\u0000${p.problem}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}
