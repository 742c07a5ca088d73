import { Histogram, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { Metrics } from './metrics.ts'

describe('deferred pipeline metrics', () => {
  it('the duration histogram reads exactly as a plain prom-client histogram fed the same values', async () => {
    const metrics = new Metrics({ defaultMetrics: false })
    const plain = new Histogram({
      name: 'veil_pipeline_duration_seconds',
      help: 'Time from ingest to the end of routing for one message',
      labelNames: ['category'],
      buckets: [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25],
      registers: [new Registry()],
    })
    const values = [0.000004, 0.00001, 0.00002, 0.0003, 0.004, 0.2, 0.3, 1.5, 0.0000001]
    const camera = metrics.durationHandle('camera')
    for (const v of values) {
      camera.observe(v)
      plain.labels('camera').observe(v)
    }
    // Read twice with more observations between: the second read adds to the first, not replaces it.
    expect(await metrics.registry.getSingleMetricAsString('veil_pipeline_duration_seconds')).toBe(
      await plainText(plain),
    )
    camera.observe(0.002)
    plain.labels('camera').observe(0.002)
    metrics.durationHandle('gps_tracker').observe(0.001)
    plain.labels('gps_tracker').observe(0.001)
    expect(await metrics.registry.getSingleMetricAsString('veil_pipeline_duration_seconds')).toBe(
      await plainText(plain),
    )
  })

  it('stage counters reach /metrics when read, and keep adding', async () => {
    const metrics = new Metrics({ defaultMetrics: false })
    const handle = metrics.stageHandle('in', 'decode', 'camera')
    handle.inc()
    handle.inc(2)
    expect(await metrics.registry.getSingleMetricAsString('veil_stage_in_total')).toMatch(
      /^veil_stage_in_total\{stage="decode",category="camera"\} 3$/m,
    )
    handle.inc()
    expect(await metrics.registry.getSingleMetricAsString('veil_stage_in_total')).toMatch(
      /^veil_stage_in_total\{stage="decode",category="camera"\} 4$/m,
    )
  })
})

async function plainText(histogram: Histogram<'category'>): Promise<string> {
  const registry = new Registry()
  registry.registerMetric(histogram)
  return registry.getSingleMetricAsString('veil_pipeline_duration_seconds')
}
