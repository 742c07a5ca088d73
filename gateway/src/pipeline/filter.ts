import { NOTHING } from '../policy/allow/index.ts'
import type { Keyring } from '../keys/keyring.ts'
import { SUPPRESS, type OperatorContext } from '../sdk/operator.ts'
import type { PolicySet } from '../policy/load.ts'
import type { Stage } from './stage.ts'

/** Holds the policy set in force; a reload swaps `current` only after the new set compiled completely. */
export interface PolicyHolder {
  current: PolicySet
}

const EMPTY = Buffer.alloc(0)

/**
 * Applies each recipient domain's compiled policy: allowlist first, then the operators in order. A domain whose
 * policy leaves nothing, suppresses the message or throws gets no copy; the other domains go on. A stream that no
 * domain has a policy for is dropped whole (`no_policy`).
 */
export function filterStage(policies: PolicyHolder, keyring: Keyring): Stage {
  return {
    name: 'filter',
    run(env, ctx) {
      const stream = env.stream
      const deviceId = env.deviceId
      if (stream === undefined || deviceId === undefined) return 'internal_error'
      const list = policies.current.byStream.get(stream)
      if (list === undefined) return 'no_policy'
      for (const policy of list) {
        let doc = policy.allow(env.doc)
        if (doc === NOTHING) {
          ctx.dropDomain('filter', env, policy.domain, 'empty_after_filter')
          continue
        }
        if (policy.operators.length > 0) {
          const opCtx: OperatorContext = { domain: policy.domain, category: stream.category, deviceId, nowMs: env.nowMs, keyring }
          try {
            for (const op of policy.operators) {
              doc = op.run(doc, opCtx)
              if (doc === SUPPRESS) break
            }
          } catch {
            ctx.dropDomain('filter', env, policy.domain, 'operator_error')
            continue
          }
          if (doc === SUPPRESS) {
            ctx.dropDomain('filter', env, policy.domain, 'suppressed')
            continue
          }
          if (doc === NOTHING || doc === undefined) {
            ctx.dropDomain('filter', env, policy.domain, 'empty_after_filter')
            continue
          }
        }
        env.outputs.push({ domain: policy.domain, doc, payload: EMPTY, topic: '', contentType: '', releaseMs: policy.releaseMs })
      }
      return undefined
    },
  }
}
