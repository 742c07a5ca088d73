import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { builtinProfiles } from '../../filters/profiles/index.ts'
import { Classifier } from '../../gateway/src/streams/classifier.ts'
import { goldenCaseFiles } from './cases.ts'

/**
 * Every built-in profile keeps one folder shape (issue 14.6): a README.md with the same sections, naming each of its
 * streams, and a testdata/ with at least one golden case that the golden runner reads (the same lister) and whose
 * inputs are that profile's topics.
 */
const PROFILES = join(import.meta.dirname, '../../filters/profiles')
const SECTIONS = ['Topics', 'Streams', 'What leaves by default', 'Test data'] as const
/** Profiles whose topics or categories the configuration changes (`profiles.<name>` / `sparkplug`). */
const CONFIGURABLE = new Set(['gpsd', 'traccar', 'zigbee2mqtt', 'sparkplug'])

const streamsByProfile = new Map<string, Set<string>>()
for (const profile of builtinProfiles) {
  const names = streamsByProfile.get(profile.name) ?? new Set<string>()
  for (const stream of Object.keys(profile.streams)) names.add(stream)
  streamsByProfile.set(profile.name, names)
}

/** `## Heading` to the text up to the next `## `; what comes before the first heading is under ''. */
function sections(markdown: string): Map<string, string> {
  const out = new Map<string, string>()
  let heading = ''
  let body: string[] = []
  for (const line of markdown.split('\n')) {
    const match = /^## (.+?)\s*$/.exec(line)
    if (match === null) {
      body.push(line)
      continue
    }
    out.set(heading, body.join('\n'))
    heading = match[1] as string
    body = []
  }
  out.set(heading, body.join('\n'))
  return out
}

describe('profile folders', () => {
  const classifier = new Classifier(builtinProfiles)
  const cases = goldenCaseFiles()

  for (const [name, streams] of streamsByProfile) {
    describe(name, () => {
      const readme = join(PROFILES, name, 'README.md')

      it('has a README.md with the shared sections, Settings when configurable', () => {
        expect(existsSync(readme), readme).toBe(true)
        const found = sections(readFileSync(readme, 'utf8'))
        const intro = found.get('') ?? ''
        expect(intro, 'a title and a summary paragraph before the first section').toMatch(/^# .+\n+\S/)
        const expected = CONFIGURABLE.has(name)
          ? ['Topics', 'Streams', 'What leaves by default', 'Settings', 'Test data']
          : [...SECTIONS]
        expect([...found.keys()].filter((h) => h !== '')).toEqual(expected)
        for (const heading of expected) expect((found.get(heading) ?? '').trim(), heading).not.toBe('')
      })

      it('names each of its streams in Streams', () => {
        const table = sections(readFileSync(readme, 'utf8')).get('Streams') ?? ''
        for (const stream of streams) expect(table, stream).toContain(`\`${stream}\``)
      })

      it('has a testdata/ case the golden runner runs, whose inputs are its own topics, named in Test data', () => {
        const own = cases.filter((c) => c.profile === name)
        expect(own.length).toBeGreaterThan(0)
        const testData = sections(readFileSync(readme, 'utf8')).get('Test data') ?? ''
        for (const c of own) {
          const golden = JSON.parse(readFileSync(c.path, 'utf8')) as { inputs: { topic: string }[] }
          expect(golden.inputs.length, c.where).toBeGreaterThan(0)
          for (const input of golden.inputs)
            expect(classifier.classify(input.topic)?.stream.profile, `${c.where}: ${input.topic}`).toBe(name)
          expect(testData, c.where).toContain(c.where.slice(c.where.lastIndexOf('/') + 1))
        }
      })
    })
  }

  it('has no testdata/ outside a built-in profile', () => {
    for (const c of cases) if (c.profile !== undefined) expect(streamsByProfile.has(c.profile), c.where).toBe(true)
  })
})
