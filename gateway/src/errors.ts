/**
 * Errors that stop Veil at start-up. Each carries a stable code and the exit status the command line uses:
 * 2 for anything the operator fixes in flags, configuration or policies; 1 for everything else.
 */
export type VeilErrorCode =
  | 'VEIL_ERR_USAGE'
  | 'VEIL_ERR_CONFIG'
  | 'VEIL_ERR_POLICY'
  | 'VEIL_ERR_KEY'
  | 'VEIL_ERR_PORT_IN_USE'
  | 'VEIL_ERR_UPSTREAM'

export class VeilError extends Error {
  readonly code: VeilErrorCode
  readonly exitCode: 1 | 2

  constructor(code: VeilErrorCode, message: string, exitCode: 1 | 2 = 2) {
    super(message)
    this.name = 'VeilError'
    this.code = code
    this.exitCode = exitCode
  }
}

/** One problem found while checking a file: where it is and what is wrong. */
export interface FileProblem {
  file: string
  path: string
  problem: string
}

export function formatProblems(problems: readonly FileProblem[]): string {
  return problems.map((p) => `${p.file}: ${p.path || '/'}: ${p.problem}`).join('\n')
}
