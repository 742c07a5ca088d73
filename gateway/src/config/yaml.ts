import type { ErrorObject } from 'ajv'
import { parseDocument } from 'yaml'
import type { FileProblem } from '../errors.ts'

/**
 * Parses a YAML (or JSON) file's text. Problems name the line and column; duplicate keys are problems too, since a
 * silently overridden policy or setting is worse than a refused one.
 */
export function parseYaml(file: string, text: string): { value: unknown; problems: FileProblem[] } {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  const problems = document.errors.map((e) => {
    const at = e.linePos?.[0]
    // yaml's pretty errors append the position and a code excerpt; the position is reported as the path.
    const message = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '')
    return { file, path: at ? `line ${at.line}, column ${at.col}` : '', problem: message }
  })
  return { value: problems.length > 0 ? undefined : document.toJS(), problems }
}

/** One ajv error as the problem part of "file: path: problem". */
export function describeAjvError(e: ErrorObject): string {
  if (e.keyword === 'additionalProperties') return `unknown property ${String(e.params.additionalProperty)}`
  if (e.keyword === 'propertyNames') return `property name ${String(e.params.propertyName)} is not allowed`
  if (e.keyword === 'enum') return `${e.message}: ${(e.params.allowedValues as unknown[]).join(', ')}`
  return e.message ?? e.keyword
}
