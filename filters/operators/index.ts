import type { OperatorDefinition } from '../../gateway/src/policy/operator.ts'

/**
 * Operators that a policy may name after its allowlist. `allow` itself is not listed: it is the mandatory first
 * step of every stream policy.
 */
export const builtinOperators: readonly OperatorDefinition[] = []
