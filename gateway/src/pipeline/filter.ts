import { NOTHING } from '../policy/allow/index.ts'
import type { Keyring } from '../keys/keyring.ts'
import { SUPPRESS, type OperatorContext } from '../sdk/operator.ts'
import type { PolicySet } from '../policy/load.ts'
import type { Stage } from './stage.ts'
import type { ConsentHolder } from '../consent/book.ts'

/** Holds the policy set in force; a reload swaps `current` only after the new set compiled completely. */
export interface PolicyHolder {
  current: PolicySet
}

const EMPTY = Buffer.alloc(0)

/**
 * Applies each recipient domain's compiled policy: allowlist first, then the operators in order. The policy is the
 * variant the device's subject consents to (the first whose purpose is granted, else the default); a subject that
 * withdrew sharing with the domain, a region it does not allow, or a minor's protected data gets no copy (counted
 * and audited). A domain whose policy leaves nothing, suppresses the message or throws gets no copy; the other
 * domains go on. A stream that no domain has a policy for, for this subject, is dropped whole (`no_policy`).
 */
export function filterStage(policies: PolicyHolder, keyring: Keyring, consent: ConsentHolder): Stage {
  return {
    name: 'filter',
    run(env, ctx) {
      const stream = env.stream
      const deviceId = env.deviceId
      if (stream === undefined || deviceId === undefined) return 'internal_error'
      const list = policies.current.byStream.get(stream)
      if (list === undefined) return 'no_policy'
      const subject = consent.current.of(stream.profile, deviceId)
      env.subject = subject
      let offered = false
      for (const entry of list) {
        const granted = subject.granted[entry.domainIndex] as number
        let policy = entry.fallback
        for (const variant of entry.variants) {
          if ((granted & variant.purposeBit) !== 0) {
            policy = variant
            break
          }
        }
        if (policy === undefined) continue
        offered = true
        const blocked =
          subject.blocked[entry.domainIndex] ?? (subject.minor && entry.minorProtected ? 'minor' : undefined)
        if (blocked !== undefined) {
          ctx.dropDomain('filter', env, entry.domain, blocked)
          continue
        }
        let doc = policy.allow(env.doc)
        if (doc === NOTHING) {
          ctx.dropDomain('filter', env, entry.domain, 'empty_after_filter')
          continue
        }
        if (policy.operators.length > 0) {
          const opCtx: OperatorContext = {
            domain: entry.domain,
            category: stream.category,
            deviceId,
            nowMs: env.nowMs,
            keyring,
          }
          try {
            for (const op of policy.operators) {
              doc = op.run(doc, opCtx)
              if (doc === SUPPRESS) break
            }
          } catch {
            ctx.dropDomain('filter', env, entry.domain, 'operator_error')
            continue
          }
          if (doc === SUPPRESS) {
            ctx.dropDomain('filter', env, entry.domain, 'suppressed')
            continue
          }
          if (doc === NOTHING || doc === undefined) {
            ctx.dropDomain('filter', env, entry.domain, 'empty_after_filter')
            continue
          }
        }
        env.outputs.push({
          domain: entry.domain,
          doc,
          payload: EMPTY,
          topic: '',
          contentType: '',
          releaseMs: policy.releaseMs,
          subject,
          purposeBit: policy.purposeBit,
        })
      }
      return offered ? undefined : 'no_policy'
    },
  }
}
