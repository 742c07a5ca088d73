/**
 * The profile set a configuration asks for: the plug-ins' profiles, each configurable one (its settings declaration)
 * rebuilt for its entry in the configuration's `profiles` section. Problems come back with the path of the setting, so the
 * start can name file, path and problem.
 */
import { patternCovers, patternProblem, type PatternRules } from '../sdk/topics.ts'
import type { ProfileDefinition } from '../sdk/profile.ts'
import type { Plugins } from '../plugins.ts'

/** The `profiles` section of the configuration file (schema-valid): each configurable profile's settings by name. */
export type ProfileSettings = Readonly<Record<string, Readonly<Record<string, unknown>> | undefined>>

export interface SettingProblem {
  readonly path: string
  readonly problem: string
}

export function configuredProfiles(
  settings: ProfileSettings | undefined,
  plugins: Pick<Plugins, 'profiles' | 'configurableProfiles'>,
): { profiles: readonly ProfileDefinition[]; problems: SettingProblem[] } {
  if (settings === undefined) return { profiles: plugins.profiles, problems: [] }
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
  for (const declared of plugins.configurableProfiles) {
    const value = settings[declared.name]?.[declared.setting]
    if (value === undefined) continue
    const path = `/profiles/${declared.name}/${declared.setting}`
    if (declared.topicRules !== undefined && !checked(path, value as readonly string[], declared.topicRules)) continue
    build(declared.name, path, () => declared.build(value))
  }
  const profiles = plugins.profiles.map((p) => replacements.get(p.name)?.profile ?? p)
  // A configured topic that takes all of another profile's topics, or whose topics another profile takes, would
  // make one of the two silently lose its devices: refuse it rather than read a plug's STATE as a GPS fix.
  for (const [name, { path, profile }] of replacements) {
    const mine = Object.values(profile.streams).flatMap((s) => s.topics)
    for (const other of profiles) {
      if (other.name === name) continue
      for (const [stream, def] of Object.entries(other.streams)) {
        const clash = def.topics.find((theirs) =>
          mine.some((m) => rootsClash(m, theirs) && (patternCovers(m, theirs) || patternCovers(theirs, m))),
        )
        if (clash !== undefined)
          problems.push({ path, problem: `can match the same topics as ${other.name}/${stream} (${clash})` })
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
