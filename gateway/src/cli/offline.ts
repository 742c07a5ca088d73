import { profilesOf, type GatewayConfig } from '../config/config.ts'
import { loadOrCreateMasterKey } from '../keys/keyring.ts'
import { createPipeline, specOfConfig } from '../pipeline/create.ts'
import type { PipelineResult } from '../pipeline/envelope.ts'
import type { Pipeline } from '../pipeline/pipeline.ts'
import type { Plugins } from '../plugins.ts'

/**
 * The pipeline without a broker, for `veil filter` and `veil replay`: the same compiled profiles, policies and
 * keys as `veil start`, so what these commands print is what the gateway would forward.
 */
export function offlinePipeline(config: GatewayConfig, plugins: Pick<Plugins, 'operators'>): Pipeline {
  const master = loadOrCreateMasterKey(config.dataDir)
  return createPipeline({ ...specOfConfig(config, plugins.operators), streams: profilesOf(config), master }).pipeline
}

/** One forwarded message as `veil filter` and `veil replay` print it. */
export function outputLines(result: PipelineResult, ts?: number): string[] {
  return result.outputs.map((out) => {
    const payload = payloadValue(out.payload)
    return JSON.stringify(
      ts === undefined
        ? { domain: out.domain, topic: out.topic, payload }
        : { ts, domain: out.domain, topic: out.topic, payload },
    )
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
