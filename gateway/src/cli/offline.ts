import { MemoryAuditLog } from '../audit/audit.ts'
import { keyPoliciesOf, profilesOf, type GatewayConfig } from '../config/config.ts'
import { Keyring, loadOrCreateMasterKey } from '../keys/keyring.ts'
import type { Domain } from '../sdk/model.ts'
import type { PipelineResult } from '../pipeline/envelope.ts'
import { Pipeline } from '../pipeline/pipeline.ts'
import type { Plugins } from '../plugins.ts'
import { loadPolicySet } from '../policy/load.ts'
import { Classifier } from '../streams/classifier.ts'
import { Metrics } from '../telemetry/metrics.ts'

/**
 * The pipeline without a broker, for `veil filter` and `veil replay`: the same compiled profiles, policies and
 * keys as `veil start`, so what these commands print is what the gateway would forward.
 */
export function offlinePipeline(config: GatewayConfig, plugins: Pick<Plugins, 'operators'>): Pipeline {
  const classifier = new Classifier(profilesOf(config))
  const keyring = new Keyring(loadOrCreateMasterKey(config.dataDir), keyPoliciesOf(config))
  const policies = { current: loadPolicySet(config.policies, { classifier, operators: plugins.operators, keyring, dataDir: config.dataDir, optIn: config.optIn, variables: config.variables }) }
  return new Pipeline({ classifier, policies, keyring, metrics: new Metrics({ defaultMetrics: false }), audit: new MemoryAuditLog(), limits: config.limits, encodings: config.encoding, profileSettings: config.profileSettings })
}

/** One forwarded message as `veil filter` and `veil replay` print it. */
export function outputLines(result: PipelineResult, ts?: number): string[] {
  return result.outputs.map((out) => {
    const payload = payloadValue(out.payload)
    return JSON.stringify(ts === undefined ? { domain: out.domain, topic: out.topic, payload } : { ts, domain: out.domain, topic: out.topic, payload })
  })
}

function payloadValue(payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString('utf8'))
  } catch {
    return { base64: payload.toString('base64') }
  }
}

/** Why a message (or a domain's copy) was not forwarded, for stderr. Names only: never a value. */
export function dropLines(result: PipelineResult): string[] {
  const lines = result.domainDrops.map((d) => `dropped for ${d.domain} at ${d.stage}: ${d.reason}`)
  if (result.dropped !== undefined) lines.push(`dropped at ${result.dropped.stage}: ${result.dropped.reason}`)
  return lines
}
