import { existsSync, readdirSync } from 'node:fs'
import { join, relative } from 'node:path'

const ROOT = join(import.meta.dirname, '../..')
const PROFILES = join(ROOT, 'filters/profiles')
const SHARED = join(import.meta.dirname, 'cases')

/** One golden case file: `where` is its path from the repository root without `.json`, the runner's test name. */
export interface GoldenCaseFile {
  readonly path: string
  readonly where: string
  /** The profile folder holding it; undefined for a case in test/golden/cases (several profiles or none). */
  readonly profile: string | undefined
}

function jsonFiles(dir: string): string[] {
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .sort()
    : []
}

/**
 * Every golden case: each profile's `testdata/*.json`, then test/golden/cases/*.json. The golden runner, the
 * profile-folder check and the tests that reuse the cases' inputs all read this one list, so a case in either place
 * counts the same everywhere.
 */
export function goldenCaseFiles(): GoldenCaseFile[] {
  const files: GoldenCaseFile[] = []
  const profiles = readdirSync(PROFILES, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
  for (const profile of profiles) {
    const dir = join(PROFILES, profile, 'testdata')
    for (const file of jsonFiles(dir)) files.push(caseFile(join(dir, file), profile))
  }
  for (const file of jsonFiles(SHARED)) files.push(caseFile(join(SHARED, file), undefined))
  return files
}

function caseFile(path: string, profile: string | undefined): GoldenCaseFile {
  return { path, where: relative(ROOT, path).replace(/\.json$/, ''), profile }
}
